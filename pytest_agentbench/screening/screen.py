"""Screening candidates: gather the evidence for each of the five rows, one candidate at a time.

For each alias: the files first (licence; for a vLLM alias the model folder and the
installed vLLM's registries, read without a server), then the endpoint - a vLLM
server started and stopped here (one at a time: never two on the machine), a
scripted test double, or an existing ``base_url`` - for ``/v1/models``, the probe
battery (``repeat`` rounds alone, ``repeat`` rounds at ``concurrency`` at once) and
the failure provocations. A server that does not start fails serving support and
leaves the rows that need it ``unknown``. pytest-free.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_agentbench.errors import ConfigError, InfrastructureError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.probe import ProbeResult, measure_context, run_probe, served_max_model_len, served_models
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.results.redact import Redactor
from pytest_agentbench.screening.context import DISQUALIFIER as CONTEXT_RULE
from pytest_agentbench.screening.context import Budget, context_row, estimate_budget, logged_budget
from pytest_agentbench.screening.failures import DISQUALIFIER as FAILURE_RULE
from pytest_agentbench.screening.failures import failure_row, provoke
from pytest_agentbench.screening.folder import ModelFolder
from pytest_agentbench.screening.installed import Installed, PackageInfo, inspect_environment
from pytest_agentbench.screening.licence import licence_row
from pytest_agentbench.screening.rows import Row, Screen
from pytest_agentbench.screening.support import served_models_row, vllm_support_row
from pytest_agentbench.screening.toolformat import DISQUALIFIER as TOOL_RULE
from pytest_agentbench.screening.toolformat import tool_format_row

__all__ = ["Environments", "ScreenOptions", "screen_candidate", "screen_candidates"]


@dataclass(frozen=True)
class ScreenOptions:
    repeat: int = 3  # rounds of the tool checks, alone and under load
    concurrency: int = 4  # calls at once in the loaded rounds (1: no loaded rounds)
    gpu: str | None = None  # the GPU a GPU alias's memory is sized on (agentbench size names)
    context_need: int | None = None  # tokens the team needs; default: the served context
    context: int | None = None  # the context of a server that reports none


Progress = Callable[[str], None]


def _kind(spec: ModelSpec) -> str:
    if spec.serve is None:
        return "endpoint"
    return "scripted" if spec.serve.engine == "scripted" else "vllm"


class Environments:
    """Installed environments, inspected once per interpreter (vLLM is slow to import)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, tuple[str, ...], bool], Installed] = {}

    def get(self, python: str, packages: tuple[str, ...], with_vllm: bool) -> Installed:
        key = (python, packages, with_vllm)
        if key not in self._seen:
            self._seen[key] = inspect_environment(python, packages=packages, with_vllm=with_vllm)
        return self._seen[key]


def _vllm_python(spec: ModelSpec) -> str:
    from pytest_agentbench.serving.vllm.command import resolve_python
    from pytest_agentbench.serving.vllm.spec import spec_from_alias

    return resolve_python(spec_from_alias(spec))


def _static(spec: ModelSpec, kind: str, envs: Environments) -> tuple[ModelFolder | None, Installed | None, Row]:
    """The model folder, the installed vLLM (vLLM aliases) and the licence row: no server needed."""
    package = spec.license.package if spec.license is not None else None
    packages = (package,) if package else ()
    folder = installed = None
    infos: list[PackageInfo] = []
    if kind == "vllm":
        assert spec.serve is not None
        folder = ModelFolder(spec.serve.model_path or spec.model)
        installed = envs.get(_vllm_python(spec), packages, True)
        infos = [installed.packages[p] for p in packages if p in installed.packages]
    if package and not any(i.error is None for i in infos):  # not in vLLM's interpreter: look in ours
        infos = [envs.get(sys.executable, packages, False).packages[package]]
    return folder, installed, licence_row(spec, folder, infos)


@contextlib.contextmanager
def _serving(spec: ModelSpec, redactor: Redactor | None) -> Iterator[tuple[str, Path | None]]:
    """(base URL, vLLM log) of the alias's endpoint while the block runs; a server we start stops after."""
    if spec.serve is None:
        assert spec.base_url is not None
        yield spec.base_url, None
    elif spec.serve.engine == "scripted":
        from pytest_agentbench.serving.scripted import ScriptedServer

        assert spec.serve.script is not None
        with ScriptedServer(spec.serve.script, model_names=[spec.model]) as scripted:
            yield scripted.base_url, None
    else:
        from pytest_agentbench.serving.vllm.process import VLLMServer
        from pytest_agentbench.serving.vllm.spec import spec_from_alias

        with VLLMServer(spec_from_alias(spec), redactor=redactor) as server:
            yield server.base_url, server.log_path


_RULES = {"tool format": TOOL_RULE, "context policy": CONTEXT_RULE, "failure behaviour": FAILURE_RULE}


