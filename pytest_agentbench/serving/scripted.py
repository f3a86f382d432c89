"""A scripted OpenAI-compatible server: a *test double* that replays fixed responses.

It is not a model and is never presented as one: it lets the agent loop, the
plugin and the fault handling be tested over real HTTP on 127.0.0.1.

Script format (YAML or a dict; a folder of YAML files is merged)::

    max_model_len: 4096                                # optional: reported in /v1/models, as vLLM does, and
                                                       # a longer request is refused with vLLM's HTTP 400
    conversations:
      - match: "substring of the first user message"   # optional; first match wins
        responses:                                     # the N-th assistant turn gets responses[N]
          - content: "text"                            # optional
            reasoning_content: "..."                   # optional
            tool_calls: [{name: read_file, arguments: {path: a.py}}]
          - {status: 429, headers: {Retry-After: "1"}, error: "slow down"}   # fault injection
          - {delay_s: 2, content: "late"}
          - {raw: "not json at all"}                   # body sent verbatim
          - {content: "...", finish_reason: length, usage: {prompt_tokens: 5, completion_tokens: 1}}
          - {no_usage: true, content: "a server that sends no usage"}
          - {content: "abc", stream_drop_after: 2}         # streaming: the connection drops after 2 chunks
          - {content: "abc", stream_stall_after: 1, stream_stall_s: 30}   # streaming: stalls after 1 chunk
          - {content: "abc", stream_keepalive: comment, stream_keepalive_every_s: 1}   # streaming: after
                # stream_keepalive_after (default 1) chunks, ": ping" SSE comments (or `empty_delta`
                # chunks) every second for stream_keepalive_for_s (default: until the client hangs up)
          - {content: "abc", trickle_every_s: 0.5}     # not streamed: the body one byte every 0.5 s
          - {status: 401, error: "invalid api key"}    # as a provider answers a wrong key
          - {tool_calls: [...], streamed: {content: "<tool_call>..."}}   # a different answer when streamed
          - {tool_calls: [...], stream_leak: true}     # streamed, the calls leak into the content as qwen3
                # XML (as vLLM's qwen3_coder streaming parser did); not streamed they come native
          - attempts:                                  # successive requests for the same turn (retries)
              - {status: 503}
              - {content: "second try works"}

Turn N is the number of assistant messages in the request, so a replay is
stateless and several conversations (xdist workers) can run at once. When a
script is used up the server answers plain text without tool calls.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

EXHAUSTED = "(scripted server: no more scripted responses for this conversation)"


def load_script(source: Path | str | dict[str, Any]) -> list[dict[str, Any]]:
    """The list of conversations from a dict, a YAML file or a folder of YAML files."""
    if isinstance(source, dict):
        docs = [source]
    else:
        path = Path(source)
        files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]
        docs = [yaml.safe_load(f.read_text(encoding="utf-8")) or {} for f in files]
    conversations: list[dict[str, Any]] = []
    for doc in docs:
        convs = doc.get("conversations", [])
        if not isinstance(convs, list):
            raise ValueError(f"{source}: 'conversations' must be a list")
        conversations.extend(convs)
    return conversations


def load_max_model_len(source: Path | str | dict[str, Any]) -> int | None:
    """The script's ``max_model_len`` (the largest one, when a folder's files give several), or None."""
    if isinstance(source, dict):
        docs = [source]
    else:
        path = Path(source)
        files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]
        docs = [yaml.safe_load(f.read_text(encoding="utf-8")) or {} for f in files]
    values = [int(d["max_model_len"]) for d in docs if isinstance(d, dict) and d.get("max_model_len")]
    return max(values) if values else None


def _count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer (about 4 characters a token)."""
    return max(1, (len(text) + 3) // 4) if text else 0


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
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if not trickle_s:
            self.wfile.write(body)
            return
        try:  # a server that trickles its answer: the client must give up by its own deadline
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(trickle_s)
        except OSError:  # the client hung up
            self.close_connection = True

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None, trickle_s: float = 0.0) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers, trickle_s=trickle_s)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "owned_by": "agentbench-scripted"}
                        | ({"max_model_len": self.server.max_model_len} if self.server.max_model_len else {})
                        for m in self.server.model_names
                    ],
                },
            )
        elif self.path == "/health":
            self._send(200, b"")
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        self.server.record(body)
        messages = body.get("messages") or []
        if self._too_long(body):
            return
        step = self.server.step_for(messages)
        if body.get("stream") and isinstance(step.get("streamed"), dict):
            step = step["streamed"]
        if step.get("delay_s"):
            time.sleep(float(step["delay_s"]))
        if "raw" in step:
            self._send(int(step.get("status", 200)), str(step["raw"]).encode())
            return
        if "status" in step and int(step["status"]) >= 400:
            self._json(
                int(step["status"]),
                {
                    "error": {
                        "message": step.get("error", "scripted error"),
                        "type": step.get("error_type", "server_error"),
                        "code": step.get("code"),
                    }
                },
                headers=step.get("headers"),
            )
            return
        self._answer(body, step)

    def _too_long(self, body: dict[str, Any]) -> bool:
        """Refuse a request over ``max_model_len`` as vLLM does (HTTP 400, its wording); True if refused."""
        limit = self.server.max_model_len
        prompt = _count_tokens(json.dumps(body.get("messages", [])))
        if not limit or prompt + int(body.get("max_tokens") or 0) <= limit:
            return False
        message = (
            f"This model's maximum context length is {limit} tokens. However, your prompt contains {prompt} "
            f"input tokens and {int(body.get('max_tokens') or 0)} output tokens were requested. Please reduce "
            "the length of the input prompt."
        )
        self._json(400, {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}})
        return True

    def _answer(self, body: dict[str, Any], step: dict[str, Any]) -> None:
        content = step.get("content")
        calls = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": c["arguments"]
                    if isinstance(c.get("arguments"), str)
                    else json.dumps(c.get("arguments", {})),
                },
            }
            for i, c in enumerate(step.get("tool_calls") or [])
        ]
        prompt_tokens = _count_tokens(json.dumps(body.get("messages", [])))
        completion_tokens = _count_tokens((content or "") + "".join(c["function"]["arguments"] for c in calls))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        usage.update(step.get("usage") or {})
        finish = step.get("finish_reason") or ("tool_calls" if calls else "stop")
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        if step.get("reasoning_content"):
            message["reasoning_content"] = step["reasoning_content"]
        model = body.get("model", "scripted")
        if body.get("stream") and step.get("stream_leak") and calls:
            message = {"role": "assistant", "content": (content or "") + "".join(map(_qwen3_xml, calls))}
            finish = step.get("finish_reason") or "stop"
        if body.get("stream"):
            self._stream(
                model,
                message,
                finish,
                usage if not step.get("no_usage") else None,
                bool((body.get("stream_options") or {}).get("include_usage")),
                drop_after=step.get("stream_drop_after"),
                stall=(step.get("stream_stall_after"), float(step.get("stream_stall_s", 0))),
                keepalive=_Keepalive.of(step),
            )
            return
        response = {
            "id": f"chatcmpl-{self.server.next_id()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        if not step.get("no_usage"):
            response["usage"] = usage
        self._json(200, response, trickle_s=float(step.get("trickle_every_s") or 0))

    def _stream(
        self,
        model: str,
        message: dict[str, Any],
        finish: str,
        usage: dict[str, Any] | None,
        include_usage: bool,
        drop_after: int | None = None,
        stall: tuple[int | None, float] = (None, 0.0),
        keepalive: _Keepalive | None = None,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        cid = f"chatcmpl-{self.server.next_id()}"
        sent = [0]

        class _Drop(Exception):
            pass

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> None:
            if drop_after is not None and sent[0] >= drop_after:
                raise _Drop
            if stall[0] is not None and sent[0] == stall[0]:
                time.sleep(stall[1])
            if keepalive is not None and sent[0] == keepalive.after:
                keepalive.send(self.wfile, lambda: _empty_chunk(cid, model))
            sent[0] += 1
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
            self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
            self.wfile.flush()

        try:
            self._chunks(chunk, message, finish)
        except _Hangup:  # the client gave up during a keep-alive: nothing more to send
            self.close_connection = True
            return
        except _Drop:  # a connection dropped mid-stream: no [DONE], the socket just closes
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self._end_stream(cid, model, usage if include_usage else None)

    def _end_stream(self, cid: str, model: str, usage: dict[str, Any] | None) -> None:
        """The usage chunk (when asked for and known), then ``[DONE]``."""
        if usage is not None:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": usage,
            }
            self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    @staticmethod
    def _chunks(chunk: Any, message: dict[str, Any], finish: str) -> None:
        chunk({"role": "assistant", "content": ""})
        if message.get("reasoning_content"):  # as vLLM streams a reasoning parser's output
            chunk({"reasoning_content": message["reasoning_content"]})
        text = message.get("content") or ""
        for i in range(0, len(text), 8):
            chunk({"content": text[i : i + 8]})
        for i, call in enumerate(message.get("tool_calls") or []):
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            chunk({"tool_calls": [{"index": i, "function": {"arguments": call["function"]["arguments"]}}]})
        chunk({}, finish)


def _qwen3_xml(call: dict[str, Any]) -> str:
    """A tool call as the qwen3_coder chat template writes it: what a streaming parser that misses it leaks."""
    params = "".join(
        f"<parameter={key}>\n{value if isinstance(value, str) else json.dumps(value)}\n</parameter>\n"
        for key, value in json.loads(call["function"]["arguments"] or "{}").items()
    )
    return f"\n<tool_call>\n<function={call['function']['name']}>\n{params}</function>\n</tool_call>"


class _Hangup(Exception):
    """The client closed the connection while the server was keeping the stream alive."""


def _empty_chunk(cid: str, model: str) -> bytes:
    """A chunk with an empty delta: what some servers send to keep a stream open."""
    obj = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": None}],
    }
    return f"data: {json.dumps(obj)}\n\n".encode()


