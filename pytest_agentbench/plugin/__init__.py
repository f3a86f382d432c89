"""The pytest skin: options, packet collection, parametrization, fixtures, hooks.

Every task packet found under ``--packets`` becomes ``test_packet[<packet>-<alias>]``
for each alias in ``--models``. Heavy imports (openai, docker) stay inside the
functions that need them, so ``import pytest_agentbench.plugin`` is cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import AgentbenchError, ConfigError, ServerError
from pytest_agentbench.models.registry import MODELS_FILE, ModelSpec, load_models, select_usable
from pytest_agentbench.packets.schema import PACKET_FILE, Packet, load_packet, packet_root_of
from pytest_agentbench.plugin.settings import SANDBOX_KINDS, Settings, split_list

_WORKER_ENDPOINTS = "agentbench_endpoints"
_WORKER_RESULTS = "agentbench_results"  # (results folder, completed pairs for --resume), from the controller


@dataclass
class _State:
    settings: Settings
    specs: list[ModelSpec] = field(default_factory=list)
    endpoints: Any = None  # Endpoints, in the process that owns the servers
    urls: dict[str, str] | None = None
    start_error: str | None = None
    packet_ids: dict[str, Path] = field(default_factory=dict)
    results_dir: Path | None = None  # where this process appends its JSONL (chosen by the controller)
    done: frozenset[tuple[str, str]] = frozenset()  # (packet, alias) pairs --resume skips
    writer: Any = None  # this process's JsonlWriter, opened on the first record
    session_start: str = ""  # ISO time: the summary shows this session's runs (all of them with --resume)
    records: list[dict[str, Any]] | None = None  # merged records (controller, after sessionfinish)
    result_problems: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # files written, for the terminal summary
    metrics_before: dict[str, Any] = field(default_factory=dict)  # alias -> /metrics snapshot at server start
    reconciliation: list[str] = field(default_factory=list)  # client vs server token totals, per alias


STATE = pytest.StashKey[_State]()


@dataclass(frozen=True)
class Case:
    packet: Packet
    spec: ModelSpec


# -- options ----------------------------------------------------------------
def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_agentbench.plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agentbench", "agentbench: evaluate coding agents on task packets")
    group.addoption(
        "--models",
        action="append",
        dest="agentbench_models",
        metavar="ALIAS[,ALIAS]",
        help="model aliases from models.yaml to run every packet on (ini: agentbench_models)",
    )
    group.addoption(
        "--models-file",
        dest="agentbench_models_file",
        metavar="PATH",
        help=f"the models.yaml to read (ini: agentbench_models_file; default: {MODELS_FILE} in the "
        "rootdir, then in the current folder)",
    )
    group.addoption(
        "--packets",
        action="append",
        dest="agentbench_packets",
        metavar="DIR",
        help="folder(s) holding task packets (ini: agentbench_packets; default: task_packets)",
    )
    group.addoption(
        "--sandbox",
        dest="agentbench_sandbox",
        choices=SANDBOX_KINDS,
        help="where commands run: docker, local, or auto = docker if an engine answers, else local "
        "(ini: agentbench_sandbox; default: auto)",
    )
    group.addoption(
        "--agent-timeout",
        dest="agentbench_agent_timeout",
        type=float,
        metavar="SECONDS",
        help="wall-clock budget per agent run, overriding each packet's limits.timeout_s "
        "(ini: agentbench_agent_timeout)",
    )
    group.addoption(
        "--agentbench-results",
        dest="agentbench_results",
        metavar="DIR",
        help="folder for the run log: one JSONL file per xdist worker, merged at the end into "
        "DIR/results.jsonl and DIR/benchmark.json (ini: agentbench_results; default: "
        ".agentbench/runs/<time>-<pid> in the rootdir)",
    )
    group.addoption(
        "--agentbench-html",
        dest="agentbench_html",
        metavar="PATH",
        help="write a self-contained HTML report (ini: agentbench_html)",
    )
    group.addoption(
        "--resume",
        dest="agentbench_resume",
        metavar="PATH",
        help="skip (packet, alias) pairs that already have a record in PATH (a results folder or "
        "its results.jsonl); new runs are added to that folder",
    )
    parser.addini("agentbench_results", "folder for the JSONL run log, relative to the ini file", default="")
    parser.addini("agentbench_html", "path of the HTML report, relative to the ini file", default="")
    parser.addini("agentbench_models", "model aliases to run (comma or space separated)", default="")
    parser.addini("agentbench_models_file", "path of models.yaml, relative to the ini file", default="")
    parser.addini("agentbench_packets", "task packet folders, relative to the ini file", type="paths", default=[])
    parser.addini("agentbench_sandbox", "sandbox kind: auto | docker | local", default="auto")
    parser.addini("agentbench_agent_timeout", "agent wall-clock budget in seconds", default="")


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


def _load_specs(settings: Settings) -> list[ModelSpec]:
    if not settings.models:
        return []
    if settings.models_file is None:
        raise pytest.UsageError(
            f"--models={','.join(settings.models)} needs a models file: none found at "
            f"{MODELS_FILE} in the rootdir or current folder; pass --models-file PATH"
        )
    try:
        return select_usable(settings.models_file, settings.models)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    settings = resolve_settings(config)
    state = _State(settings=settings, specs=_load_specs(settings))
    if settings.sandbox == "docker":
        from pytest_agentbench.sandbox import docker_status

        ok, why = docker_status()
        if not ok:
            raise pytest.UsageError(f"--sandbox=docker: {why}")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _WORKER_ENDPOINTS in workerinput:
        state.urls, state.start_error = workerinput[_WORKER_ENDPOINTS]
    if workerinput is not None and _WORKER_RESULTS in workerinput:
        results_dir, done = workerinput[_WORKER_RESULTS]
        state.results_dir, state.done = Path(results_dir), frozenset(map(tuple, done))
    elif workerinput is None:
        _init_results(state, config)
    config.stash[STATE] = state
    if workerinput is None and any(spec.serve for spec in state.specs):
        _stop_servers_on_sigterm()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(config), "agentbench-xdist")


def _stop_servers_on_sigterm() -> None:
    """SIGTERM ends pytest like Ctrl-C, so the servers we started are stopped and results merged."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.endpoints is not None:
        state.endpoints.close()
        state.endpoints = None


