"""Fixtures and the default implementations of our hooks (a conftest.py can replace each)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_agentbench.agents.transcript import AGENT_START
from pytest_agentbench.errors import AgentStartError, EndpointUnreachable, ServerError
from pytest_agentbench.packets.schema import Packet
from pytest_agentbench.plugin.collection import Case
from pytest_agentbench.plugin.progress import track_run
from pytest_agentbench.plugin.session import SESSION
from pytest_agentbench.plugin.settings import Settings

if TYPE_CHECKING:
    from pytest_agentbench.models.registry import ModelSpec

_NOT_GRADED = "not run: the endpoint never answered, so there is nothing of the model's to grade"


@pytest.fixture
def agentbench_case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture
def agentbench_settings(request: pytest.FixtureRequest) -> Settings:
    return request.config.stash[SESSION].settings


@pytest.fixture
def agentbench_run(request: pytest.FixtureRequest, agentbench_case: Case) -> Any:
    """Run the agent on the case's packet and alias, then its gates; returns the RunRecord. A run whose
    endpoint never answered is recorded, then raised as EndpointUnreachable: in a fixture, an ERROR.
    Under ``--ray`` the trial ran as a Ray task (plugin/ray.py): this takes its record."""
    from pytest_agentbench.plugin.ray import RAY_RUNS
    from pytest_agentbench.results.redact import public_url

    config = request.config
    state = config.stash[SESSION]
    spec = agentbench_case.spec.for_repeat(agentbench_case.repeat)
    base_url = _endpoint_of(state, spec)
    item = request.node
    remote = config.stash.get(RAY_RUNS, None)
    if remote is not None:
        record = remote.record_for(item)
    else:
        record = _run_here(request, state, agentbench_case, spec, base_url)
    endpoint = public_url(base_url)
    _report_to_item(item, record, endpoint)
    config.hook.pytest_agentbench_run_done(record=record, item=item)
    if not record.agent.counted:
        if record.agent.failure == AGENT_START:
            raise AgentStartError(record.agent.error)
        raise EndpointUnreachable(spec.alias, endpoint, record.agent.failure or "?", record.agent.error)
    return record


def _run_here(request: pytest.FixtureRequest, state: Any, case: Case, spec: ModelSpec, base_url: str) -> Any:
    """The trial in this process, through our hooks (adapter, sandbox), measured by pytest-benchmark if active.
    An external agent (``--agent``) reaches its alias through the gateway instead of a model client."""
    from pytest_agentbench.plugin.agents import external_agent
    from pytest_agentbench.runner import run_packet

    config = request.config
    hook = config.hook
    packet, repeat = case.packet, case.repeat
    agent = external_agent(state, case.agent, spec)
    model = _model_client(hook, spec, base_url, agent)
    if state.settings.keep_requests:  # what `agentbench replay` needs (capacity.trace)
        from pytest_agentbench.capacity.trace import RequestRecorder

        model = RequestRecorder(model)
    metrics_root = state.metrics_root(spec)

    def execute() -> Any:
        from pytest_agentbench.serving.vllm.metrics import open_window

        window = open_window(metrics_root, spec.model)
        with track_run(config, request.node) as on_progress:
            record = run_packet(
                packet,
                spec,
                model,
                lambda p: hook.pytest_agentbench_make_sandbox(
                    packet=p,
                    settings=state.settings,
                    agent=agent.adapter if agent is not None else None,
                    gateway_socket=agent.gateway_socket if agent is not None else None,
                ),
                on_progress=on_progress,
                agent=agent,
                **_budgets(state.settings),
            )
        record.repeat = repeat
        record.provenance = state.provenance.get(spec.alias, {})
        if state.settings.keep_requests:
            record.extra["replay"] = model.replay()
        delta = window.close()  # None when there is no /metrics or a scrape failed: no server numbers then
        if delta is not None:
            # Other xdist workers share the server: their traffic is in this window too.
            delta["shared_with_other_workers"] = hasattr(config, "workerinput")
            record.extra["server_metrics"] = delta
        return record

    try:
        bench = _benchmark_fixture(request)
        if bench is not None:  # pytest-benchmark active (not under xdist): the run is the measured round
            record = bench.pedantic(execute, rounds=1, iterations=1)
            props = state.redactor(record.properties())
            bench.extra_info.update({k.removeprefix("agentbench."): v for k, v in props})
        else:
            record = execute()
    finally:
        model.close()
        if agent is not None:
            agent.client.close()
    return record


def _model_client(hook: Any, spec: ModelSpec, base_url: str, agent: Any) -> Any:
    """The built-in loop's model client (our hook), or for an external agent one that is never asked."""
    if agent is None:
        return hook.pytest_agentbench_make_adapter(spec=spec, base_url=base_url)
    from pytest_agentbench.agents.external.trial import NoModel

    return NoModel(agent.name)


