"""The session object: what one pytest process knows about this agentbench run.

The controller (or a run without xdist) selects the aliases, owns the model servers (and, with
``--agentbench-gateway``, the measuring gateway in front of them), picks the results folder and merges
the workers' JSONL at the end; xdist workers receive the endpoints, the gateway's handle and the results
folder through ``workerinput`` (session fixtures would run once per worker: xdist#271).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_agentbench.errors import AgentbenchError, ConfigError
from pytest_agentbench.models import MODELS_FILE
from pytest_agentbench.plugin.agents import resolve_agents
from pytest_agentbench.plugin.options import resolve_settings
from pytest_agentbench.plugin.progress import PROGRESS, install_progress
from pytest_agentbench.plugin.settings import Settings
from pytest_agentbench.results.redact import Redactor

if TYPE_CHECKING:
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.serving.endpoints import OnAliasServerProgress

_WORKER_ENDPOINTS = "agentbench_endpoints"
_WORKER_GATEWAY = "agentbench_gateway"  # (gateway handle or None, start error or None), from the controller
_WORKER_RESULTS = "agentbench_results"  # (results folder, completed trials for --resume), from the controller
_WORKER_PROVENANCE = "agentbench_provenance"  # alias -> what serves it (results.provenance), from the controller


@dataclass
class AgentbenchSession:
    """One per pytest process, in ``config.stash[SESSION]``: the selected aliases, their endpoints, the results.

    The process that owns the servers (the xdist controller, or a run without xdist) starts them on first
    need (:meth:`ensure_endpoints`); workers get the URLs, or the start error, from the controller.
    """

    settings: Settings
    specs: list[ModelSpec] = field(default_factory=list)
    endpoints: Any = None  # Endpoints, in the process that owns the servers
    urls: dict[str, str] | None = None
    start_error: str | None = None
    packet_ids: dict[str, Path] = field(default_factory=dict)
    results_dir: Path | None = None  # where this process appends its JSONL (chosen by the controller)
    done: frozenset[tuple[str, str, str, int]] = frozenset()  # (packet, alias, agent, repeat) trials --resume skips
    writer: Any = None  # this process's JsonlWriter, opened on the first record
    session_start: str = ""  # ISO time: the summary shows this session's runs (all of them with --resume)
    records: list[dict[str, Any]] | None = None  # merged records (controller, after sessionfinish)
    estimates: list[Any] | None = None  # reports.estimates.AliasEstimates of those records, per alias
    result_problems: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # files written, for the terminal summary
    metrics_before: dict[str, Any] = field(default_factory=dict)  # alias -> /metrics snapshot at server start
    reconciliation: list[str] = field(default_factory=list)  # client vs server token totals, per alias
    redactor: Redactor = field(default_factory=Redactor)  # every output's secrets (results.redact), set at configure
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)  # alias -> server provenance, once a session
    on_server_progress: OnAliasServerProgress | None = None  # live progress of server starts (plugin.progress)
    gateway: Any = None  # the measuring Gateway, in the process that owns the servers (--agentbench-gateway)
    gateway_handle: dict[str, str] | None = None  # its GatewayHandle as plain data (workers get it)
    gateway_error: str | None = None
    agents: dict[str, Any] = field(default_factory=dict)  # --agent name -> adapter (None: the built-in loop)

    def ensure_endpoints(self) -> tuple[dict[str, str], str | None]:
        """Start the servers once, in the process that owns them; remember a failure."""
        if self.urls is None and self.start_error is None:
            from pytest_agentbench.serving.endpoints import Endpoints

            self.endpoints = Endpoints(redactor=self.redactor, on_progress=self.on_server_progress)
            try:
                self.urls = self.endpoints.start(self.specs)
            except (AgentbenchError, OSError) as exc:
                self.urls, self.start_error = {}, str(exc)
            self._scrape_at_start()
            if self.start_error is None:
                self._read_provenance()
        return self.urls or {}, self.start_error

    def _read_provenance(self) -> None:
        """What serves each alias (vLLM version, model, arguments): asked once per session, not per run."""
        from pytest_agentbench.results.provenance import UNKNOWN, endpoint_provenance

        commands = self.endpoints.commands if self.endpoints is not None else {}
        asked: dict[tuple[Any, ...], dict[str, Any]] = {}  # aliases on one endpoint and model: asked once
        for spec in self.specs:
            url = (self.urls or {}).get(spec.alias) or spec.base_url
            key = (url, spec.model, spec.serve.engine if spec.serve else None, tuple(commands.get(spec.alias) or ()))
            try:
                if key not in asked:
                    asked[key] = endpoint_provenance(
                        spec, url, command=commands.get(spec.alias), redactor=self.redactor
                    )
                self.provenance[spec.alias] = asked[key]
            except Exception as exc:  # provenance is a record's footnote: never fail the run on it
                self.provenance[spec.alias] = {"vllm": UNKNOWN, "vllm_why": f"provenance failed: {exc}"}

    def ensure_gateway(self) -> tuple[dict[str, str] | None, str | None]:
        """Start the measuring gateway once, in the process that owns the servers, in front of every
        selected alias's endpoint; remember a failure. Only with ``--agentbench-gateway``."""
        if self.gateway_handle is None and self.gateway_error is None and self.settings.gateway:
            urls, error = self.ensure_endpoints()
            if error:
                self.gateway_error = f"the agentbench gateway has no endpoints to forward to: {error}"
                return None, self.gateway_error
            from pytest_agentbench.serving.gateway import Gateway, route_for

            routes = {
                spec.alias: route_for(spec, urls.get(spec.alias) or spec.base_url or "")
                for spec in self.specs
                if urls.get(spec.alias) or spec.base_url
            }
            try:
                self.gateway = Gateway(routes).start()
                self.gateway_handle = self.gateway.handle().to_dict()
            except (AgentbenchError, OSError) as exc:
                self.gateway_error = f"the agentbench gateway could not start: {exc}"
        return self.gateway_handle, self.gateway_error

    def gateway_client(self) -> Any:
        """A ``GatewayClient`` of the session's gateway, in any process (an external agent's adapter opens
        its run with it); ``ServerError`` without ``--agentbench-gateway`` or when the gateway failed."""
        from pytest_agentbench.errors import ServerError

        if not self.settings.gateway:
            raise ServerError("no gateway in this session: pass --agentbench-gateway (ini agentbench_gateway = true)")
        handle, error = self.ensure_gateway()
        if error or handle is None:
            raise ServerError(error or "the agentbench gateway was not started")
        from pytest_agentbench.serving.gateway import GatewayClient, GatewayHandle

        return GatewayClient(GatewayHandle.from_dict(handle))

    def _scrape_at_start(self) -> None:
        from pytest_agentbench.serving.vllm.metrics import scrape

        for spec in self.specs:
            root = self.metrics_root(spec)
            if root is None:
                continue
            try:
                self.metrics_before[spec.alias] = scrape(root, model_name=spec.model)
            except Exception as exc:  # metrics are a bonus: never fail the run on them
                self.reconciliation.append(f"{spec.alias}: /metrics not readable at start ({exc})")

    def metrics_root(self, spec: ModelSpec) -> str | None:
        """The root URL of a vLLM server we started (it serves /metrics), else None."""
        urls = self.urls or {}
        if not spec.serve or spec.serve.engine != "vllm" or spec.alias not in urls:
            return None
        return urls[spec.alias].removesuffix("/v1")

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.endpoints is not None:
            self.endpoints.close()
            self.endpoints = None

    def init_results(self, rootpath: Path) -> None:
        """Controller (or a run without xdist): choose the results folder once, read --resume once."""
        import time
        from datetime import UTC, datetime

        self.session_start = datetime.now(UTC).isoformat(timespec="microseconds")
        shard = f"-{self.settings.shard.suffix}" if self.settings.shard else ""  # -shard2of3: one folder per shard
        self.results_dir = self.settings.results_dir or (
            rootpath / ".agentbench" / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{shard}"
        )
        if self.settings.resume is not None:
            from pytest_agentbench.results.jsonl import completed_trials

            self.done = frozenset(completed_trials(self.settings.resume))

    def reconcile(self, records: list[dict[str, Any]]) -> None:
        """Session totals: the client's token sums against the server's counter deltas (must be equal)."""
        from pytest_agentbench.capacity.reconcile import token_reconciliation_line
        from pytest_agentbench.serving.vllm.metrics import diff, scrape_settled

        for spec in self.specs:
            before = self.metrics_before.get(spec.alias)
            root = self.metrics_root(spec)
            if before is None or root is None:
                continue
            try:
                delta = diff(before, scrape_settled(root, model_name=spec.model))
            except Exception as exc:
                self.reconciliation.append(f"{spec.alias}: /metrics not readable at the end ({exc})")
                continue
            self.reconciliation.append(token_reconciliation_line(spec.alias, records, delta))
        if self.gateway is not None:
            for alias, t in self.gateway.totals().items():
                short = "" if t["usage_reported"] else "; some answered calls reported no usage"
                self.reconciliation.append(
                    f"{alias}: gateway {t['calls']} call(s) ({t['failed']} failed, {t['refused']} refused), tokens "
                    f"{t['prompt_tokens']:,} in / {t['completion_tokens']:,} out ({t['cached_tokens']:,} cached){short}"
                )

    def finish(self, rootpath: Path) -> None:
        """Controller only: merge the workers' JSONL, then write benchmark JSON and the HTML report."""
        from pytest_agentbench.results.jsonl import RESULTS_FILE, merge_jsonl, worker_files

        assert self.results_dir is not None
        parts = worker_files(self.results_dir)
        merged_before = self.results_dir / RESULTS_FILE
        if self.settings.resume is not None and merged_before.is_file():
            # Resuming from a results.jsonl alone (e.g. a CI artifact): keep its trials in the new merge.
            parts = [merged_before, *parts]
        if not parts:  # nothing ran (e.g. --collect-only)
            return
        from pytest_agentbench.results.benchmark import default_commit_info, write_benchmark_json

        merged = self.redactor(
            merge_jsonl(parts, self.results_dir / RESULTS_FILE, on_problem=self.result_problems.append)
        )
        this_session = [r for r in merged if str(r.get("timestamp", "")) >= self.session_start]
        self.records = merged if self.settings.resume else this_session
        self.reconcile(self.records)
        bench = write_benchmark_json(
            self.records, self.results_dir / "benchmark.json", commit_info=default_commit_info(rootpath)
        )
        from pytest_agentbench.reports.estimates import ESTIMATES_FILE, estimate_aliases, write_estimates

        aliases = [s.alias for s in self.specs]
        self.estimates = estimate_aliases(self.records, aliases)
        estimates = write_estimates(self.estimates, self.results_dir / ESTIMATES_FILE, self.records)
        self.outputs += [str(self.results_dir / RESULTS_FILE), str(bench), str(estimates)]
        if self.settings.html is not None:
            from pytest_agentbench.reports.html import write_html

            html = write_html(
                self.records, self.settings.html, "agentbench report", aliases=aliases, redactor=self.redactor
            )
            self.outputs.append(str(html))