def _ensure_endpoints(config: pytest.Config) -> tuple[dict[str, str], str | None]:
    """Start the servers once, in the process that owns them; remember a failure."""
    state = config.stash[STATE]
    if state.urls is None and state.start_error is None:
        from pytest_agentbench.serving.endpoints import Endpoints

        state.endpoints = Endpoints()
        try:
            state.urls = state.endpoints.start(state.specs)
        except (AgentbenchError, OSError) as exc:
            state.urls, state.start_error = {}, str(exc)
        for spec in state.specs:
            root = _metrics_root(spec, state.urls or {})
            if root is not None:
                from pytest_agentbench.serving.vllm.metrics import scrape

                try:
                    state.metrics_before[spec.alias] = scrape(root, model_name=spec.model)
                except Exception as exc:  # metrics are a bonus: never fail the run on them
                    state.reconciliation.append(f"{spec.alias}: /metrics not readable at start ({exc})")
    return state.urls or {}, state.start_error


def _metrics_root(spec: ModelSpec, urls: dict[str, str]) -> str | None:
    """The root URL of a vLLM server we started (it serves /metrics), else None."""
    if not spec.serve or spec.serve.engine != "vllm" or spec.alias not in urls:
        return None
    return urls[spec.alias].removesuffix("/v1")


def _reconcile(state: _State, records: list[dict[str, Any]]) -> None:
    """Session totals: the client's token sums against the server's counter deltas (must be equal)."""
    from pytest_agentbench.serving.vllm.metrics import diff, scrape_settled

    for spec in state.specs:
        before = state.metrics_before.get(spec.alias)
        root = _metrics_root(spec, state.urls or {})
        if before is None or root is None:
            continue
        try:
            delta = diff(before, scrape_settled(root, model_name=spec.model))
        except Exception as exc:
            state.reconciliation.append(f"{spec.alias}: /metrics not readable at the end ({exc})")
            continue
        mine = [r for r in records if r.get("alias") == spec.alias]
        client_in = sum(r["client"]["tokens"]["prompt"] for r in mine)
        client_out = sum(r["client"]["tokens"]["completion"] for r in mine)
        same = (client_in, client_out) == (delta.prompt_tokens, delta.generation_tokens)
        verdict = "equal" if same else "MISMATCH"
        state.reconciliation.append(
            f"{spec.alias}: tokens client {client_in:,} in / {client_out:,} out; server /metrics "
            f"{delta.prompt_tokens:,} in / {delta.generation_tokens:,} out: {verdict}"
            + ("" if same else " (a resumed run or traffic from outside this session counts too)")
        )