def _budgets(settings: Settings) -> dict[str, Any]:
    """run_packet's budget arguments from the session's options (agent timeout, budget mode, tokens)."""
    return {
        "agent_timeout": settings.agent_timeout,
        "budget": settings.budget,
        "max_total_tokens": settings.max_total_tokens,
        "safety_factor": settings.safety_timeout_factor,
    }


def _report_to_item(item: pytest.Item, record: Any, endpoint: str) -> None:
    """What pytest keeps of the run: JUnit properties, the transcript and gates as report sections."""
    from pytest_agentbench.packets.gates import format_gate_results

    record.extra.setdefault("endpoint", endpoint)
    item.user_properties.extend(record.properties())
    item.user_properties.append(("agentbench.endpoint", endpoint))
    item.add_report_section("call", "agentbench transcript", record.agent.transcript())
    item.add_report_section("call", "agentbench gates", format_gate_results(record.gates) or _NOT_GRADED)
    record.extra.setdefault("nodeid", item.nodeid)


def _endpoint_of(state: Any, spec: ModelSpec) -> str:
    """The base URL this run talks to: the server the session started for the alias, else its base_url."""
    urls, error = state.ensure_endpoints()
    if error:
        raise ServerError(f"model endpoints could not be started: {error}")
    base_url = urls.get(spec.alias) or spec.base_url
    if not base_url:
        raise ServerError(f"{spec.where}: no endpoint for this alias")
    return str(base_url)


def _benchmark_fixture(request: pytest.FixtureRequest) -> Any:
    """pytest-benchmark's fixture where that plugin is active and enabled and the user asked for its
    output (any ``--benchmark-*`` option), else None.

    Fed unasked, pytest-benchmark fills the screen with its table (one round per run, the outlier
    legend); our own benchmark.json is written either way. Its session object registers itself as the
    plugin "pytest-benchmark"; asking a disabled one for the fixture only earns a warning. Under xdist
    pytest-benchmark disables itself; the controller's benchmark.json covers that case.
    """
    session = request.config.pluginmanager.getplugin("pytest-benchmark")
    if session is None or getattr(session, "disabled", True) or not _asked_for_benchmark(request.config):
        return None
    return request.getfixturevalue("benchmark")


def _asked_for_benchmark(config: pytest.Config) -> bool:
    """Whether a ``--benchmark-*`` option was given: on the command line, in PYTEST_ADDOPTS or ini addopts."""
    import os
    import shlex

    given = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    given += config.getini("addopts")
    return any(str(arg).startswith("--benchmark-") for arg in given)


@pytest.hookimpl(trylast=True)
def pytest_agentbench_make_sandbox(
    packet: Packet, settings: Settings, agent: Any = None, gateway_socket: str | None = None
) -> Any:
    from pytest_agentbench.sandbox import make_sandbox

    install = getattr(agent, "install", None)
    return make_sandbox(
        settings.sandbox, packet.workspace, settings.docker_host, install=install, gateway_socket=gateway_socket
    )


@pytest.hookimpl(trylast=True)
def pytest_agentbench_make_adapter(spec: ModelSpec, base_url: str) -> Any:
    from pytest_agentbench.models.adapter import ModelAdapter

    return ModelAdapter(spec, base_url=base_url)


@pytest.hookimpl(trylast=True)
def pytest_agentbench_run_done(record: Any, item: pytest.Item) -> None:
    """Default: append the run to this process's JSONL file (fsynced; the controller merges them)."""
    from pytest_agentbench.results.export import keep_whole_patch
    from pytest_agentbench.results.jsonl import JsonlWriter, worker_results_path
    from pytest_agentbench.results.record import record_to_dict

    state = item.config.stash[SESSION]
    if state.results_dir is None:
        return
    keep_whole_patch(record, state.results_dir, state.redactor)
    if state.writer is None:
        worker = getattr(item.config, "workerinput", {}).get("workerid")
        state.writer = JsonlWriter(worker_results_path(state.results_dir, worker))
    state.writer.write(record_to_dict(record, redactor=state.redactor))
