"""Options and ini keys, resolved once (CLI > ini > defaults) into the frozen :class:`Settings`.

Usage errors name the option and the fix: a ``--packets`` folder (or ini ``agentbench_packets``)
that does not exist or holds no ``packet.yaml`` is one, since pytest would otherwise collect
nothing and exit 5 without a word. The default ``task_packets`` may be absent (a repo that
runs only its own tests). Under ``CI=true``, a run that would collect packets with no alias
selected is one too: every packet would be skipped and the job would pass (exit 0) having run
nothing. It is decided here, before collection, so that the xdist controller refuses the run
before any worker starts. So is a path inside a packet given on the command line (``pytest
repo/tests`` in a packet's folder): nothing inside a packet is ever collected, and a silent
exit 5 would hide why; the message gives ``-p no:agentbench``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.config import BUDGET_MODES, DEFAULT_SAFETY_FACTOR
from pytest_agentbench.errors import UsageError
from pytest_agentbench.models import MODELS_FILE
from pytest_agentbench.packets.schema import (
    MIN_TOTAL_TOKENS,
    PACKET_FILE,
    PROMPT_WARN_BYTES,
    find_packet_files,
    packet_root_of,
)
from pytest_agentbench.plugin.agents import AGENT_INIS, AGENT_OPTIONS, agent_settings
from pytest_agentbench.plugin.settings import SANDBOX_KINDS, Settings, split_list
from pytest_agentbench.scale.manifest import check_results_folder
from pytest_agentbench.scale.shards import Shard, parse_shard


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
        "--docker-host",
        dict(
            dest="agentbench_docker_host",
            metavar="URL",
            help="the Docker engine of the docker sandbox: unix:///PATH, tcp://HOST:PORT or ssh://USER@HOST; the "
            "base image is built there when missing (ini: agentbench_docker_host; default: $DOCKER_HOST, else the "
            "local socket)",
        ),
    ),
    (
        "--ray",
        dict(
            dest="agentbench_ray",
            metavar="ADDRESS",
            help="run every trial as a Ray task on a cluster and report it here: auto (the cluster RAY_ADDRESS or "
            "`ray start` names), HOST:PORT, ray://HOST:PORT, or local (start one on this machine, for trying it); "
            "pip install 'pytest-agentbench[ray]'; docs/ray.md (ini: agentbench_ray)",
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
        "--agentbench-session-json",
        dict(
            dest="agentbench_session_json",
            metavar="PATH",
            help="write what happened as JSON: pytest's exit status, the outcome counts, the duration, the "
            "server start times and the files written (ini: agentbench_session_json; scripts/main-job reads it)",
        ),
    ),
    (
        "--agentbench-progress-every",
        dict(
            dest="agentbench_progress_every",
            type=float,
            metavar="SECONDS",
            help="live progress: seconds between progress lines when the output is not a terminal (a terminal "
            "gets one line updated in place); 0 or -q: none (ini: agentbench_progress_every; default: 20)",
        ),
    ),
    (
        "--resume",
        dict(
            dest="agentbench_resume",
            metavar="PATH",
            help="skip (packet, alias, agent, repeat) trials that already have a record in PATH (a results folder or "
            "its results.jsonl); new runs are added to that folder",
        ),
    ),
    (
        "--agentbench-gate",
        dict(
            action="append",
            dest="agentbench_gate",
            metavar="'CANDIDATE vs BASELINE max_drop=POINTS'",
            help="after the run, fail the session when CANDIDATE's pass rate is below BASELINE's by more than "
            "POINTS percentage points with 95 %% one-sided confidence (add confidence=0.9 to change it); "
            "repeatable; the gates then decide the exit status (docs/comparing.md; ini: agentbench_gate, one per line)",
        ),
    ),
    (
        "--repeats",
        dict(
            dest="agentbench_repeats",
            metavar="N",
            help="run every (packet, alias) N independent times, each its own test item "
            "(test_packet[<packet>-<alias>-r1] ... -rN; ini: agentbench_repeats; default: 1)",
        ),
    ),
    (
        "--shard",
        dict(
            dest="agentbench_shard",
            metavar="K/N",
            help="run only shard K of N: a stable split of the (packet, alias, agent, repeat) trials balanced by "
            "the packets' timeout_s; each shard writes its own results folder, `agentbench merge` joins them "
            "(ini: agentbench_shard; docs/scale-out.md)",
        ),
    ),
    (
        "--budget",
        dict(
            dest="agentbench_budget",
            choices=BUDGET_MODES,
            help="what ends a run: wall = the wall clock (timeout_s), turns and any token budget; tokens = turns "
            "and tokens only, the wall clock a safety net at timeout_s x --safety-timeout-factor, so a slow "
            "server does not decide the score (ini: agentbench_budget; default: wall)",
        ),
    ),
    (
        "--max-total-tokens",
        dict(
            dest="agentbench_max_total_tokens",
            metavar="N",
            help="token budget per run (prompt + completion over all calls), overriding each packet's "
            f"limits.max_total_tokens; at least {MIN_TOTAL_TOKENS:,} (ini: agentbench_max_total_tokens)",
        ),
    ),
    (
        "--safety-timeout-factor",
        dict(
            dest="agentbench_safety_timeout_factor",
            metavar="X",
            help="--budget=tokens: the wall-clock safety net is timeout_s times X, X >= 1 (ini: "
            f"agentbench_safety_timeout_factor; default: {DEFAULT_SAFETY_FACTOR:g})",
        ),
    ),
    (
        "--agentbench-keep-requests",
        dict(
            action="store_true",
            default=None,
            dest="agentbench_keep_requests",
            help="keep every model call's messages (capped, redacted) in the record's 'replay' field, so "
            "`agentbench replay results.jsonl` can send them again (ini: agentbench_keep_requests)",
        ),
    ),
    (
        "--agentbench-gateway",
        dict(
            dest="agentbench_gateway",
            action="store_true",
            default=None,
            help="start the measuring gateway for the session (shared by xdist workers): external agents reach "
            "their alias only through it, with a per-run token (ini: agentbench_gateway; default: off)",
        ),
    ),
)
#: The ini keys, as (name, help, type or None, default).
_INIS: tuple[tuple[str, str, str | None, Any], ...] = (
    ("agentbench_results", "folder for the JSONL run log, relative to the ini file", None, ""),
    ("agentbench_html", "path of the HTML report, relative to the ini file", None, ""),
    ("agentbench_session_json", "path of the session outcome JSON, relative to the ini file", None, ""),
    ("agentbench_progress_every", "seconds between live progress lines off a terminal (0: none; default 20)", None, ""),
    ("agentbench_models", "model aliases to run (comma or space separated)", None, ""),
    ("agentbench_models_file", "path of models.yaml, relative to the ini file", None, ""),
    ("agentbench_packets", "task packet folders, relative to the ini file", "paths", []),
    ("agentbench_sandbox", "sandbox kind: auto | docker | local | unsafe-local", None, "auto"),
    (
        "agentbench_docker_host",
        "the docker sandbox's engine: unix:///PATH, tcp://HOST:PORT or ssh://USER@HOST",
        None,
        "",
    ),
    ("agentbench_ray", "run every trial as a Ray task: auto, HOST:PORT, ray://HOST:PORT or local", None, ""),
    ("agentbench_agent_timeout", "agent wall-clock budget in seconds", None, ""),
    ("agentbench_repeats", "independent trials per (packet, alias) (default 1)", None, ""),
    ("agentbench_budget", "what ends a run: wall | tokens (default wall)", None, ""),
    ("agentbench_shard", "run only shard K/N of the trials (e.g. 2/3)", None, ""),
    ("agentbench_max_total_tokens", "token budget per run (prompt + completion), overriding the packets'", None, ""),
    ("agentbench_gateway", "start the measuring gateway for the session (default false)", "bool", False),
    (
        "agentbench_safety_timeout_factor",
        f"budget tokens: the wall-clock safety net is timeout_s x this (default {DEFAULT_SAFETY_FACTOR:g})",
        None,
        "",
    ),
    ("agentbench_gate", "regression gates, one per line: CANDIDATE vs BASELINE max_drop=POINTS", "linelist", []),
    ("agentbench_keep_requests", "keep each model call's messages for `agentbench replay` (true/false)", "bool", False),
    (
        "agentbench_slo",
        "the SLO of `agentbench sweep/load/replay`: key=value pairs of ttft_p50_s, tps_p50, ttft_s, tpot_s, e2e_s",
        None,
        "",
    ),
    (
        "agentbench_prompt_warn_kb",
        f"warn about packet prompts larger than this many KiB (default {PROMPT_WARN_BYTES // 1024}; 0: never)",
        None,
        "",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentbench", "agentbench: evaluate coding agents on task packets")
    for flag, kwargs in _OPTIONS + AGENT_OPTIONS:
        group.addoption(flag, **kwargs)
    for name, help_text, type_, default in _INIS + AGENT_INIS:
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

    packets = _resolve_packets(config)

    sandbox = opt.agentbench_sandbox or config.getini("agentbench_sandbox") or "auto"
    if sandbox not in SANDBOX_KINDS:
        raise pytest.UsageError(
            f"ini agentbench_sandbox: expected one of {', '.join(SANDBOX_KINDS)}, found {sandbox!r}"
        )
    timeout = _agent_timeout(config)

    def path_of(cli: str | None, ini: str) -> Path | None:
        if cli:
            return (here / cli).resolve()
        return (_ini_base(config) / config.getini(ini)).resolve() if config.getini(ini) else None

    resume = (here / opt.agentbench_resume).resolve() if opt.agentbench_resume else None
    prompt_warn = _prompt_warn_bytes(config.getini("agentbench_prompt_warn_kb"))
    _refuse_args_inside_packets(config)
    if not models and _in_ci():
        _refuse_packets_without_models(config, packets)
    results_dir = path_of(opt.agentbench_results, "agentbench_results")
    if results_dir is None and resume is not None:
        results_dir = resume.parent if resume.suffix == ".jsonl" else resume
    shard = _shard(config, results_dir)
    agents = agent_settings(config, _ini_base(config))
    external = any(a != "builtin" for a in agents["agents"])
    return Settings(
        models=models,
        models_file=models_file,
        packets=packets,
        sandbox=sandbox,
        agent_timeout=timeout,
        results_dir=results_dir,
        html=path_of(opt.agentbench_html, "agentbench_html"),
        resume=resume,
        prompt_warn_bytes=prompt_warn,
        repeats=_repeats(config),
        shard=shard,
        keep_requests=_keep_requests(config),
        gateway=bool(opt.agentbench_gateway or config.getini("agentbench_gateway")) or external,
        **agents,
        **_budget_settings(config),
        session_json=path_of(opt.agentbench_session_json, "agentbench_session_json"),
        progress_every=_progress_every(config),
        **_engine_settings(config),
    )


def _agent_timeout(config: pytest.Config) -> float | None:
    """--agent-timeout > ini agentbench_agent_timeout > the packets' own: seconds > 0, or None."""
    timeout = config.option.agentbench_agent_timeout
    if timeout is None and config.getini("agentbench_agent_timeout"):
        raw = config.getini("agentbench_agent_timeout")
        try:
            timeout = float(raw)
        except ValueError:
            raise pytest.UsageError(f"ini agentbench_agent_timeout: expected seconds, found {raw!r}") from None
    if timeout is not None and timeout <= 0:
        raise pytest.UsageError(f"--agent-timeout: expected a number of seconds > 0, found {timeout}")
    return timeout


