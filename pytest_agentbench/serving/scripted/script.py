"""A script for the scripted server: loading (a dict, a YAML file, a folder of them), checking, picking.

:func:`load_script` gives the conversations as plain dicts (what a test reads);
:func:`load_conversations` the same as :class:`Conversation` objects that remember the file they
came from, so a broken plan names the file, the step and the fix (a
:class:`~pytest_agentbench.errors.ConfigError`, raised when the server is made, never mid-run).
:func:`pick` chooses the conversation for a request: the first whose ``match`` occurs in the
request's opening user text (or that has no ``match``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.serving.scripted.plan import STEP_KINDS

__all__ = ["Conversation", "load_conversations", "load_max_model_len", "load_script", "pick"]

_STEP_OPTIONS = ("thinking", "text", "via", "delay_s")
_STEP_FORMS = (
    "a plan step is one of `shell: CMD`, `write: {path: P, content: C}`, `say: TEXT` or `finish: TEXT`, "
    "with optional `thinking: TEXT`, `text: TEXT` (shell, write), `via: shell|tool` (write) and `delay_s: N`"
)


@dataclass(frozen=True)
class Conversation:
    """One scripted conversation: ``responses`` (replayed as given) or ``plan`` (mapped onto tools)."""

    index: int  # its place among all the script's conversations
    where: str  # "FILE: conversations[i]" for messages
    match: str | None
    responses: tuple[Mapping[str, Any], ...] = ()
    plan: tuple[Mapping[str, Any], ...] | None = None
    workdir: str | None = None  # plans: relative write paths are joined onto it


def _documents(source: Path | str | Mapping[str, Any]) -> list[tuple[str, Any]]:
    if isinstance(source, Mapping):
        return [("<script dict>", source)]
    path = Path(source)
    files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]
    docs: list[tuple[str, Any]] = []
    for file in files:
        try:
            docs.append((str(file), yaml.safe_load(file.read_text(encoding="utf-8")) or {}))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: invalid YAML: {exc}; fix the script file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read the script ({exc}); give a readable UTF-8 YAML file") from None
    return docs


def _fail(where: str, problem: str, fix: str = _STEP_FORMS) -> ConfigError:
    return ConfigError(f"{where}: {problem}; {fix}")


def _check_text(step: Mapping[str, Any], key: str, where: str, *, empty: bool = True) -> None:
    value = step[key]
    if not isinstance(value, str) or (not empty and not value.strip()):
        found = type(value).__name__ if not isinstance(value, str) else "an empty string"
        raise _fail(where, f"{key}: expected {'a' if empty else 'a non-empty'} string, found {found}")


def _check_step(step: Any, where: str) -> None:
    if not isinstance(step, Mapping):
        raise _fail(where, f"expected a mapping, found {type(step).__name__} {step!r}")
    unknown = sorted(set(step) - set(STEP_KINDS) - set(_STEP_OPTIONS))
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(map(repr, unknown))}")
    kinds = [k for k in STEP_KINDS if k in step]
    if len(kinds) != 1:
        raise _fail(where, f"expected exactly one of {', '.join(STEP_KINDS)}, found {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    if kind == "write":
        write = step["write"]
        if not isinstance(write, Mapping) or set(write) != {"path", "content"}:
            raise _fail(where, f"write: expected a mapping with exactly `path` and `content`, found {write!r}")
        _check_text(write, "path", f"{where}.write", empty=False)
        _check_text(write, "content", f"{where}.write")
    else:
        _check_text(step, kind, where, empty=kind != "shell")
    for key in ("thinking", "text"):
        if key in step:
            _check_text(step, key, where)
    if "text" in step and kind in ("say", "finish"):
        raise _fail(where, f"text: a {kind} step's text is its value; drop `text:`")
    if "via" in step and (kind != "write" or step["via"] not in ("shell", "tool")):
        raise _fail(where, f"via: only a write step takes it, as `shell` or `tool`, found {step['via']!r}")
    delay = step.get("delay_s", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise _fail(where, f"delay_s: expected a number >= 0, found {delay!r}")


def _conversation(raw: Any, index: int, where: str) -> Conversation:
    if not isinstance(raw, Mapping):
        raise _fail(
            where, f"expected a mapping, found {type(raw).__name__}", "give `match:` and `responses:` or `plan:`"
        )
    if "plan" in raw and "responses" in raw:
        raise _fail(where, "gives both `responses` and `plan`", "keep one: responses are replayed, a plan is mapped")
    match = raw.get("match")
    if match is not None and not isinstance(match, str):
        raise _fail(where, f"match: expected a string, found {match!r}", "quote the substring to match")
    if "plan" not in raw:
        responses = raw.get("responses") or []
        if not isinstance(responses, list):
            raise _fail(where, "responses: expected a list", "give one entry per assistant turn")
        return Conversation(index, where, match, responses=tuple(responses))
    plan = raw["plan"]
    if not isinstance(plan, list) or not plan:
        raise _fail(f"{where}.plan", f"expected a non-empty list of steps, found {plan!r}")
    for n, step in enumerate(plan):
        _check_step(step, f"{where}.plan[{n}]")
    workdir = raw.get("workdir")
    if workdir is not None and (not isinstance(workdir, str) or not workdir.startswith("/")):
        raise _fail(where, f"workdir: expected an absolute path, found {workdir!r}", "write it as /workspace")
    return Conversation(index, where, match, plan=tuple(plan), workdir=workdir)


def _checked(docs: list[tuple[str, Any]]) -> list[Conversation]:
    out: list[Conversation] = []
    for name, doc in docs:
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{name}: expected a mapping with `conversations:`, found {type(doc).__name__}")
        convs = doc.get("conversations", [])
        if not isinstance(convs, list):
            raise ConfigError(f"{name}: 'conversations' must be a list; give one `- match: ...` entry per item")
        for i, raw in enumerate(convs):
            out.append(_conversation(raw, len(out), f"{name}: conversations[{i}]"))
    return out


def load_conversations(source: Path | str | Mapping[str, Any]) -> list[Conversation]:
    """Every conversation of the script, checked (a broken one raises ``ConfigError``)."""
    return _checked(_documents(source))


def load_script(source: Path | str | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The list of conversations from a dict, a YAML file or a folder of YAML files (checked)."""
    docs = _documents(source)
    _checked(docs)
    return [c for _, doc in docs for c in doc.get("conversations", [])]


def load_max_model_len(source: Path | str | Mapping[str, Any]) -> int | None:
    """The script's ``max_model_len`` (the largest one, when a folder's files give several), or None."""
    docs = [d for _, d in _documents(source)]
    values = [int(d["max_model_len"]) for d in docs if isinstance(d, Mapping) and d.get("max_model_len")]
    return max(values) if values else None


def pick(conversations: Sequence[Conversation], opening: str) -> Conversation | None:
    """The first conversation whose ``match`` occurs in ``opening`` (or that has none)."""
    return next((c for c in conversations if c.match is None or c.match in opening), None)
