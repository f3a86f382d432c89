"""Endpoints for the selected aliases: an existing ``base_url``, or a server we start.

The process that owns the servers (the xdist controller, or the only process
without xdist) starts each ``serve:`` alias once and stops it at the end;
workers receive the URLs. pytest-free.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from pytest_agentbench.errors import ServerError
from pytest_agentbench.events import ServerProgress
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.results.redact import Redactor

#: Hears of a server start for an alias: ``(alias, event)``.
OnAliasServerProgress = Callable[[str, ServerProgress], None]


def _start(
    spec: ModelSpec,
    stack: contextlib.ExitStack,
    redactor: Redactor | None,
    on_progress: OnAliasServerProgress | None,
    startup_s: dict[str, float],
) -> tuple[str, list[str]]:
    """The started server's base URL and its command line (empty for an in-process server)."""
    engine = spec.serve.engine if spec.serve else "vllm"
    if engine == "scripted":
        from pytest_agentbench.serving.scripted import ScriptedServer

        server = stack.enter_context(ScriptedServer(spec.serve.script, model_names=[spec.model]))
        return server.base_url, []
    if engine == "vllm":
        from pytest_agentbench.serving.vllm.process import VLLMServer
        from pytest_agentbench.serving.vllm.spec import spec_from_alias

        hear = None if on_progress is None else functools.partial(on_progress, spec.alias)
        vllm = stack.enter_context(VLLMServer(spec_from_alias(spec), redactor=redactor, on_progress=hear))
        startup_s[spec.alias] = vllm.startup_s or 0.0
        return vllm.base_url, vllm.command
    raise ServerError(f"{spec.where}.serve.engine: unknown engine {engine!r}")


class Endpoints:
    """alias -> base URL; starts servers for ``serve:`` aliases, stops them on close.

    ``redactor``: the session's secrets, kept out of the server logs we write; ``on_progress`` hears of
    each vLLM start (:mod:`pytest_agentbench.events`); ``startup_s`` says how long each one took.
    """

    def __init__(self, redactor: Redactor | None = None, on_progress: OnAliasServerProgress | None = None) -> None:
        self._redactor = redactor
        self._on_progress = on_progress
        self._stack = contextlib.ExitStack()
        self.urls: dict[str, str] = {}
        self.commands: dict[str, list[str]] = {}  # alias -> the command line of the server we started
        self.startup_s: dict[str, float] = {}

    def start(self, specs: list[ModelSpec]) -> dict[str, str]:
        try:
            for spec in specs:
                if spec.serve is not None:
                    self.urls[spec.alias], self.commands[spec.alias] = _start(
                        spec, self._stack, self._redactor, self._on_progress, self.startup_s
                    )
                elif spec.base_url:
                    self.urls[spec.alias] = spec.base_url
        except BaseException:
            self.close()
            raise
        return dict(self.urls)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Endpoints:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
