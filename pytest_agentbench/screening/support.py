"""The serving-support row: can the installed vLLM serve this model, with these parsers?

For an alias that starts vLLM: the architecture named in the model folder's
``config.json`` must be in the installed vLLM's model registry, the
``tool_call_parser`` and ``reasoning_parser`` of ``serve.args`` must be names that
vLLM registers, and the launch command must build (:func:`build_command`: devices,
tensor parallelism, flag rules). For a scripted alias or an existing endpoint, the
row says so and checks that the endpoint lists the alias's model in ``/v1/models``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.screening.folder import ModelFolder
from pytest_agentbench.screening.installed import Installed
from pytest_agentbench.screening.rows import Row

__all__ = ["served_models_row", "vllm_support_row"]

DISQUALIFIER = "the architecture is not in the installed vLLM's registry, or a parser name is not registered there"


def _parser_names(spec: ModelSpec) -> dict[str, str]:
    args = {str(k).replace("-", "_"): v for k, v in dict(spec.serve.args if spec.serve else {}).items()}
    return {k: str(args[k]) for k in ("tool_call_parser", "reasoning_parser") if args.get(k)}


def _command_problem(spec: ModelSpec) -> str | None:
    from pytest_agentbench.serving.vllm.command import build_command
    from pytest_agentbench.serving.vllm.spec import spec_from_alias

    try:
        build_command(spec_from_alias(spec), 8000, base_env={})
    except ConfigError as exc:
        return str(exc)
    return None


def vllm_support_row(spec: ModelSpec, folder: ModelFolder, installed: Installed) -> Row:
    """The row for an alias with ``serve: {engine: vllm}``, from files and the installed vLLM only."""
    where = f"{installed.vllm_distribution or 'vllm'} {installed.vllm_version} ({installed.python})"
    evidence = [f"interpreter: {installed.python}"]
    if not installed.has_vllm:
        why = "; ".join(installed.errors) or "vllm is not importable"
        return Row("serving support", "unknown", f"no vLLM to check against: {why}", DISQUALIFIER, (*evidence, why))
    problems, facts = [], {"vllm": installed.vllm_version, "distribution": installed.vllm_distribution}
    archs = folder.architectures
    if not folder.exists:
        return Row(
            "serving support",
            "unknown",
            f"no model folder at {folder.path}: cannot read config.json",
            DISQUALIFIER,
            (*evidence, f"{folder.path}: not found"),
            facts,
        )
    if not archs:
        problems.append(f"{folder.path / 'config.json'} names no architectures")
    for arch in archs:
        known = arch in installed.architectures
        evidence.append(f"{arch} (config.json): {'in' if known else 'NOT in'} the model registry of {where}")
        if not known:
            problems.append(f"architecture {arch} is not in {where}'s model registry")
    facts["architectures"] = list(archs)
    for flag, name in _parser_names(spec).items():
        registered = installed.tool_parsers if flag == "tool_call_parser" else installed.reasoning_parsers
        evidence.append(f"{flag} {name!r}: {'registered' if name in registered else 'NOT registered'} in {where}")
        if name not in registered:
            problems.append(f"{flag} {name!r} is not registered in {where} (it has: {', '.join(sorted(registered))})")
        facts[flag] = name
    if problem := _command_problem(spec):
        problems.append(f"the launch command does not build: {problem}")
    else:
        evidence.append("the launch command builds (serving/vllm/command.py)")
    if problems:
        return Row("serving support", "fail", "; ".join(problems), DISQUALIFIER, tuple(evidence), facts)
    parsers = ", ".join(f"{k.split('_')[0]} parser {v}" for k, v in _parser_names(spec).items()) or "no parsers"
    finding = f"{' + '.join(archs)} in {where}; {parsers} registered"
    return Row("serving support", "pass", finding, DISQUALIFIER, tuple(evidence), facts)


def served_models_row(spec: ModelSpec, kind: str, listed: Sequence[Mapping[str, Any]] | str) -> Row:
    """The row for a scripted alias or an existing endpoint: does ``/v1/models`` list the model?"""
    rule = "the endpoint does not serve the alias's model (not in /v1/models)"
    what = "a scripted test double (serving/scripted/), not a model" if kind == "scripted" else "an existing endpoint"
    if isinstance(listed, str):
        return Row(
            "serving support",
            "unknown",
            f"{what}; /v1/models did not answer: {listed}",
            rule,
            (f"GET /v1/models: {listed}",),
        )
    ids = [str(m.get("id")) for m in listed]
    evidence = (
        f"serve.engine: {kind}" if kind == "scripted" else f"base_url: {spec.base_url}",
        f"GET /v1/models lists: {', '.join(ids) or 'nothing'}",
    )
    if spec.model not in ids:
        return Row("serving support", "fail", f"{what}; /v1/models does not list {spec.model!r}", rule, evidence)
    verdict = "n/a" if kind == "scripted" else "pass"
    return Row("serving support", verdict, f"{what}; /v1/models lists {spec.model!r}", rule, evidence, {"models": ids})
