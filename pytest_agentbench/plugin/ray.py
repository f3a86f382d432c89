"""``--ray ADDRESS``: the session's trials run as Ray tasks; each item waits for its own and reports it here.

At the end of collection the controller starts the endpoints, joins the cluster and submits one task per
collected packet item (:class:`~pytest_agentbench.scale.ray.RayExecutor`); ``agentbench_run``
(``fixtures.py``) then takes :meth:`RayRuns.record_for` instead of running the trial in this process, and
the item reports the record as usual: its outcome, JUnit properties, report sections and
``pytest_agentbench_run_done`` (the JSONL). While an item waits, every trial that finishes is journaled at
once to ``results-ray.jsonl`` in the results folder (the merge keeps one line per run id), so a record
that came back is kept even if the session dies before its item is reached. Not with ``-n`` (xdist would
submit every trial once per worker), and not with a conftest that implements
``pytest_agentbench_make_sandbox`` or ``_make_adapter``: those run in this process, the tasks on the nodes.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.plugin.collection import Case
from pytest_agentbench.plugin.session import SESSION, AgentbenchSession

__all__ = ["RAY_RUNS", "RayRuns", "pytest_configure_ray"]


@pytest.hookimpl(trylast=True, specname="pytest_configure")
def pytest_configure_ray(config: pytest.Config) -> None:
    """With ``--ray``: refuse what cannot work with it, then register :class:`RayRuns` (after the session's)."""
    state = config.stash.get(SESSION, None)
    if state is None or state.settings.ray is None or config.option.help or hasattr(config, "workerinput"):
        return
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            "--ray runs every trial as a Ray task from this process; with -n each xdist worker would submit all "
            "of them again: use --ray or -n, not both"
        )
    if importlib.util.find_spec("ray") is None:
        from pytest_agentbench.scale.ray import INSTALL_HINT

        raise pytest.UsageError(f"--ray {state.settings.ray}: Ray is not installed here: {INSTALL_HINT}")
    runs = RayRuns(config, state.settings.ray)
    config.stash[RAY_RUNS] = runs
    config.pluginmanager.register(runs, "agentbench-ray")


def _case_of(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("agentbench_case") if callspec is not None else None
    return case if isinstance(case, Case) else None


_OUR_HOOKS = ("pytest_agentbench_make_sandbox", "pytest_agentbench_make_adapter")
_DEFAULTS_MODULE = "pytest_agentbench.plugin.fixtures"  # where their default implementations live


class RayRuns:
    """The session's Ray tasks: submitted at collection end, taken by each item, journaled as they arrive."""

    def __init__(self, config: pytest.Config, address: str) -> None:
        self.config, self.address = config, address
        self.executor: Any = None  # scale.ray.RayExecutor, once joined
        self.journal: Any = None  # results.jsonl.JsonlWriter of results-ray.jsonl, on the first arrival
        self.submitted = 0

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.config.option.collectonly:
            return
        cases = [(item, case) for item in session.items if (case := _case_of(item)) is not None]
        if not cases:
            return
        self._refuse_local_hooks()
        state: AgentbenchSession = self.config.stash[SESSION]
        urls, _error = state.ensure_endpoints()  # a start error: each item raises it (fixtures._endpoint_of)
        from pytest_agentbench.scale.ray import RayExecutor

        try:
            self.executor = RayExecutor.connect(self.address)
            self._submit(state, cases, urls)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None

    def _refuse_local_hooks(self) -> None:
        for name in _OUR_HOOKS:
            for impl in getattr(self.config.hook, name).get_hookimpls():
                if impl.function.__module__ != _DEFAULTS_MODULE:
                    raise pytest.UsageError(
                        f"--ray: {impl.plugin_name} implements {name}, which runs in this process only; Ray tasks "
                        "use the default sandbox (--sandbox, --docker-host) and adapter on their nodes. Run "
                        "without --ray, or leave that hook out of the run"
                    )

    def _submit(self, state: AgentbenchSession, cases: list[tuple[pytest.Item, Case]], urls: dict[str, str]) -> None:
        from pytest_agentbench.results.redact import public_url
        from pytest_agentbench.scale.ray import TaskSettings, TrialTask, task_resources

        s = state.settings
        settings = TaskSettings(
            sandbox=s.sandbox,
            docker_host=s.docker_host,
            agent_timeout=s.agent_timeout,
            budget=s.budget,
            max_total_tokens=s.max_total_tokens,
            safety_timeout_factor=s.safety_timeout_factor,
        )
        spans = self.executor.spans_machines()
        demands = {spec.alias: task_resources(spec, spans_machines=spans) for spec in state.specs}
        self.executor.check_placement(demands, urls)
        for item, case in cases:
            spec = case.spec.for_repeat(case.repeat)
            base_url = urls.get(spec.alias) or spec.base_url
            if not base_url:
                continue  # the item raises the start error or "no endpoint" itself
            task = TrialTask(
                key=item.nodeid,
                spec=spec,
                repeat=case.repeat,
                base_url=str(base_url),
                endpoint=public_url(str(base_url)),
                settings=settings,
                metrics_root=state.metrics_root(spec),
            )
            self.executor.submit(task, case.packet, demands[spec.alias])
            self.submitted += 1

    def record_for(self, item: pytest.Item) -> Any:
        """The item's RunRecord, run on the cluster; raises what stopped its trial there."""
        from pytest_agentbench.errors import InfrastructureError

        if self.executor is None:
            raise InfrastructureError(f"--ray {self.address}: no Ray task was submitted for {item.nodeid}")
        result = self.executor.result(item.nodeid, self._journal)
        if result.error is not None:
            raise result.error
        return result.record

    def _journal(self, result: Any) -> None:
        """Write a finished trial's record at once (results-ray.jsonl), whichever item is waiting."""
        if result.record is None:
            return
        from pytest_agentbench.results.jsonl import JsonlWriter, worker_results_path
        from pytest_agentbench.results.record import record_to_dict

        state: AgentbenchSession = self.config.stash[SESSION]
        if state.results_dir is None:
            return
        if self.journal is None:
            self.journal = JsonlWriter(worker_results_path(state.results_dir, "ray"))
        self.journal.write(record_to_dict(result.record, redactor=state.redactor))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.executor is None:
            return
        nodes = len(self.executor.nodes_used)
        terminalreporter.write_line(
            f"agentbench ray: {self.submitted} trial(s) ran as Ray tasks on {nodes} node(s) of {self.address}"
        )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None


RAY_RUNS = pytest.StashKey[RayRuns]()