class _XdistController:
    """Registered only where xdist is installed: the controller owns the servers."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        state = self.config.stash[STATE]
        node.workerinput[_WORKER_RESULTS] = (str(state.results_dir), sorted(state.done))
        if self.config.option.collectonly or not self.config.stash[STATE].specs:
            return
        node.workerinput[_WORKER_ENDPOINTS] = _ensure_endpoints(self.config)


def _init_results(state: _State, config: pytest.Config) -> None:
    """Controller (or a run without xdist): choose the results folder once, read --resume once."""
    import time
    from datetime import UTC, datetime

    settings = state.settings
    state.session_start = datetime.now(UTC).isoformat(timespec="microseconds")
    state.results_dir = settings.results_dir or (
        config.rootpath / ".agentbench" / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    )
    if settings.resume is not None:
        from pytest_agentbench.results.store import completed_pairs

        state.done = frozenset(completed_pairs(settings.resume))


# -- collection -------------------------------------------------------------
def _under(path: Path, roots: tuple[Path, ...] | list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect inside a packet (its workspace tests and hidden files are not ours).

    Below a ``--packets`` folder only ``packet.yaml`` files are collected, even in a
    packet still being written (no packet.yaml yet).
    """
    if collection_path.name == PACKET_FILE:
        return None
    root = packet_root_of(collection_path)
    if root is not None:
        return True
    state = config.stash.get(STATE, None)
    if state is not None and collection_path.is_file() and _under(collection_path.resolve(), state.settings.packets):
        return True
    return None


def _explicit_args(config: pytest.Config) -> list[Path]:
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    here = config.invocation_params.dir
    return [(here / a.split("::")[0]).resolve() for a in config.args]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name != PACKET_FILE:
        return None
    config = parent.config
    roots = list(config.stash[STATE].settings.packets) + _explicit_args(config)
    if not _under(file_path.resolve(), roots):
        return None
    return PacketModule.from_parent(parent, path=file_path)


