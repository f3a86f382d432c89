"""Options and ini keys, resolved once (CLI > ini > defaults) into the frozen :class:`Settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.models.registry import MODELS_FILE
from pytest_agentbench.plugin.settings import SANDBOX_KINDS, Settings, split_list


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_agentbench.plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


#: Every option, as (flag, argparse keywords); each has an ini key of the same meaning (see resolve_settings).
_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "--models",
        dict(
            action="append",
            dest="agentbench_models",
            metavar="ALIAS[,ALIAS]",
            help="model aliases from models.yaml to run every packet on (ini: agentbench_models)",
        ),
    ),
    (
        "--models-file",
        dict(
            dest="agentbench_models_file",
            metavar="PATH",
            help=f"the models.yaml to read (ini: agentbench_models_file; default: {MODELS_FILE} in the "
            "rootdir, then in the current folder)",
        ),
    ),
    (
        "--packets",
        dict(
            action="append",
            dest="agentbench_packets",
            metavar="DIR",
            help="folder(s) holding task packets (ini: agentbench_packets; default: task_packets)",
        ),
    ),
    (
        "--sandbox",
        dict(
            dest="agentbench_sandbox",
            choices=SANDBOX_KINDS,
            help="where commands run: docker, local (bubblewrap), unsafe-local (no isolation, reported as "
            "such), or auto = docker if an engine answers, else local (ini: agentbench_sandbox; default: auto)",
        ),
    ),
    (
        "--agent-timeout",
        dict(
            dest="agentbench_agent_timeout",
            type=float,
            metavar="SECONDS",
            help="wall-clock budget per agent run, overriding each packet's limits.timeout_s "
            "(ini: agentbench_agent_timeout)",
        ),
    ),
    (
        "--agentbench-results",
        dict(
            dest="agentbench_results",
            metavar="DIR",
            help="folder for the run log: one JSONL file per xdist worker, merged at the end into "
            "DIR/results.jsonl and DIR/benchmark.json (ini: agentbench_results; default: "
            ".agentbench/runs/<time>-<pid> in the rootdir)",
        ),
    ),
    (
        "--agentbench-html",
        dict(
            dest="agentbench_html",
            metavar="PATH",
            help="write a self-contained HTML report (ini: agentbench_html)",
        ),
    ),
    (
        "--resume",
        dict(
            dest="agentbench_resume",
            metavar="PATH",
            help="skip (packet, alias) pairs that already have a record in PATH (a results folder or "
            "its results.jsonl); new runs are added to that folder",
        ),
    ),
)
#: The ini keys, as (name, help, type or None, default).
_INIS: tuple[tuple[str, str, str | None, Any], ...] = (
    ("agentbench_results", "folder for the JSONL run log, relative to the ini file", None, ""),
    ("agentbench_html", "path of the HTML report, relative to the ini file", None, ""),
    ("agentbench_models", "model aliases to run (comma or space separated)", None, ""),
    ("agentbench_models_file", "path of models.yaml, relative to the ini file", None, ""),
    ("agentbench_packets", "task packet folders, relative to the ini file", "paths", []),
    ("agentbench_sandbox", "sandbox kind: auto | docker | local | unsafe-local", None, "auto"),
    ("agentbench_agent_timeout", "agent wall-clock budget in seconds", None, ""),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentbench", "agentbench: evaluate coding agents on task packets")
    for flag, kwargs in _OPTIONS:
        group.addoption(flag, **kwargs)
    for name, help_text, type_, default in _INIS:
        parser.addini(name, help_text, type=type_, default=default)


def _ini_base(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath else config.rootpath


def resolve_settings(config: pytest.Config) -> Settings:
    """CLI > ini > defaults, validated once."""
    opt = config.option
    here = config.invocation_params.dir
    models = split_list(opt.agentbench_models) or split_list(config.getini("agentbench_models"))

    if opt.agentbench_models_file:
        models_file: Path | None = (here / opt.agentbench_models_file).resolve()
    elif config.getini("agentbench_models_file"):
        models_file = (_ini_base(config) / config.getini("agentbench_models_file")).resolve()
    else:
        candidates = [config.rootpath / MODELS_FILE, here / MODELS_FILE]
        models_file = next((c.resolve() for c in candidates if c.is_file()), None)

    if opt.agentbench_packets:
        packets = tuple((here / p).resolve() for p in split_list(opt.agentbench_packets))
    elif config.getini("agentbench_packets"):
        packets = tuple(Path(p).resolve() for p in config.getini("agentbench_packets"))
    else:
        packets = ((config.rootpath / "task_packets").resolve(),)

    sandbox = opt.agentbench_sandbox or config.getini("agentbench_sandbox") or "auto"
    if sandbox not in SANDBOX_KINDS:
        raise pytest.UsageError(
            f"ini agentbench_sandbox: expected one of {', '.join(SANDBOX_KINDS)}, found {sandbox!r}"
        )
    timeout = opt.agentbench_agent_timeout
    if timeout is None and config.getini("agentbench_agent_timeout"):
        raw = config.getini("agentbench_agent_timeout")
        try:
            timeout = float(raw)
        except ValueError:
            raise pytest.UsageError(f"ini agentbench_agent_timeout: expected seconds, found {raw!r}") from None
    if timeout is not None and timeout <= 0:
        raise pytest.UsageError(f"--agent-timeout: expected a number of seconds > 0, found {timeout}")

    def path_of(cli: str | None, ini: str) -> Path | None:
        if cli:
            return (here / cli).resolve()
        return (_ini_base(config) / config.getini(ini)).resolve() if config.getini(ini) else None

    resume = (here / opt.agentbench_resume).resolve() if opt.agentbench_resume else None
    results_dir = path_of(opt.agentbench_results, "agentbench_results")
    if results_dir is None and resume is not None:
        results_dir = resume.parent if resume.suffix == ".jsonl" else resume
    return Settings(
        models=models,
        models_file=models_file,
        packets=packets,
        sandbox=sandbox,
        agent_timeout=timeout,
        results_dir=results_dir,
        html=path_of(opt.agentbench_html, "agentbench_html"),
        resume=resume,
    )