SESSION = pytest.StashKey[AgentbenchSession]()


def _load_specs(settings: Settings) -> tuple[list[ModelSpec], list[ModelSpec]]:
    """Every alias of the models file (their keys are redacted) and the selected, usable ones."""
    if not settings.models:
        return [], []
    if settings.models_file is None:
        raise pytest.UsageError(
            f"--models={','.join(settings.models)} needs a models file: none found at "
            f"{MODELS_FILE} in the rootdir or current folder; pass --models-file PATH"
        )
    from pytest_agentbench.models.registry import load_models, select_usable

    try:
        known = load_models(settings.models_file)
        return list(known.values()), select_usable(settings.models_file, settings.models, known=known)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    settings = resolve_settings(config)
    known, specs = _load_specs(settings)
    state = AgentbenchSession(settings=settings, specs=specs, redactor=Redactor.from_environment(known))
    state.agents = resolve_agents(settings)
    # A chosen kind is checked at once; auto only where a run may need it (not for --collect-only:
    # asking the Docker engine costs ~0.1 s). Under --ray each node checks its own (plugin/ray.py).
    if settings.ray is None and (settings.sandbox != "auto" or (settings.models and not config.option.collectonly)):
        from pytest_agentbench.errors import SandboxUnavailable
        from pytest_agentbench.sandbox import resolve_kind

        try:
            resolve_kind(settings.sandbox, settings.docker_host)
        except SandboxUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and _WORKER_ENDPOINTS in workerinput:
        state.urls, state.start_error = workerinput[_WORKER_ENDPOINTS]
        state.provenance = dict(workerinput.get(_WORKER_PROVENANCE) or {})
    if workerinput is not None and _WORKER_GATEWAY in workerinput:
        state.gateway_handle, state.gateway_error = workerinput[_WORKER_GATEWAY]
    if workerinput is not None and _WORKER_RESULTS in workerinput:
        results_dir, done = workerinput[_WORKER_RESULTS]
        state.results_dir, state.done = Path(results_dir), frozenset((str(p), str(a), int(r)) for p, a, r in done)
    elif workerinput is None:
        state.init_results(config.rootpath)
    config.stash[SESSION] = state
    install_progress(config, settings.progress_every, state.redactor, state.results_dir)
    if PROGRESS in config.stash and workerinput is None:
        state.on_server_progress = config.stash[PROGRESS].server_progress
    _stop_cleanly_on_sigterm(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(config), "agentbench-xdist")