class PacketModule(pytest.Module):
    """A ``packet.yaml`` collected as a test module whose one test is ``_suite.test_packet``."""

    packet: Packet

    def _getobj(self) -> Any:
        from pytest_agentbench.plugin import _suite

        return _suite

    def collect(self) -> Any:
        state = self.config.stash[STATE]
        try:
            self.packet = load_packet(self.path)
        except ConfigError as exc:
            raise self.CollectError(str(exc)) from None
        other = state.packet_ids.setdefault(self.packet.id, self.path)
        if other != self.path:
            raise self.CollectError(
                f"{self.path}: id: duplicate packet id {self.packet.id!r}, also used by "
                f"{other}; packet ids must be unique"
            )
        return super().collect()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        if isinstance(excinfo.value, self.CollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "agentbench_case" not in metafunc.fixturenames:
        return
    module = metafunc.definition.parent
    if not isinstance(module, PacketModule):
        return
    state = metafunc.config.stash[STATE]
    packet = module.packet
    if not state.specs:
        known = ""
        if state.settings.models_file is not None:
            try:
                aliases = ", ".join(load_models(state.settings.models_file))
                known = f" (known in {state.settings.models_file}: {aliases})"
            except ConfigError:
                pass
        reason = f"no model alias selected: pass --models=ALIAS{known}"
        metafunc.parametrize(
            "agentbench_case", [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=[packet.id]
        )
        return
    metafunc.parametrize(
        "agentbench_case",
        [Case(packet, spec) for spec in state.specs],
        ids=[f"{packet.id}-{spec.alias}" for spec in state.specs],
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--resume: deselect (packet, alias) pairs that already have a record."""
    done = config.stash[STATE].done
    if not done:
        return
    keep, skip = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("agentbench_case") if callspec is not None else None
        finished = isinstance(case, Case) and (case.packet.id, case.spec.alias) in done
        (skip if finished else keep).append(item)
    if skip:
        config.hook.pytest_deselected(items=skip)
        items[:] = keep


# -- fixtures and default hook implementations -----------------------------------
@pytest.fixture
def agentbench_case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture
def agentbench_settings(request: pytest.FixtureRequest) -> Settings:
    return request.config.stash[STATE].settings


@pytest.fixture
def agentbench_run(request: pytest.FixtureRequest, agentbench_case: Case) -> Any:
    """Run the agent on the case's packet and alias, then its gates; returns the RunRecord."""
    from pytest_agentbench.runner import run_packet

    config = request.config
    state = config.stash[STATE]
    packet, spec = agentbench_case.packet, agentbench_case.spec
    urls, error = _ensure_endpoints(config)
    if error:
        raise ServerError(f"model endpoints could not be started: {error}")
    base_url = urls.get(spec.alias) or spec.base_url
    if not base_url:
        raise ServerError(f"{spec.where}: no endpoint for this alias")
    hook = config.hook
    model = hook.pytest_agentbench_make_adapter(spec=spec, base_url=base_url)

    metrics_root = _metrics_root(spec, urls)

    def execute() -> Any:
        before = _try_scrape(metrics_root, spec, settled=False)
        record = run_packet(
            packet,
            spec,
            model,
            lambda p: hook.pytest_agentbench_make_sandbox(packet=p, settings=state.settings),
            agent_timeout=state.settings.agent_timeout,
        )
        after = _try_scrape(metrics_root, spec, settled=True)
        if before is not None and after is not None:
            from pytest_agentbench.serving.vllm.metrics import diff

            delta = diff(before, after).to_dict(prefix="")
            # Other xdist workers share the server: their traffic is in this window too.
            delta["shared_with_other_workers"] = hasattr(config, "workerinput")
            record.extra["server_metrics"] = delta
        return record

    try:
        bench = _benchmark_fixture(request)
        if bench is not None:  # pytest-benchmark active (not under xdist): the run is the measured round
            record = bench.pedantic(execute, rounds=1, iterations=1)
            bench.extra_info.update({k.removeprefix("agentbench."): v for k, v in record.properties()})
        else:
            record = execute()
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()
    item = request.node
    item.user_properties.extend(record.properties())
    item.user_properties.append(("agentbench.endpoint", _public_url(base_url)))
    item.add_report_section("call", "agentbench transcript", record.agent.transcript())
    item.add_report_section("call", "agentbench gates", format_gates(record))
    record.extra.setdefault("nodeid", item.nodeid)
    hook.pytest_agentbench_run_done(record=record, item=item)
    return record


def _try_scrape(root: str | None, spec: ModelSpec, *, settled: bool) -> Any:
    if root is None:
        return None
    from pytest_agentbench.serving.vllm.metrics import scrape, scrape_settled

    try:
        return (
            scrape_settled(root, model_name=spec.model, timeout_s=3.0)
            if settled
            else scrape(root, model_name=spec.model)
        )
    except Exception:  # a scrape that fails leaves the run without server numbers, nothing more
        return None


def _benchmark_fixture(request: pytest.FixtureRequest) -> Any:
    """pytest-benchmark's fixture where that plugin is active and enabled, else None.

    Under xdist pytest-benchmark disables itself; the controller's benchmark.json covers that case.
    """
    if not request.config.pluginmanager.hasplugin("benchmark"):
        return None
    session = getattr(request.config, "_benchmarksession", None)  # asking a disabled one only earns a warning
    if session is None or getattr(session, "disabled", True):
        return None
    return request.getfixturevalue("benchmark")


def _public_url(url: str) -> str:
    """scheme://host:port/path only: no user:password@ or ?key= that could carry a secret."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


@pytest.hookimpl(trylast=True)
def pytest_agentbench_make_sandbox(packet: Packet, settings: Settings) -> Any:
    from pytest_agentbench.sandbox import make_sandbox

    return make_sandbox(settings.sandbox, packet.workspace)


@pytest.hookimpl(trylast=True)
def pytest_agentbench_make_adapter(spec: ModelSpec, base_url: str) -> Any:
    from pytest_agentbench.models.adapter import ModelAdapter

    return ModelAdapter(spec, base_url=base_url)


@pytest.hookimpl(trylast=True)
def pytest_agentbench_run_done(record: Any, item: pytest.Item) -> None:
    """Default: append the run to this process's JSONL file (fsynced; the controller merges them)."""
    from pytest_agentbench.results.store import JsonlWriter, record_to_dict, worker_results_path

    state = item.config.stash[STATE]
    if state.results_dir is None:
        return
    if state.writer is None:
        worker = getattr(item.config, "workerinput", {}).get("workerid")
        state.writer = JsonlWriter(worker_results_path(state.results_dir, worker))
    state.writer.write(record_to_dict(record))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Controller only: merge the workers' JSONL, then write benchmark JSON and the HTML report."""
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or hasattr(config, "workerinput") or state.results_dir is None:
        return
    from pytest_agentbench.results.store import (
        RESULTS_FILE,
        default_commit_info,
        merge_jsonl,
        worker_files,
        write_benchmark_json,
    )

    parts = worker_files(state.results_dir)
    if not parts:
        return
    merged = merge_jsonl(parts, state.results_dir / RESULTS_FILE, on_problem=state.result_problems.append)
    state.records = (
        merged if state.settings.resume else [r for r in merged if str(r.get("timestamp", "")) >= state.session_start]
    )
    _reconcile(state, state.records)
    bench = write_benchmark_json(
        state.records, state.results_dir / "benchmark.json", commit_info=default_commit_info(config.rootpath)
    )
    state.outputs += [str(state.results_dir / RESULTS_FILE), str(bench)]
    if state.settings.html is not None:
        from pytest_agentbench.reports.html import write_html

        state.outputs.append(
            str(
                write_html(
                    state.records, state.settings.html, "agentbench report", aliases=[s.alias for s in state.specs]
                )
            )
        )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.records:
        return
    from pytest_agentbench.reports.summary import format_summary

    tr = terminalreporter
    tr.write_sep("=", "agentbench")
    for problem in state.result_problems:
        tr.write_line(f"warning: {problem}", yellow=True)
    for line in state.reconciliation:
        tr.write_line(line, red="MISMATCH" in line or "not readable" in line)
    width = min(100, config.get_terminal_writer().fullwidth)
    tr.write_line(format_summary(state.records, width=width, aliases=[s.alias for s in state.specs]))
    for path in state.outputs:
        tr.write_line(f"written: {path}")


def format_gates(record: Any) -> str:
    lines = []
    for g in record.gates:
        mark = "PASS" if g.passed else "FAIL"
        lines.append(
            f"{mark} {g.id}{' (guard)' if g.guard else ''}: `{g.command}` -> exit {g.exit_code}"
            f"{' (timed out)' if g.timed_out else ''}, expected {g.expect_exit} [{g.duration_s:.2f} s]"
        )
        if not g.passed and g.output.strip():
            lines.extend("    " + line for line in g.tail().splitlines())
    return "\n".join(lines)


def check_run(record: Any) -> None:
    """The assertion of ``test_packet``: every gate holds."""
    from pytest_agentbench.packets.gates import assert_gates

    agent = record.agent
    context = f"agent outcome: {agent.outcome}, {len(agent.turns)} turn(s)"
    if agent.failure:
        context += f"; model call failed ({agent.failure}): {agent.error}"
    elif agent.error:
        context += f"; {agent.error}"
    assert_gates(record.gates, context)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A missed gate or a broken sandbox/server reads as its message, not as plugin internals."""
    from pytest_agentbench.errors import InfrastructureError
    from pytest_agentbench.packets.gates import GateFailed

    report = yield
    excinfo = call.excinfo
    if excinfo is not None and isinstance(item, pytest.Function) and "agentbench_case" in item.fixturenames:
        if excinfo.errisinstance(GateFailed):
            report.longrepr = str(excinfo.value)
        elif excinfo.errisinstance(InfrastructureError):
            report.longrepr = f"{type(excinfo.value).__name__} (infrastructure, not the model): {excinfo.value}"
    return report


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE, None)
    if state is None or not state.specs:
        return None
    aliases = ", ".join(f"{s.alias}{' (scripted test double)' if s.test_double else ''}" for s in state.specs)
    return [
        f"agentbench: models={aliases}; sandbox={state.settings.sandbox}; models file={state.settings.models_file}"
        f"; pid={os.getpid()}"
    ]