def _progress_every(config: pytest.Config) -> float:
    """--agentbench-progress-every > ini agentbench_progress_every > 20 s: seconds >= 0 (0: no progress)."""
    raw, where = config.option.agentbench_progress_every, "--agentbench-progress-every"
    if raw is None:
        raw, where = config.getini("agentbench_progress_every"), "ini agentbench_progress_every"
        if not str(raw).strip():
            return 20.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise pytest.UsageError(f"{where}: expected seconds >= 0 (0: no live progress), found {str(raw)!r}")
    return seconds


def _keep_requests(config: pytest.Config) -> bool:
    """--agentbench-keep-requests > ini agentbench_keep_requests > off."""
    flag = config.option.agentbench_keep_requests
    return bool(flag if flag is not None else config.getini("agentbench_keep_requests"))


def _repeats(config: pytest.Config) -> int:
    """--repeats > ini agentbench_repeats > 1: an integer >= 1, else a usage error naming the option."""
    raw, where = config.option.agentbench_repeats, "--repeats"
    if raw is None:
        raw, where = config.getini("agentbench_repeats"), "ini agentbench_repeats"
        if not str(raw).strip():
            return 1
    try:
        n = int(str(raw).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(
            f"{where}: expected a whole number of trials >= 1, found {str(raw)!r}; e.g. --repeats 5"
        )
    return n


def _shard(config: pytest.Config, results_dir: Path | None) -> Shard | None:
    """--shard > ini agentbench_shard: K/N, checked; a results folder holding another shard's results is refused."""
    got = _raw_setting(config, "agentbench_shard", "--shard", "agentbench_shard")
    if got is None:
        return None
    try:
        shard = parse_shard(got[0], got[1])
        if results_dir is not None:
            opt = config.option
            where = "--agentbench-results" if opt.agentbench_results else "--resume" if opt.agentbench_resume else None
            check_results_folder(results_dir, shard, where or "ini agentbench_results")
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    return shard


def _raw_setting(config: pytest.Config, dest: str, flag: str, ini: str) -> tuple[str, str] | None:
    """The option's value and where it came from (CLI > ini), or None when neither gives one."""
    raw = getattr(config.option, dest)
    if raw is not None:
        return str(raw), flag
    raw = config.getini(ini)
    return (str(raw), f"ini {ini}") if str(raw).strip() else None


def _budget_settings(config: pytest.Config) -> dict[str, Any]:
    """--budget, --max-total-tokens, --safety-timeout-factor (each CLI > ini > default), checked once."""
    out: dict[str, Any] = {}
    got = _raw_setting(config, "agentbench_budget", "--budget", "agentbench_budget")
    if got is not None:
        if got[0].strip() not in BUDGET_MODES:
            raise pytest.UsageError(f"{got[1]}: expected one of {', '.join(BUDGET_MODES)}, found {got[0]!r}")
        out["budget"] = got[0].strip()
    got = _raw_setting(config, "agentbench_max_total_tokens", "--max-total-tokens", "agentbench_max_total_tokens")
    if got is not None:
        try:
            tokens = int(got[0].strip().replace("_", ""))
        except ValueError:
            tokens = 0
        if tokens < MIN_TOTAL_TOKENS:
            raise pytest.UsageError(
                f"{got[1]}: expected a whole number of tokens >= {MIN_TOTAL_TOKENS:,} (prompt + completion over a "
                f"run; the system prompt and tools alone take ~500 a call), found {got[0]!r}; e.g. 200000"
            )
        out["max_total_tokens"] = tokens
    got = _raw_setting(
        config, "agentbench_safety_timeout_factor", "--safety-timeout-factor", "agentbench_safety_timeout_factor"
    )
    if got is not None:
        try:
            factor = float(got[0])
        except ValueError:
            factor = math.nan
        if not math.isfinite(factor) or factor < 1:
            raise pytest.UsageError(
                f"{got[1]}: expected a finite number >= 1 (the safety net is timeout_s times it), found {got[0]!r}; "
                f"e.g. {DEFAULT_SAFETY_FACTOR:g}"
            )
        out["safety_timeout_factor"] = factor
    return out


def _engine_settings(config: pytest.Config) -> dict[str, Any]:
    """--ray and --docker-host (each CLI > ini), checked once: where trials run and which engine sandboxes use."""
    from pytest_agentbench.errors import ConfigError
    from pytest_agentbench.sandbox.docker.engine import check_docker_host
    from pytest_agentbench.scale.ray import check_address

    out: dict[str, Any] = {}
    try:
        got = _raw_setting(config, "agentbench_ray", "--ray", "agentbench_ray")
        if got is not None:
            out["ray"] = check_address(got[0], got[1])
        got = _raw_setting(config, "agentbench_docker_host", "--docker-host", "agentbench_docker_host")
        if got is not None:
            out["docker_host"] = check_docker_host(got[0], got[1])
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    return out


def _resolve_packets(config: pytest.Config) -> tuple[Path, ...]:
    """--packets > ini agentbench_packets (each checked: it exists and holds a packet) > task_packets/."""
    if config.option.agentbench_packets:
        here = config.invocation_params.dir
        packets = tuple((here / p).resolve() for p in split_list(config.option.agentbench_packets))
        _check_packet_folders(config, packets, "--packets")
    elif config.getini("agentbench_packets"):
        packets = tuple(Path(p).resolve() for p in config.getini("agentbench_packets"))
        _check_packet_folders(config, packets, "ini agentbench_packets")
    else:
        packets = ((config.rootpath / "task_packets").resolve(),)
    return packets


def _check_packet_folders(config: pytest.Config, folders: tuple[Path, ...], option: str) -> None:
    """Each folder exists and holds a packet; else a usage error naming it (not exit 5 in silence)."""
    if config.option.help:
        return
    for folder in folders:
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise pytest.UsageError(
                f"{option}: {folder} {what}; pass the folder that holds your packets (each a folder with "
                "a packet.yaml), or one packet's folder"
            )
        if not find_packet_files([folder]):
            raise pytest.UsageError(
                f"{option}: {folder} holds no packet.yaml; each packet is a folder with a packet.yaml "
                "(docs/packets.md; copy examples/packet-template/ to start one)"
            )


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _refuse_packets_without_models(config: pytest.Config, packets: tuple[Path, ...]) -> None:
    """CI=true, no alias, and packets this run would collect: a usage error (collect-only is fine)."""
    if config.option.help or config.option.collectonly:
        return
    here = config.invocation_params.dir
    args = [(here / a.split("::")[0]).resolve() for a in config.args] or [here]
    ignored = [(here / i).resolve() for i in (config.option.ignore or [])]
    explicit = args if config.args_source == pytest.Config.ArgsSource.ARGS else []
    roots = [*packets, *explicit]
    folders = [a for a in args if a.is_dir()]
    files = find_packet_files(folders) + [a for a in args if a.name == PACKET_FILE and a.is_file()]
    under = [f for f in files if _below(f, roots) and not _below(f, ignored)]
    if under:
        raise pytest.UsageError(
            f"CI=true: this run would collect {len(under)} packet(s) (e.g. {under[0]}) but selects no model "
            "alias, so every packet would be skipped and the job would pass having run nothing; pass "
            "--models=ALIAS (or the ini key agentbench_models), or leave the packets out of this job"
        )


def _refuse_args_inside_packets(config: pytest.Config) -> None:
    """``pytest <a path inside a packet>`` would collect nothing: say why and how to run it in place."""
    if config.option.help or config.args_source != pytest.Config.ArgsSource.ARGS:
        return
    here = config.invocation_params.dir
    for arg in config.args:
        path = (here / arg.split("::")[0]).resolve()
        root = packet_root_of(path) if path.name != PACKET_FILE else None
        if root is not None:
            raise pytest.UsageError(
                f"{arg} is inside the task packet {root}: with the agentbench plugin active nothing inside a "
                "packet is collected (its workspace tests are the agent's material, its hidden tests belong "
                f"to the gates); to run them in place: pytest -p no:agentbench {arg}"
            )


def _below(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _prompt_warn_bytes(raw: str) -> int | None:
    if not raw:
        return PROMPT_WARN_BYTES
    try:
        kb = float(raw)
    except ValueError:
        raise pytest.UsageError(f"ini agentbench_prompt_warn_kb: expected a number of KiB, found {raw!r}") from None
    if not math.isfinite(kb) or kb < 0:
        raise pytest.UsageError(f"ini agentbench_prompt_warn_kb: expected a number of KiB >= 0, found {raw!r}")
    return int(kb * 1024) if kb > 0 else None