@dataclass(frozen=True)
class _Keepalive:
    """A stream kept open without progress: SSE comments or empty deltas every ``every_s``."""

    kind: str
    every_s: float
    after: int
    for_s: float | None

    @classmethod
    def of(cls, step: dict[str, Any]) -> _Keepalive | None:
        kind = step.get("stream_keepalive")
        if not kind:
            return None
        if kind not in ("comment", "empty_delta"):
            raise ValueError(f"stream_keepalive must be 'comment' or 'empty_delta', not {kind!r}")
        for_s = step.get("stream_keepalive_for_s")
        return cls(
            kind,
            float(step.get("stream_keepalive_every_s", 1.0)),
            int(step.get("stream_keepalive_after", 1)),
            None if for_s is None else float(for_s),
        )

    def send(self, out: Any, empty_chunk: Any) -> None:
        """Keep the stream alive until ``for_s`` is over; raise :class:`_Hangup` when the client leaves."""
        end = None if self.for_s is None else time.monotonic() + self.for_s
        try:
            while end is None or time.monotonic() < end:
                out.write(b": ping\n\n" if self.kind == "comment" else empty_chunk())
                out.flush()
                time.sleep(self.every_s)
        except OSError as exc:
            raise _Hangup from exc


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, conversations: list[dict[str, Any]], model_names: list[str], max_model_len: int | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.conversations = conversations
        self.model_names = model_names
        self.max_model_len = max_model_len
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = 0
        self._attempts: dict[tuple[int, int], int] = {}

    def next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)

    def step_for(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        first_user = next((str(m.get("content") or "") for m in messages if m.get("role") == "user"), "")
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        for index, conv in enumerate(self.conversations):
            match = conv.get("match")
            if match is None or match in first_user:
                responses = conv.get("responses") or []
                step = responses[turn] if turn < len(responses) else {"content": EXHAUSTED}
                if "attempts" in step:
                    with self._lock:
                        n = self._attempts.get((index, turn), 0)
                        self._attempts[(index, turn)] = n + 1
                    step = step["attempts"][min(n, len(step["attempts"]) - 1)]
                return step
        return {"content": EXHAUSTED}


class ScriptedServer:
    """Start with ``with ScriptedServer(script) as srv: srv.base_url``; usable without pytest."""

    def __init__(self, script: Path | str | dict[str, Any], model_names: list[str] | None = None):
        self._server = _Server(load_script(script), model_names or ["scripted"], load_max_model_len(script))
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat request received so far (for assertions in tests)."""
        return list(self._server.requests)

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