_PREVIOUS_SIGTERM = pytest.StashKey[Any]()


def _stop_cleanly_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM ends pytest like Ctrl-C, in every process (controller and xdist workers, servers or not).

    The run in progress unwinds: its sandbox is closed and its commands killed; the finished records
    are merged and the servers we started are stopped. A second SIGTERM while that clean-up runs is
    ignored (SIGKILL stops at once). A handler someone else installed is left alone; ours is removed
    again in ``pytest_unconfigure`` (pytester runs in-process).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def during_cleanup(signum: int, frame: Any) -> None:
        pass  # not SIG_IGN: that would be inherited by the commands the clean-up may still start

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, during_cleanup)
        raise KeyboardInterrupt("SIGTERM: stopping cleanly (finished runs are kept)")

    signal.signal(signal.SIGTERM, interrupt)
    config.stash[_PREVIOUS_SIGTERM] = signal.SIG_DFL


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(SESSION, None)
    if state is not None:
        state.close()
    if _PREVIOUS_SIGTERM in config.stash:
        import signal

        signal.signal(signal.SIGTERM, config.stash[_PREVIOUS_SIGTERM])


class _XdistController:
    """Registered only where xdist is installed: the controller owns the servers."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        state = self.config.stash[SESSION]
        node.workerinput[_WORKER_RESULTS] = (str(state.results_dir), sorted(state.done))
        if self.config.option.collectonly or not state.specs:
            return
        node.workerinput[_WORKER_ENDPOINTS] = state.ensure_endpoints()
        node.workerinput[_WORKER_PROVENANCE] = state.provenance
        if state.settings.gateway:
            node.workerinput[_WORKER_GATEWAY] = state.ensure_gateway()


@pytest.hookimpl(tryfirst=True)  # before junitxml's, which writes the file the suite properties go into
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Controller only: merge the workers' JSONL, then write benchmark JSON, estimates and the HTML report,
    and add the per-alias estimates to the JUnit XML as testsuite properties."""
    config = session.config
    state = config.stash.get(SESSION, None)
    if state is None or hasattr(config, "workerinput") or state.results_dir is None:
        return
    state.finish(config.rootpath)
    _junit_suite_properties(config, state)


def _junit_suite_properties(config: pytest.Config, state: AgentbenchSession) -> None:
    """``agentbench.<alias>.pass_at_1`` & co. on the ``<testsuite>``: the controller writes the XML
    (``record_testsuite_property`` does not travel through xdist), so it adds them to its LogXML."""
    if not state.estimates:
        return
    from _pytest.junitxml import xml_key  # pytest's LogXML of --junitxml; absent without the option

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for est in state.estimates:
        for name, value in est.properties():
            xml.add_global_property(state.redactor.text(name), value)
