"""The ``docker`` sandbox: one container per run, no network, limits, non-root.

One container is created per sandbox (never per command) from the locally
built ``agentbench-base`` image (see :mod:`.image`): ``network_mode=none``,
memory (no swap), CPU and pids limits, every capability dropped,
``no-new-privileges``, uid 1000, an init process, ``sleep infinity``. The
workspace is copied in with ``put_archive`` and made a git repo with one
commit, as the local backend does, so ``git diff`` shows the agent's change.

Every command runs as ``timeout -k 2 T sh -c WRAPPER argv...`` (see
``_WRAPPER``): the command gets its own process group, killed whole when it
ends or times out, so no background child outlives it; its output is capped
*inside* the container (first and last ``output_cap // 2`` bytes of each
stream, as the local backend keeps them) so a flood never crosses the engine.
A host-side deadline backs this up: if the stream is still open well after
``T``, the container is killed and restarted (files kept, processes gone) and
the result says ``timed_out``. Files are read and written by commands run as
the agent, after resolving symlinks inside the container: a path that ends up
outside /workspace is refused with ``PathRefused``.

Containers are labelled with the run id, the owning pid and host:
:func:`reap_stale_containers` removes those whose owner died (a killed
pytest), and each process reaps once before its first sandbox.

The ``docker`` SDK is imported lazily: ``pip install 'pytest-agentbench[docker]'``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_agentbench.errors import PathRefused, SandboxError
from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP, ExecResult, SandboxInfo, confine
from pytest_agentbench.sandbox.git import AGENT_IDENTITY, INIT_SCRIPT, SETUP_IDENTITY
from pytest_agentbench.sandbox.image import ensure_base_image, script_path

WORKSPACE = "/workspace"
AGENT_UID = 1000
KILL_AFTER_S = 2  # timeout's -k: SIGKILL this long after SIGTERM
WATCHDOG_GRACE_S = 5  # host deadline = T + KILL_AFTER_S + this
FILE_OP_TIMEOUT_S = 120.0
LABEL_RUN = "agentbench.run"
LABEL_PID = "agentbench.pid"
LABEL_HOST = "agentbench.host"
PIP_FIX = "pip install 'pytest-agentbench[docker]'"
ENGINE_FIX = "run scripts/docker-up (it installs and starts dockerd)"

# Run as ``sh -c _WRAPPER sh TAG CWD HALF argv...`` with HALF = cap // 2.
# - CWD is entered physically and must be below /workspace (symlinks resolved).
# - The command gets its own session and process group (setsid) and the
#   wrapper's stdin. On timeout's SIGTERM, or when the command ends, that whole
#   group is SIGKILLed: nothing it left in the background survives it.
# - Its stdout and stderr go through fifos to drainers that keep the first
#   HALF bytes (head) and the last HALF + 1 (tail), and count the rest (dd):
#   a flood is drained *inside* the container and never crosses the engine.
#   The drainers ignore SIGTERM and end at EOF (killed, head and tail would
#   lose what they buffer).
# - Last, a trailer line ``TAG out=N err=M`` (bytes after the head) goes to
#   stderr, or ``TAG error=WHAT`` if the wrapper could not run the command.
_WRAPPER = """\
tag=$1 cwd=$2 h=$3; shift 3; p=
trap '[ -n "$p" ] && kill -KILL -"$p" 2>/dev/null' TERM
cd -P -- "$cwd" 2>/dev/null || { printf '\\n%s error=cwd-missing\\n' "$tag" >&2; exit 125; }
case "$PWD" in /workspace|/workspace/*) ;; *) printf '\\n%s error=cwd-outside\\n' "$tag" >&2; exit 125;; esac
command -v "$1" >/dev/null 2>&1 || { printf '%s: command not found\\n' "$1" >&2; exit 127; }
d=$(mktemp -d 2>/dev/null) && mkfifo "$d/o" "$d/e" || { printf '\\n%s error=no-fifos\\n' "$tag" >&2; exit 125; }
{ trap '' TERM; head -c "$h"; LC_ALL=C dd bs=65536 2>"$d/no" | tail -c "$((h + 1))"; } <"$d/o" & o=$!
{ trap '' TERM; head -c "$h"; LC_ALL=C dd bs=65536 2>"$d/ne" | tail -c "$((h + 1))"; } <"$d/e" >&2 & e=$!
exec 3<&0
setsid "$@" <&3 3<&- >"$d/o" 2>"$d/e" & p=$!
exec 3<&-
wait "$p"; rc=$?
kill -KILL -"$p" 2>/dev/null
wait "$o" "$e"
no=0 ne=0
while read -r a b _; do [ "$b" = bytes ] && no=$a; done 2>/dev/null <"$d/no"
while read -r a b _; do [ "$b" = bytes ] && ne=$a; done 2>/dev/null <"$d/ne"
rm -rf "$d"
printf '\\n%s out=%s err=%s\\n' "$tag" "$no" "$ne" >&2
exit "$rc"
"""
# $1 is /workspace/<path>, already confined syntactically; symlinks are resolved
# inside the container and the result must stay below /workspace.
_RESOLVE = 'p=$(realpath -m -- "$1") || exit 5; case "$p" in /workspace|/workspace/*) ;; *) exit 3;; esac; '
_READ = _RESOLVE + '[ -e "$p" ] || exit 2; [ -d "$p" ] && exit 4; exec cat -- "$p"'
_WRITE = _RESOLVE + '[ -d "$p" ] && exit 4; mkdir -p -- "$(dirname -- "$p")" && exec cat > "$p"'
_ENV = {
    "HOME": "/home/agent",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "PYTHONDONTWRITEBYTECODE": "1",
    **AGENT_IDENTITY,
}


# -- the SDK, lazily -------------------------------------------------------
def _import_docker() -> Any:
    try:
        import docker
    except ImportError:
        raise SandboxError(f"the docker sandbox needs the docker SDK: {PIP_FIX}")
    return docker


def connect() -> Any:
    """A ``docker.DockerClient`` for the engine of the environment, or SandboxError naming the fix."""
    docker = _import_docker()
    try:
        return docker.from_env(timeout=60)
    except docker.errors.DockerException as exc:
        raise SandboxError(f"no Docker engine answers ({exc}): {ENGINE_FIX}")


def docker_available() -> tuple[bool, str]:
    """``(True, what answered)`` if an engine answers, else ``(False, why and the fix)``."""
    try:
        client = connect()
    except SandboxError as exc:
        return False, str(exc)
    try:
        version = client.version().get("Version", "?")
        return True, f"Docker engine {version} at {client.api.base_url}"
    except Exception as exc:  # any failure to answer is "not available", with the reason
        return False, f"the Docker engine does not answer ({exc}): {ENGINE_FIX}"
    finally:
        client.close()


def start_engine(timeout_s: float = 300) -> tuple[bool, str]:
    """If no engine answers, run ``scripts/docker-up`` (installs and starts dockerd); then as docker_available."""
    ok, why = docker_available()
    if ok:
        return ok, why
    try:
        done = subprocess.run([str(script_path("docker-up"))], capture_output=True, text=True, timeout=timeout_s)
    except (SandboxError, OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{why}; starting one failed: {exc}"
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        return False, f"{why}; scripts/docker-up failed:\n{tail}"
    return docker_available()


@contextlib.contextmanager
def _sdk_errors(what: str) -> Iterator[None]:
    """Turn the SDK's (and requests') exceptions into SandboxError naming ``what`` failed."""
    docker = _import_docker()
    import requests

    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"docker sandbox: {what} failed: {exc} (is the engine up? {ENGINE_FIX})")


# -- stale containers --------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_containers(client: Any) -> list[str]:
    """Remove sandbox containers of this host whose owning process is dead; return their ids."""
    host = socket.gethostname()
    removed: list[str] = []
    with _sdk_errors("listing sandbox containers"):
        containers = client.containers.list(all=True, filters={"label": LABEL_PID})
    for container in containers:
        labels = container.labels or {}
        if labels.get(LABEL_HOST) != host:
            continue
        try:
            pid = int(labels[LABEL_PID])
        except (KeyError, ValueError):
            continue
        if not _pid_alive(pid):
            _remove_container(client, container.id)
            removed.append(container.id)
    return removed


_reaped = False
_reap_lock = threading.Lock()


def _reap_once(client: Any) -> None:
    global _reaped
    with _reap_lock:
        if not _reaped:
            reap_stale_containers(client)
            _reaped = True


def _release(client: Any, container_id: str, close_client: bool) -> None:
    """Remove the container, then close the client if the sandbox made it (finalizer: never raises)."""
    _remove_container(client, container_id)
    if close_client:
        with contextlib.suppress(Exception):
            client.close()


def _remove_container(client: Any, container_id: str) -> None:
    """Force-remove; a container already gone is fine. Never raises (runs from finalizers)."""
    try:
        client.api.remove_container(container_id, force=True)
    except Exception:
        pass


# -- the exec stream ---------------------------------------------------------
@dataclass
class _Raw:
    """What one exec produced, before decoding."""

    code: int
    stdout: bytes
    stderr: bytes
    truncated: bool = False
    overran: bool = False


class _Demux:
    """Split docker's multiplexed stream (8-byte frame headers) into capped stdout/stderr."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.kept: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.truncated = False
        self._header = bytearray()
        self._stream = 0
        self._left = 0

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            if self._left == 0:
                need = 8 - len(self._header)
                self._header += view[:need]
                view = view[need:]
                if len(self._header) == 8:
                    self._stream, self._left = struct.unpack(">BxxxL", self._header)
                    self._header.clear()
                continue
            take = view[: self._left]
            view = view[len(take) :]
            self._left -= len(take)
            self._keep(self._stream, take)

    def _keep(self, stream: int, data: memoryview) -> None:
        sink = self.kept.get(stream)
        if sink is None:
            return
        if self.cap is None:
            sink += data
            return
        room = self.cap - len(sink)
        if room < len(data):
            self.truncated = True
        if room > 0:
            sink += data[:room]


def _attach(api: Any, exec_id: str) -> tuple[Any, socket.socket]:
    """Start an exec attached; return the HTTP response (to close at the end) and its raw socket.

    ``exec_start(socket=True)`` does the same but drops the response for unix
    sockets, which then fails when collected; so its three steps are done here.
    """
    try:
        response = api._post_json(
            api._url("/exec/{0}/start", exec_id),
            headers={"Connection": "Upgrade", "Upgrade": "tcp"},
            data={"Tty": False, "Detach": False},
            stream=True,
        )
        raw = api._get_raw_response_socket(response)
    except AttributeError as exc:
        raise SandboxError(f"this docker SDK is not supported ({exc}): pip install 'docker>=7.1,<8'")
    return response, getattr(raw, "_sock", raw)


def _feed_stdin(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the command exited or closed stdin early: not our failure
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def _read_stream(sock: socket.socket, demux: _Demux, deadline: float) -> bool:
    """Read to EOF; False if ``deadline`` (monotonic) passed first."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EINTR, errno.EAGAIN):
                continue
            raise
        if not chunk:
            return True
        demux.feed(chunk)


# -- what the wrapper sends back -----------------------------------------------
def _split_trailer(stderr: bytes, tag: bytes) -> tuple[bytes, dict[str, str]]:
    """Strip the wrapper's last ``\\nTAG key=value...`` line from stderr; return it parsed."""
    at = stderr.rfind(b"\n" + tag + b" ")
    if at < 0:
        return stderr, {}
    words = stderr[at + len(tag) + 2 :].decode(errors="replace").split()
    return stderr[:at], dict(w.split("=", 1) for w in words if "=" in w)


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _head_and_tail(data: bytes, half: int, after_head: int | None) -> tuple[bytes, bool]:
    """Keep the first and last ``half`` bytes, as the local backend does; True if the middle went."""
    if len(data) <= 2 * half:
        return data, False
    if after_head is not None:
        note = f"\n[... {half + after_head - 2 * half} bytes of output dropped ...]\n"
    else:
        note = "\n[... output dropped ...]\n"
    return data[:half] + note.encode() + data[-half:], True


def _raise_wrapper_error(error: str | None, cwd: str) -> None:
    if error is None:
        return
    if error == "cwd-missing":
        raise PathRefused(f"folder {cwd!r} does not exist in the workspace")
    if error == "cwd-outside":
        raise PathRefused(f"folder {cwd!r} resolves outside the workspace (through a symlink)")
    if error == "no-fifos":
        raise SandboxError("docker sandbox: cannot create fifos in the container's /tmp (is its disk full?)")
    raise SandboxError(f"docker sandbox: the command wrapper failed ({error})")


# -- the sandbox -------------------------------------------------------------
def _workspace_tar(src: Path, out: IO[bytes]) -> None:
    """Write ``src`` as a tar of ``.`` with every entry owned by the agent (uid/gid 1000)."""

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = AGENT_UID
        info.uname = info.gname = "agent"
        return info

    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(str(src), arcname=".", filter=owned)


class DockerSandbox:
    """One container per run: see the module docstring for what it contains."""

    def __init__(
        self,
        workspace_src: Path | None = None,
        *,
        memory: str = "2g",
        cpus: float = 1.0,
        pids: int = 256,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        image: str | None = None,
        client: Any = None,
        run_id: str | None = None,
    ) -> None:
        self.output_cap = output_cap
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._tag = f"agentbench-{uuid.uuid4().hex}"  # marks the wrapper's own stderr line
        self._closed = False
        self._owns_client = client is None
        self._client = client if client is not None else connect()
        self._container: Any = None
        self._finalizer: weakref.finalize | None = None
        try:
            _reap_once(self._client)
            self.image = image or ensure_base_image(self._client)
            self._create(memory, cpus, pids)
            if workspace_src is not None:
                self._copy_in(Path(workspace_src))
            with _sdk_errors("starting the container"):
                self._container.start()
            self._init_git()
        except BaseException:
            self.close()
            raise
        limits = f"memory={memory} cpus={cpus:g} pids={pids} network=none"
        self.info = SandboxInfo(
            kind="docker",
            isolation="container",
            details={"image": self.image, "limits": limits, "container": self.container_id[:12]},
        )

    @property
    def container_id(self) -> str:
        return str(self._container.id) if self._container is not None else ""

    def _create(self, memory: str, cpus: float, pids: int) -> None:
        labels = {LABEL_RUN: self.run_id, LABEL_PID: str(os.getpid()), LABEL_HOST: socket.gethostname()}
        with _sdk_errors(f"creating a container from {self.image}"):
            self._container = self._client.containers.create(
                self.image,
                command=["sleep", "infinity"],
                user=f"{AGENT_UID}:{AGENT_UID}",
                working_dir=WORKSPACE,
                environment=_ENV,
                network_mode="none",
                mem_limit=memory,
                memswap_limit=memory,
                nano_cpus=int(cpus * 1e9),
                pids_limit=pids,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                init=True,
                labels=labels,
                hostname="sandbox",
            )
        self._finalizer = weakref.finalize(self, _release, self._client, self._container.id, self._owns_client)

    def _copy_in(self, src: Path) -> None:
        if not src.is_dir():
            raise SandboxError(f"workspace source {src} is not a directory")
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as buf:
            _workspace_tar(src, buf)  # type: ignore[arg-type]
            buf.seek(0)
            with _sdk_errors(f"copying {src} into the container"):
                ok = self._container.put_archive(WORKSPACE, buf.read())
        if not ok:
            raise SandboxError(f"docker refused to copy {src} into the container")

    def _init_git(self) -> None:
        raw = self._run(["sh", "-c", INIT_SCRIPT], WORKSPACE, None, FILE_OP_TIMEOUT_S, None, env=SETUP_IDENTITY)
        if raw.code != 0:
            err = raw.stderr.decode(errors="replace").strip()
            raise SandboxError(
                f"could not make the workspace a git repo in the container: {err} (is git in the image?)"
            )

    # -- commands ---------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("the docker sandbox is closed")

    def _run(
        self,
        cmd: list[str],
        workdir: str,
        stdin: bytes | None,
        budget_s: float,
        cap: int | None,
        *,
        env: dict[str, str] | None = None,
    ) -> _Raw:
        """One exec; stdout/stderr capped at ``cap``; ``overran`` if the stream outlived ``budget_s``."""
        api = self._client.api
        deadline = time.monotonic() + budget_s
        with _sdk_errors(f"running {cmd[0]!r} in the container"):
            exec_id = api.exec_create(
                self._container.id,
                cmd,
                stdin=stdin is not None,
                stdout=True,
                stderr=True,
                tty=False,
                user=f"{AGENT_UID}:{AGENT_UID}",
                workdir=workdir,
                environment=env,
            )["Id"]
            response, sock = _attach(api, exec_id)
        demux = _Demux(cap)
        try:
            if stdin is not None:
                threading.Thread(target=_feed_stdin, args=(sock, stdin), daemon=True).start()
            finished = _read_stream(sock, demux, deadline)
        except OSError as exc:
            raise SandboxError(f"docker sandbox: the exec stream broke: {exc} ({ENGINE_FIX})")
        finally:
            with contextlib.suppress(Exception):
                response.close()
        out, err = bytes(demux.kept[1]), bytes(demux.kept[2])
        if not finished:
            self._recover()
            return _Raw(124, out, err, demux.truncated, overran=True)
        return _Raw(self._exit_code(exec_id), out, err, demux.truncated)

    def _exit_code(self, exec_id: str) -> int:
        api = self._client.api
        for _ in range(400):  # the stream can close a moment before the exec is marked done
            with _sdk_errors("reading an exit code"):
                state = api.exec_inspect(exec_id)
            if not state.get("Running") and state.get("ExitCode") is not None:
                return int(state["ExitCode"])
            time.sleep(0.005)
        raise SandboxError("docker sandbox: the command's stream closed but it never exited")

    def _recover(self) -> None:
        """A command overran the host deadline: kill the container and start it again (files kept)."""
        with _sdk_errors("restarting the container after a command overran its timeout"):
            self._container.kill()
            self._container.start()

    def exec(self, argv: Sequence[str], timeout: float, *, cwd: str = ".", stdin: str | None = None) -> ExecResult:
        self._check_open()
        if not argv:
            raise SandboxError("exec needs a command: argv is empty")
        if timeout <= 0:
            raise SandboxError(f"exec timeout must be positive, got {timeout}")
        half = max(1, self.output_cap // 2)
        wrapped = ["timeout", "-k", str(KILL_AFTER_S), f"{timeout:.3f}", "sh", "-c", _WRAPPER, "sh"]
        wrapped += [self._tag, f"{WORKSPACE}/{confine(cwd)}", str(half), *argv]
        backstop = 2 * half + 1 + 4096  # the wrapper sends at most 2 * half + 1 (+ the trailer)
        start = time.monotonic()
        data = stdin.encode() if stdin is not None else None
        raw = self._run(wrapped, WORKSPACE, data, timeout + KILL_AFTER_S + WATCHDOG_GRACE_S, backstop)
        duration = time.monotonic() - start
        err, trailer = _split_trailer(raw.stderr, self._tag.encode())
        _raise_wrapper_error(trailer.get("error"), cwd)
        out, cut_out = _head_and_tail(raw.stdout, half, _int_or_none(trailer.get("out")))
        err, cut_err = _head_and_tail(err, half, _int_or_none(trailer.get("err")))
        timed_out = raw.overran or (raw.code in (124, 137) and duration >= timeout)
        stderr = err.decode(errors="replace")
        if raw.overran:
            stderr += "\n[sandbox: the command outlived its timeout; the container was restarted]\n"
        return ExecResult(
            exit_code=124 if timed_out else raw.code,
            stdout=out.decode(errors="replace"),
            stderr=stderr,
            duration_s=duration,
            timed_out=timed_out,
            truncated=cut_out or cut_err or raw.truncated,
        )

    # -- files ------------------------------------------------------------
    def _file_op(self, script: str, path: str, data: bytes | None) -> bytes:
        target = f"{WORKSPACE}/{confine(path)}"
        raw = self._run(["sh", "-c", script, "sh", target], WORKSPACE, data, FILE_OP_TIMEOUT_S, None)
        if raw.overran:
            raise SandboxError(f"docker sandbox: file operation on {path!r} took over {FILE_OP_TIMEOUT_S:g}s")
        if raw.code == 0:
            return raw.stdout
        if raw.code == 2:
            raise FileNotFoundError(errno.ENOENT, "no such file in the workspace", path)
        if raw.code == 3:
            raise PathRefused(f"path {path!r} resolves outside the workspace (through a symlink)")
        if raw.code == 4:
            raise PathRefused(f"{path!r} is a directory")
        err = raw.stderr.decode(errors="replace").strip()
        raise SandboxError(f"docker sandbox: could not access {path!r}: {err or f'exit {raw.code}'}")

    def write_file(self, path: str, content: str | bytes) -> None:
        self._check_open()
        data = content.encode() if isinstance(content, str) else bytes(content)
        self._file_op(_WRITE, path, data)

    def read_file(self, path: str) -> bytes:
        self._check_open()
        return self._file_op(_READ, path, None)

    # -- lifecycle --------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()  # removes the container (force) and closes our client, once
        elif self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close()

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
