"""The scripted server itself: HTTP on 127.0.0.1, routing, fault injection, turn lookup, usage totals.

Routes: ``POST /v1/chat/completions`` (:mod:`.chat`), ``POST /v1/responses`` (:mod:`.responses`),
``POST /v1/messages`` and ``/v1/messages/count_tokens`` (:mod:`.messages`; a query string such
as Claude Code's ``?beta=true`` is ignored), ``GET /v1/models``, ``GET /health`` and
``GET /scripted/usage`` (the usage totals, :mod:`.totals`). For each generation request the
server finds the conversation (:func:`~.script.pick` on the protocol's opening text) and its turn
(counted per protocol), takes the response entry or maps the plan step onto the request's tools
(:mod:`.plan`), applies the entry's faults, and lets the protocol module shape the answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pytest_agentbench.serving.scripted.chat import Chat
from pytest_agentbench.serving.scripted.messages import Messages
from pytest_agentbench.serving.scripted.plan import PlanMismatch, act, declared_tools
from pytest_agentbench.serving.scripted.reply import Reply, from_action, from_response
from pytest_agentbench.serving.scripted.responses import Responses
from pytest_agentbench.serving.scripted.script import Conversation, load_conversations, load_max_model_len, pick
from pytest_agentbench.serving.scripted.stream import Dropped, EventWriter, Hangup, StreamFaults
from pytest_agentbench.serving.scripted.totals import Ledger, UsageTotals

__all__ = ["EXHAUSTED", "USAGE_PATH", "ScriptedServer"]

EXHAUSTED = "(scripted server: no more scripted responses for this conversation)"
#: Where the usage totals are read over HTTP.
USAGE_PATH = "/scripted/usage"


class _Speaker(Protocol):
    """What a protocol module offers the server (:class:`Chat`, :class:`Responses`, :class:`Messages`)."""

    name: str
    call_prefix: str

    def opening(self, body: Mapping[str, Any]) -> str: ...
    def turn(self, body: Mapping[str, Any]) -> int: ...
    def prompt_tokens(self, body: Mapping[str, Any]) -> int: ...
    def max_tokens(self, body: Mapping[str, Any]) -> int: ...
    def error(self, status: int, message: str, kind: str | None, code: Any = None) -> dict[str, Any]: ...
    def answer(self, reply: Reply, body: Mapping[str, Any], rid: int) -> dict[str, Any]: ...
    def events(self, reply: Reply, body: Mapping[str, Any], rid: int) -> tuple[list[bytes], list[bytes]]: ...
    def empty_event(self, body: Mapping[str, Any], rid: int) -> bytes: ...
    def usage_sent(self, reply: Reply, body: Mapping[str, Any]) -> bool: ...


_CHAT, _MESSAGES = Chat(), Messages()
_SPEAKERS: dict[str, _Speaker] = {"chat": _CHAT, "responses": Responses(), "messages": _MESSAGES}


def _route(path: str) -> str | None:
    path = urlsplit(path).path.rstrip("/")
    for suffix, route in (
        ("/chat/completions", "chat"),
        ("/messages/count_tokens", "count_tokens"),
        ("/responses", "responses"),
        ("/messages", "messages"),
    ):
        if path.endswith(suffix):
            return route
    return None


@dataclass(frozen=True)
class _PlanTurn:
    """A turn of a plan conversation: its step, mapped onto the request's tools when answered."""

    conversation: Conversation
    index: int

    @property
    def step(self) -> Mapping[str, Any]:
        assert self.conversation.plan is not None
        return self.conversation.plan[self.index]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two writes cost a 40 ms delayed ACK

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = "application/json",
        headers: dict[str, str] | None = None,
        trickle_s: float = 0.0,
        before_last: Callable[[], None] | None = None,
    ) -> None:
        """Send an answer; ``before_last`` runs just before its last byte goes out (the rest went)."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if not trickle_s:
            if before_last is not None:
                before_last()
            self.wfile.write(body)
            return
        try:  # a server that trickles its answer: the client must give up by its own deadline
            for i in range(len(body)):
                if i == len(body) - 1 and before_last is not None:
                    before_last()
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(trickle_s)
        except OSError:  # the client hung up
            self.close_connection = True

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None, trickle_s: float = 0.0) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers, trickle_s=trickle_s)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.rstrip("/") in ("/v1/models", "/models"):
            limit = self.server.max_model_len
            models = [
                {"id": m, "object": "model", "owned_by": "agentbench-scripted"}
                | ({"max_model_len": limit} if limit else {})
                for m in self.server.model_names
            ]
            self._json(200, {"object": "list", "data": models})
        elif path == "/health":
            self._send(200, b"")
        elif path.rstrip("/") == USAGE_PATH:
            self._json(200, self.server.ledger.snapshot().as_dict())
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}})
            return
        route = _route(self.path)
        if route is None or not isinstance(body, dict):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if route == "count_tokens":
            self._json(200, {"input_tokens": _MESSAGES.prompt_tokens(body)})
            return
        speaker = _SPEAKERS[route]
        self.server.record(route, body)
        if self._too_long(speaker, body):
            return
        self._serve(speaker, body)

    def _serve(self, speaker: _Speaker, body: dict[str, Any]) -> None:
        turn = speaker.turn(body)
        if speaker is _CHAT:  # through step_for(messages): tests wrap it to slow the server down
            step = self.server.step_for(_CHAT.messages(body))
        else:
            step = self.server.step_at(speaker.opening(body), turn)
        if body.get("stream") and isinstance(step.get("streamed"), dict):
            step = step["streamed"]
        if step.get("delay_s"):
            time.sleep(float(step["delay_s"]))
        if "raw" in step:
            self._send(int(step.get("status", 200)), str(step["raw"]).encode())
            return
        if "status" in step and int(step["status"]) >= 400:
            message = step.get("error", "scripted error")
            error = speaker.error(int(step["status"]), message, step.get("error_type"), step.get("code"))
            self._json(int(step["status"]), error, headers=step.get("headers"))
            return
        reply = self._reply(speaker, body, step, turn)
        if reply is None:
            return
        if body.get("stream") and step.get("stream_leak"):
            reply = reply.leaked()
        if body.get("stream"):
            self._stream(speaker, body, reply, StreamFaults.of(step))
            return
        answer = json.dumps(speaker.answer(reply, body, self.server.next_id())).encode()
        trickle_s = float(step.get("trickle_every_s") or 0)
        self._send(200, answer, trickle_s=trickle_s, before_last=lambda: self.server.answered(speaker.name, reply))

    def _reply(self, speaker: _Speaker, body: dict[str, Any], step: dict[str, Any], turn: int) -> Reply | None:
        """The answer to give; None when a plan step does not fit the request's tools (400 sent)."""
        prompt = speaker.prompt_tokens(body)
        plan = step.get("plan_turn")
        if not isinstance(plan, _PlanTurn):
            legacy = speaker is _CHAT  # chat replays keep their ids: call_0, call_1, ...
            return from_response(step, prompt, lambda i: f"call_{i}" if legacy else f"{speaker.call_prefix}{turn}_{i}")
        tools = declared_tools(speaker.name, body)
        try:
            action = act(plan.step, tools, workdir=plan.conversation.workdir)
        except PlanMismatch as exc:
            kind = next(k for k in ("shell", "write", "say", "finish") if k in plan.step)
            message = (
                f"scripted server: {plan.conversation.where}.plan[{plan.index}] ({kind} step, turn {turn}): {exc}. "
                "Fix the plan for this agent's tools (a write step can take `via: shell`), or script this agent "
                "with `responses:` and explicit tool_calls"
            )
            self._json(400, speaker.error(400, message, "invalid_request_error"))
            return None
        return from_action(action, prompt, lambda i: f"{speaker.call_prefix}{turn}_{i}")

    def _too_long(self, speaker: _Speaker, body: dict[str, Any]) -> bool:
        """Refuse a request over ``max_model_len`` as vLLM does (HTTP 400, its wording); True if refused."""
        limit = self.server.max_model_len
        prompt, wanted = speaker.prompt_tokens(body), speaker.max_tokens(body)
        if not limit or prompt + wanted <= limit:
            return False
        message = (
            f"This model's maximum context length is {limit} tokens. However, your prompt contains {prompt} "
            f"input tokens and {wanted} output tokens were requested. Please reduce the length of the input prompt."
        )
        if speaker is _MESSAGES:
            self._json(400, speaker.error(400, message, "invalid_request_error"))
        else:
            self._json(400, {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}})
        return True

    def _stream(self, speaker: _Speaker, body: dict[str, Any], reply: Reply, faults: StreamFaults) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        rid = self.server.next_id()
        counted, tail = speaker.events(reply, body, rid)
        writer = EventWriter(self.wfile, faults, lambda: speaker.empty_event(body, rid))
        # the usage is counted just before the stream's last event: a client that has read it all finds it in
        count = (lambda: self.server.answered(speaker.name, reply)) if speaker.usage_sent(reply, body) else None
        events = [(e, writer.send) for e in counted] + [(e, writer.tail) for e in tail]
        try:
            for n, (event, send) in enumerate(events):
                send(event, count if n == len(events) - 1 else None)
        except Hangup:  # the client gave up during a keep-alive: nothing more to send
            self.close_connection = True
            return
        except Dropped:  # a connection dropped mid-stream: no terminal event, the socket just closes
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, conversations: list[Conversation], model_names: list[str], max_model_len: int | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.conversations = conversations
        self.model_names = model_names
        self.max_model_len = max_model_len
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.ledger = Ledger()
        self._lock = threading.Lock()
        self._ids = 0
        self._attempts: dict[tuple[int, int], int] = {}

    def next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def record(self, protocol: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append((protocol, body))
        self.ledger.request(protocol)

    def answered(self, protocol: str, reply: Reply) -> None:
        if reply.reported:
            self.ledger.answered(protocol, reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens)

    def step_for(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The step for a chat request's ``messages``."""
        return self.step_at(Chat.opening_of(messages), Chat.turn_of(messages))

    def step_at(self, opening: str, turn: int) -> dict[str, Any]:
        """The response entry (or plan turn, as ``{"plan_turn": ...}``) for ``turn`` of the matching conversation."""
        conv = pick(self.conversations, opening)
        if conv is None:
            return {"content": EXHAUSTED}
        if conv.plan is not None:
            if turn >= len(conv.plan):
                return {"content": EXHAUSTED}
            return {"plan_turn": _PlanTurn(conv, turn), "delay_s": conv.plan[turn].get("delay_s", 0)}
        step = dict(conv.responses[turn]) if turn < len(conv.responses) else {"content": EXHAUSTED}
        if "attempts" in step:
            with self._lock:
                n = self._attempts.get((conv.index, turn), 0)
                self._attempts[(conv.index, turn)] = n + 1
            step = step["attempts"][min(n, len(step["attempts"]) - 1)]
        return step


class ScriptedServer:
    """Start with ``with ScriptedServer(script) as srv: srv.base_url``; usable without pytest.

    A broken script raises :class:`~pytest_agentbench.errors.ConfigError` here, naming the file,
    the conversation or plan step and the fix.
    """

    def __init__(self, script: Path | str | dict[str, Any], model_names: list[str] | None = None):
        self._server = _Server(load_conversations(script), model_names or ["scripted"], load_max_model_len(script))
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-server", daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in ``/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def root_url(self) -> str:
        """The same without ``/v1`` (what Anthropic clients take as their base URL)."""
        return self.base_url.removesuffix("/v1")

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every generation request received so far, of any protocol (for assertions in tests)."""
        return [body for _, body in list(self._server.requests)]

    def requests_of(self, protocol: str) -> list[dict[str, Any]]:
        """The requests of one protocol: ``chat``, ``responses`` or ``messages``."""
        return [body for p, body in list(self._server.requests) if p == protocol]

    def usage_totals(self) -> UsageTotals:
        """The running usage totals, per protocol and ``overall`` (also at ``GET /scripted/usage``)."""
        return self._server.ledger.snapshot()

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
