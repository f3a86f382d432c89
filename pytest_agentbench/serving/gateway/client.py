"""How the harness talks to a running gateway, from any process: the handle, run tickets, the admin client.

The process that owns the gateway (the xdist controller, or a run without xdist) hands
workers a :class:`GatewayHandle` (plain data, through ``workerinput``); a worker's
:class:`GatewayClient` opens and closes runs over the gateway's *admin socket* (a Unix socket only
the harness's user can reach, never mounted into a sandbox)::

    client = GatewayClient(handle)
    ticket = client.open_run("local-coder", max_total_tokens=200_000, ttl_s=900)
    env = ticket.env(port=8765)          # what an agent in a sandbox is given (no real key in it)
    ...                                  # the agent runs
    calls = client.close_run(ticket.run_id)   # RunCalls: every call, the budget's account

A :class:`RunTicket` is what an external agent adapter needs: the token (the only credential the
agent gets), the host-side base URL and the agent socket (what a sandbox mounts; inside, the
forwarder of :mod:`.forwarder` serves it on ``http://127.0.0.1:PORT``).

The admin calls go through the package's one HTTP client
(:class:`pytest_agentbench.serving.http.Client`, here over the Unix socket, its connection kept
alive between calls).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_agentbench.errors import ServerError
from pytest_agentbench.serving.gateway.runs import CallRecord
from pytest_agentbench.serving.http import Client, HttpError

__all__ = ["GatewayClient", "GatewayHandle", "RunCalls", "RunTicket"]


@dataclass(frozen=True)
class GatewayHandle:
    """A running gateway as plain data."""

    base_url: str  # http://127.0.0.1:PORT/v1 on the host
    agent_socket: str  # mounted into sandboxes (its folder)
    admin_socket: str  # the harness's API; never mounted

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GatewayHandle:
        return cls(str(data["base_url"]), str(data["agent_socket"]), str(data["admin_socket"]))


@dataclass(frozen=True)
class RunTicket:
    """One run's access to the gateway: its token and where the gateway is."""

    run_id: str
    alias: str
    token: str
    base_url: str  # host side, ends in /v1
    agent_socket: str  # host path of the socket a sandbox mounts

    def env(self, port: int | None = None) -> dict[str, str]:
        """The variables OpenAI- and Anthropic-style agents read: the gateway's URL and the run token.

        ``port``: the forwarder's port inside a sandbox (``http://127.0.0.1:PORT``); None: the host URL.
        """
        root = f"http://127.0.0.1:{port}" if port is not None else self.base_url.removesuffix("/v1")
        return {
            "OPENAI_BASE_URL": f"{root}/v1",
            "OPENAI_API_BASE": f"{root}/v1",  # LiteLLM-based agents (mini-swe-agent, aider)
            "OPENAI_API_KEY": self.token,
            "ANTHROPIC_BASE_URL": root,
            "ANTHROPIC_API_KEY": self.token,
        }


@dataclass
class RunCalls:
    """A run as the gateway saw it: every call (in order) and the token budget's account."""

    run_id: str
    alias: str
    closed: bool
    budget: dict[str, Any]  # limit, used, known, note, spent
    calls: list[CallRecord] = field(default_factory=list)
    in_flight: int = 0  # calls not finished when this was read (their records are incomplete)

    @classmethod
    def from_summary(cls, data: Mapping[str, Any]) -> RunCalls:
        return cls(
            run_id=str(data["run_id"]),
            alias=str(data["alias"]),
            closed=bool(data["closed"]),
            budget=dict(data["budget"]),
            calls=[CallRecord.from_dict(c) for c in data["calls"]],
            in_flight=int(data.get("in_flight") or 0),
        )


class GatewayClient:
    """The admin API of a gateway, over its admin socket; a context manager that closes its connection."""

    def __init__(self, handle: GatewayHandle, *, timeout_s: float = 30.0) -> None:
        self.handle = handle
        self.timeout_s = timeout_s
        self._client = Client("http://gateway", unix_socket=handle.admin_socket, max_idle=4)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        try:
            answer = self._client.call(method, path, data, timeout=self.timeout_s)
        except HttpError as exc:
            raise ServerError(f"the agentbench gateway ({self.handle.admin_socket}) does not answer: {exc}") from exc
        try:
            obj = json.loads(answer.body)
        except ValueError:
            obj = None
        if answer.status != 200 or not isinstance(obj, dict):
            error = obj.get("error") if isinstance(obj, dict) else None
            message = error.get("message") if isinstance(error, dict) else answer.text()[:500]
            raise ServerError(f"the agentbench gateway refused {method} {path}: HTTP {answer.status}: {message}")
        return obj

    def open_run(
        self,
        alias: str,
        *,
        run_id: str | None = None,
        max_total_tokens: int | None = None,
        ttl_s: float | None = None,
        max_calls: int | None = None,
    ) -> RunTicket:
        """A new run of ``alias`` (its token stops working at ``close_run`` or after ``ttl_s``); ``max_calls``:
        answered model calls it may make (its turn budget), a call past them refused with HTTP 402."""
        body = {
            "alias": alias,
            "run_id": run_id,
            "max_total_tokens": max_total_tokens,
            "ttl_s": ttl_s,
            "max_calls": max_calls,
        }
        data = self._call("POST", "/agentbench/runs", body)
        return RunTicket(str(data["run_id"]), alias, str(data["token"]), self.handle.base_url, self.handle.agent_socket)

    def run_calls(self, run_id: str) -> RunCalls:
        return RunCalls.from_summary(self._call("GET", f"/agentbench/runs/{run_id}"))

    def close_run(self, run_id: str) -> RunCalls:
        """End the run (its token stops working at once) and return its calls."""
        return RunCalls.from_summary(self._call("DELETE", f"/agentbench/runs/{run_id}"))

    def totals(self) -> dict[str, dict[str, Any]]:
        """alias -> calls and tokens over the session (see ``RunRegistry.totals``)."""
        return dict(self._call("GET", "/agentbench/totals"))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
