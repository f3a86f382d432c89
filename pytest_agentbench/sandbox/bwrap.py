"""The bubblewrap command line of the ``local`` sandbox, its resource limits, and whether it runs here.

Inside (:func:`bwrap_argv`), a command sees:

- a root of its own, read-only: ``/usr`` (and the ``/bin``, ``/lib*``, ``/sbin`` links or folders
  of the host's layout) read-only, a new ``/proc`` of its own PID namespace, a minimal ``/dev``,
  a chosen few ``/etc`` files (:data:`ETC_FILES`, no ``shadow``; ``passwd``/``group`` are made
  for the sandbox) - and nothing else of the host: not the packet folder, its hidden files, the
  harness's checkout or venv, the host's ``/tmp``, ``/root`` or ``/home``;
- three writable folders, all in the sandbox's private temp folder: ``/workspace`` (the copy),
  ``/home/agent`` and ``/tmp`` (kept between the commands of one run, as in the container);
- every namespace unshared: user (uid/gid 1000 ``agent``, no capabilities, no nested user
  namespaces), PID (the harness's processes are not in ``/proc``, and when the command ends
  its namespace and every process left in it, ``setsid`` ones included, die with it;
  ``--die-with-parent`` kills it all when the harness dies), network (no interface but its
  own loopback; with a gateway socket, that socket's folder is bound read-only at
  ``GATEWAY_DIR``, the only way out), IPC, UTS (hostname ``sandbox``), cgroup;
- an emptied environment: only :data:`SANDBOX_ENV` (PATH, HOME, LANG, TMPDIR, USER, PAGER,
  GIT_PAGER, PYTHONDONTWRITEBYTECODE and the agent's git identity) - nothing of the harness's;
- limits set by ``prlimit`` inside the user namespace: RLIMIT_NPROC (processes of the sandbox's
  user, counted per user namespace: a fork bomb stops at ``pids``), RLIMIT_AS (address space
  per process: a 10 GB allocation fails with MemoryError), no core files.

Why rlimits and not cgroups: a cgroup must be writable (root, or a systemd delegation, v1 or
v2 laid out differently per host), rlimits work for any user on any kernel with user
namespaces. Their cost is that memory is capped per process, not in total (``pids`` x
``memory`` at worst). RLIMIT_NPROC is not enforced for processes whose host uid is 0, so
when the harness runs as root the sandbox runs as host uid 65534 (nobody) - the workspace
is handed to that uid - which also means a command that escaped would hold no privilege.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.sandbox.base import GATEWAY_DIR
from pytest_agentbench.sandbox.git import AGENT_IDENTITY

AGENT_UID = 1000
#: The host uid the sandbox runs as when the harness is root (RLIMIT_NPROC does not bind uid 0).
HOST_UID_WHEN_ROOT = 65534
WORKSPACE = "/workspace"
HOME = "/home/agent"
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": HOME,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "USER": "agent",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "PYTHONDONTWRITEBYTECODE": "1",
    **AGENT_IDENTITY,
}
#: /etc entries bound read-only when the host has them (the loader, alternatives, time zone,
#: certificates, Python's and the shells' config); passwd and group are written per sandbox.
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "hosts",
    "mime.types",
    "os-release",
    "debian_version",
    "bash.bashrc",
    "profile",
    "inputrc",
    "perl",
    "ssl",
    "ca-certificates",
    "python3",
    "python3.11",
    "python3.12",
    "python3.13",
    "gitconfig",
    "terminfo",
    "protocols",
    "services",
)
PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\nagent:x:1000:1000:agent:/home/agent:/bin/bash\n"
GROUP = "root:x:0:\nagent:x:1000:\n"
FIX = (
    "install bubblewrap (apt-get install bubblewrap, or scripts/setup-system), or use --sandbox=docker; "
    "--sandbox=unsafe-local runs without any isolation (and every report says so)"
)


def parse_size(text: str | int) -> int:
    """Bytes from ``2g`` / ``512m`` / ``64k`` / a number, as docker reads ``--memory``."""
    if isinstance(text, int):
        return text
    t = text.strip().lower().removesuffix("b")
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def bwrap_binary() -> str | None:
    """``AGENTBENCH_BWRAP`` if set (a path), else ``bwrap`` on PATH."""
    return os.environ.get("AGENTBENCH_BWRAP") or shutil.which("bwrap")


def host_uid() -> int | None:
    """The host uid to run the sandbox as (None: the harness's own)."""
    return HOST_UID_WHEN_ROOT if os.geteuid() == 0 else None


def _traversable(folder: Path, uid: int) -> bool:
    """Can ``uid`` reach below ``folder`` (search permission on it and every folder above)?"""
    for part in (folder, *folder.parents):
        st = part.stat()
        if not (st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100)):
            return False
    return True