def _not_run(criterion: str, why: str) -> Row:
    return Row(criterion, "unknown", f"not run: {why}", _RULES[criterion], (why,))


def _budget(
    spec: ModelSpec, folder: ModelFolder | None, log: Path | None, options: ScreenOptions, served: int | None
) -> tuple[Budget | None, str | None]:
    """vLLM's logged KV budget (measured), else the sizing estimate; and the estimate as a note when both exist."""
    if folder is None:
        return None, None
    estimate = estimate_budget(spec, folder, options.gpu, options.context_need or served)
    logged = logged_budget(log)
    if logged is None:
        return estimate, None
    model_max = folder.max_context
    fits = None if model_max is None or logged.tokens is None else model_max <= logged.tokens
    return replace(logged, model_max_fits=fits), f"sizing estimate for comparison: {estimate.source}"


def _dynamic(
    spec: ModelSpec,
    kind: str,
    folder: ModelFolder | None,
    options: ScreenOptions,
    redactor: Redactor | None,
    progress: Progress,
) -> tuple[list[Row], list[str]]:
    """Serving support (endpoints), tool format, context policy and failure behaviour, from a live endpoint."""
    notes: list[str] = []
    with _serving(spec, redactor) as (url, log):
        progress(f"{spec.alias}: endpoint {url}")
        listed = served_models(spec, url)
        if isinstance(listed, str) and listed.startswith(("ConnectError", "ReadTimeout", "ConnectionLost")):
            raise InfrastructureError(f"{url}: GET /v1/models got no answer ({listed})")
        served = served_max_model_len(spec, url, listed)
        with ModelAdapter(spec, base_url=url) as adapter:
            ctx = measure_context(adapter, url, options.context)
        progress(f"{spec.alias}: probe battery, {options.repeat} round(s) alone")
        runs: list[tuple[str, list[ProbeResult]]] = [
            ("alone", run_probe(spec, url, repeat=options.repeat, context=ctx))
        ]
        if options.concurrency > 1:
            progress(f"{spec.alias}: tool checks, {options.repeat} round(s) at {options.concurrency} at once")
            loaded = run_probe(
                spec, url, repeat=options.repeat, concurrency=options.concurrency, context=ctx, tool_checks_only=True
            )
            runs.append((f"{options.concurrency} at once", loaded))
        progress(f"{spec.alias}: failure provocations")
        provocations = provoke(spec, url, ctx)
        budget, note = _budget(spec, folder, log, options, served)
    notes += [note] if note else []
    rows = [
        tool_format_row(spec, runs),
        context_row(
            spec,
            model_max=folder.max_context if folder else None,
            served=served,
            budget=budget,
            results=runs[0][1],
            need=options.context_need,
        ),
        failure_row(provocations, [results for _, results in runs]),
    ]
    if kind != "vllm":
        rows.insert(0, served_models_row(spec, kind, listed))
    return rows, notes


def screen_candidate(
    spec: ModelSpec,
    options: ScreenOptions,
    *,
    redactor: Redactor | None = None,
    progress: Progress | None = None,
    environments: Environments | None = None,
) -> Screen:
    """The five rows for one alias (starting and stopping its server if it has one)."""
    say = progress or (lambda _: None)
    start = time.perf_counter()
    kind = _kind(spec)
    say(f"{spec.alias}: reading the files")
    folder, installed, licence = _static(spec, kind, environments or Environments())
    support = vllm_support_row(spec, folder, installed) if kind == "vllm" and folder and installed else None
    notes: list[str] = []
    if support is not None and support.verdict == "fail":
        rows = [
            _not_run(c, "serving support failed: no server started")
            for c in ("tool format", "context policy", "failure behaviour")
        ]
    else:
        try:
            rows, notes = _dynamic(spec, kind, folder, options, redactor, say)
        except (InfrastructureError, ConfigError) as exc:
            why = f"the endpoint did not come up: {str(exc).splitlines()[0][:300]}"
            if kind == "vllm" and support is not None:
                support = replace(support, verdict="fail", finding=why, evidence=(*support.evidence, str(exc)[:2000]))
            rows = [_not_run(c, why) for c in ("tool format", "context policy", "failure behaviour")]
            if kind != "vllm":
                rows.insert(0, Row("serving support", "fail", why, "the endpoint does not answer", (str(exc)[:2000],)))
    if support is not None:
        rows.insert(0, support)
    return Screen(
        spec.alias, spec.model, kind, (licence, *rows), time.perf_counter() - start, spec.test_double, tuple(notes)
    )


def screen_candidates(
    specs: Sequence[ModelSpec],
    options: ScreenOptions,
    *,
    redactor: Redactor | None = None,
    progress: Progress | None = None,
) -> list[Screen]:
    """Each candidate in turn (servers one at a time); the installed environments inspected once."""
    environments = Environments()
    return [
        screen_candidate(s, options, redactor=redactor, progress=progress, environments=environments) for s in specs
    ]