def temp_base(uid: int | None) -> Path | None:
    """Where the sandbox's private folders go: the default temp folder, or /tmp when ``uid``
    (the host uid bwrap runs as) cannot reach below the default one (e.g. TMPDIR under /root)."""
    if uid is None:
        return None
    default = Path(tempfile.gettempdir()).resolve()
    if _traversable(default, uid):
        return None
    if _traversable(Path("/tmp"), uid):
        return Path("/tmp")
    raise OSError(f"neither {default} nor /tmp can be reached by uid {uid}, which the sandbox runs as")


def _root_layout() -> list[str]:
    """/usr read-only, and the host's /bin, /sbin, /lib* as the same links (merged /usr) or folders."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return args


def write_etc(folder: Path) -> None:
    """The sandbox's own passwd and group."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(PASSWD)
    (folder / "group").write_text(GROUP)


def bwrap_argv(
    bwrap: str, private: Path, workdir: str, *, pids: int, memory: int, gateway: Path | None = None
) -> list[str]:
    """The command line up to (and including) ``--``; the command's argv follows it.

    ``private`` holds ``workspace/``, ``home/``, ``tmp/`` and ``etc/`` (see :func:`write_etc`);
    ``workdir`` is the folder inside, e.g. ``/workspace/pkg``; ``gateway``: the gateway's socket, whose
    folder is bound read-only at ``GATEWAY_DIR`` (the network namespace stays empty: serving.gateway).
    """
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(AGENT_UID)]
    args += ["--gid", str(AGENT_UID), "--hostname", "sandbox", "--die-with-parent", "--new-session"]
    args += ["--clearenv"]
    for key, value in SANDBOX_ENV.items():
        args += ["--setenv", key, value]
    args += _root_layout()
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--ro-bind", str(private / "etc" / "passwd"), "/etc/passwd"]
    args += ["--ro-bind", str(private / "etc" / "group"), "/etc/group"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--bind", str(private / "tmp"), "/tmp", "--bind", str(private / "home"), HOME]
    args += ["--bind", str(private / "workspace"), WORKSPACE]
    if gateway is not None:
        args += ["--ro-bind", str(gateway.parent), GATEWAY_DIR]
    args += ["--remount-ro", "/", "--chdir", workdir]
    args += ["--", "/usr/bin/prlimit", f"--nproc={pids}", f"--as={memory}", "--core=0", "--"]
    return args


def give_to(path: Path, uid: int | None) -> None:
    """``chown`` one path (not following a symlink) to ``uid`` when the sandbox runs as another uid."""
    if uid is not None:
        os.lchown(path, uid, uid)


def give_tree(root: Path, uid: int | None) -> None:
    """``chown -R`` ``root`` to ``uid`` (links themselves, never their targets)."""
    if uid is None:
        return
    give_to(root, uid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            give_to(Path(folder) / name, uid)


def run_as(uid: int | None) -> dict[str, Any]:
    """``Popen`` arguments that start bwrap as ``uid`` (and its group, no supplementary groups)."""
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


_STATUS: tuple[bool, str] | None = None


def bwrap_status() -> tuple[bool, str]:
    """(True, "") if the local sandbox's bubblewrap line runs ``true`` here, else (False, why + fix). Cached."""
    global _STATUS
    if _STATUS is None:
        _STATUS = _probe()
    return _STATUS


def _probe() -> tuple[bool, str]:
    exe = bwrap_binary()
    if exe is None:
        return False, f"bubblewrap (bwrap) is not installed: {FIX}"
    if not Path(exe).is_file():
        return False, f"bubblewrap: AGENTBENCH_BWRAP={exe} is not a file: {FIX}"
    uid = host_uid()
    try:
        private = Path(tempfile.mkdtemp(prefix="agentbench-probe-", dir=temp_base(uid)))
    except OSError as exc:
        return False, f"bubblewrap: {exc}: {FIX}"
    try:
        for name in ("workspace", "home", "tmp"):
            (private / name).mkdir()
        write_etc(private / "etc")
        give_tree(private, uid)
        argv = bwrap_argv(exe, private, WORKSPACE, pids=64, memory=1 << 30) + ["true"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={}, **run_as(uid))
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bubblewrap ({exe}) cannot run here: {exc}: {FIX}"
    finally:
        shutil.rmtree(private, ignore_errors=True)
    if done.returncode != 0:
        why = (done.stderr.strip() or f"exit {done.returncode}").splitlines()[-1]
        return False, f"bubblewrap ({exe}) cannot make the sandbox here: {why}: {FIX}"
    return True, ""


def reset_status() -> None:
    """Forget the cached probe (tests that change AGENTBENCH_BWRAP)."""
    global _STATUS
    _STATUS = None


def argv_for(
    bwrap: str,
    private: Path,
    workdir: Path,
    argv: Sequence[str],
    *,
    pids: int,
    memory: int,
    gateway: Path | None = None,
) -> list[str]:
    """The full host command line running ``argv`` in ``workdir`` (a host folder below the workspace)."""
    rel = workdir.relative_to((private / "workspace").resolve()).as_posix()
    inside = WORKSPACE if rel == "." else f"{WORKSPACE}/{rel}"
    return bwrap_argv(bwrap, private, inside, pids=pids, memory=memory, gateway=gateway) + list(argv)
