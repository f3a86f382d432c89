"""What the gates can trust: the agent's workspace, minus what would change *how* the gates run. pytest-free.

A hostile agent need not fix the bug if it can change the test runner: a ``pytest.py`` at the
workspace root is what ``python -m pytest`` imports (the working directory is first on
``sys.path``); a planted ``conftest.py``, a ``pytest.ini`` with ``addopts = -p plugin``, or a
``*.dist-info`` folder declaring a ``pytest11`` entry point turns failures into passes; a ``.pth``
file in the user site-packages runs at every Python start-up. The sandbox cannot stop any of this:
the workspace is the agent's to write. So before the gates run, :func:`secure_workspace`:

1. puts the packet's own test configuration back: every ``conftest.py``, ``pytest.ini``,
   ``.pytest.ini`` and ``tox.ini`` is restored when changed and removed when new; a ``setup.cfg`` or
   ``pyproject.toml`` only when its pytest section changed (a new dependency stays);
2. removes *new* files and packages that would be imported in place of a module the sandbox's
   interpreter has (standard library or installed: ``pytest.py``, ``_pytest/``, ``json.py`` ...);
   the names come from that interpreter itself (``python -I``), not from a list;
3. removes byte-code caches and package metadata (``__pycache__``, sourceless ``.pyc``,
   ``.pytest_cache``, ``*.dist-info``, ``*.egg-info``): never part of a solution, and each can
   change what runs;
4. applies the packet's ``protect:`` globs: matching files restored, new ones removed.

Every action is returned as a :class:`Reset` for the run record: a run whose gates passed only
after a reset still passed on its merits, and the reviewer sees what was undone. When the
workspace cannot be checked (the listing went over the output cap, a command failed), the
gates do not run: :class:`IntegrityError`. Gate commands themselves run under :func:`gate_argv`:
user site-packages off, a fresh ``HOME``, git hooks and fsmonitor off.
"""

from __future__ import annotations

import configparser
import fnmatch
import secrets
import shlex
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pytest_agentbench.errors import IntegrityError, SandboxError
from pytest_agentbench.packets.schema import Packet
from pytest_agentbench.sandbox.base import Sandbox

__all__ = ["IntegrityError", "Reset", "gate_argv", "secure_workspace"]

#: Seconds for each command of the check (listing, the interpreter probe, removals).
CHECK_TIMEOUT_S = 60.0
#: Files whose whole content is test configuration.
CONFIG_FILES = frozenset({"conftest.py", "pytest.ini", ".pytest.ini", "tox.ini"})
#: Files that may hold a pytest section among other things.
MIXED_CONFIG_FILES = frozenset({"setup.cfg", "pyproject.toml"})
#: Folders that are caches or metadata: removed wherever they are.
CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache"})
METADATA_SUFFIXES = (".dist-info", ".egg-info")
#: Modules imported at start-up when found anywhere on sys.path, whatever the interpreter has.
STARTUP_MODULES = frozenset({"sitecustomize", "usercustomize"})
_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")
#: Lists every entry below the workspace but .git, NUL-separated, with its type (f, d, l ...).
_LIST = ["find", ".", "-mindepth", "1", "-path", "./.git", "-prune", "-o", "-printf", "%y %P\\0"]
#: Prints every top-level module the interpreter can import, ignoring the working directory and user site.
_PROBE = (
    "import sys, pkgutil; "
    "print('\\n'.join(sorted(set(sys.stdlib_module_names) | {m.name for m in pkgutil.iter_modules()})))"
)


@dataclass(frozen=True)
class Reset:
    """One thing undone before the gates: ``restored`` (the packet's version put back) or ``removed``."""

    path: str
    action: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "action": self.action, "why": self.why}


def gate_argv(command: str) -> list[str]:
    """The argv a gate's shell line runs as: no user site-packages, a fresh HOME, no git hooks or fsmonitor.

    The HOME name is random per gate so nothing the agent left can be waiting there.
    """
    home = f"/tmp/agentbench-gate-home-{secrets.token_hex(8)}"
    env = {
        "PYTHONNOUSERSITE": "1",
        "HOME": home,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": "/dev/null",
        "GIT_CONFIG_KEY_1": "core.fsmonitor",
        "GIT_CONFIG_VALUE_1": "false",
    }
    script = f"mkdir -m 700 {shlex.quote(home)} || exit 125\n{command}"
    return ["env", *(f"{k}={v}" for k, v in env.items()), "bash", "-c", script]


def secure_workspace(packet: Packet, sandbox: Sandbox) -> list[Reset]:
    """Undo what would change how the gates run (see the module docstring); what was undone, in order."""
    entries = _list_workspace(sandbox)
    original = _original_tree(packet.workspace)
    importable = _importable_modules(sandbox)
    resets: list[Reset] = []
    removals: list[Reset] = []
    for path, kind in sorted(entries.items()):
        if any(PurePosixPath(r.path) in PurePosixPath(path).parents for r in removals):
            continue  # inside a folder already going
        if _matches(packet.allow, path):
            continue
        reset = _judge(packet, sandbox, path, kind, original, importable, entries)
        if reset is not None:
            (removals if reset.action == "removed" else resets).append(reset)
    _remove(sandbox, [r.path for r in removals])
    for path in _missing_originals(packet, entries, original):
        _restore(packet, sandbox, path)
        resets.append(Reset(path, "restored", "the packet's file was deleted or replaced"))
    return removals + resets


def _judge(
    packet: Packet,
    sandbox: Sandbox,
    path: str,
    kind: str,
    original: Mapping[str, str],
    importable: frozenset[str],
    entries: Mapping[str, str],
) -> Reset | None:
    """What to do with one entry: ``None`` to leave it; a restore is done here, removals by the caller."""
    name = PurePosixPath(path).name
    new = path not in original or original[path] != kind
    if kind == "d" and (name in CACHE_DIRS or name.endswith(METADATA_SUFFIXES)) and new:
        return Reset(path, "removed", "a cache or package-metadata folder (it can change what runs)")
    if name in CONFIG_FILES or _matches(packet.protect, path):
        why = "test configuration" if name in CONFIG_FILES else "protected by the packet"
        if new:
            return Reset(path, "removed", f"{why}: not in the packet")
        if kind == "f" and _changed(packet, sandbox, path):
            _restore(packet, sandbox, path)
            return Reset(path, "restored", f"{why}: changed by the agent")
        return None
    if name in MIXED_CONFIG_FILES and kind == "f":
        return _mixed_config(packet, sandbox, path, new)
    module = _top_level_name(path, kind, entries)
    if new and module is not None and (module in importable or module in STARTUP_MODULES):
        return Reset(path, "removed", f"would be imported instead of the module {module!r}")
    if new and name.endswith(".pyc") and "__pycache__" not in path:
        return Reset(path, "removed", "sourceless byte-code (importable in place of a module)")
    return None


def _top_level_name(path: str, kind: str, entries: Mapping[str, str]) -> str | None:
    """The top-level module an entry can be imported as, or ``None``.

    Only entries whose folder is not a package can be top-level: a folder with an ``__init__``
    is never put on ``sys.path`` (pytest inserts the first folder *without* one), so
    ``pkg/types.py`` is ``pkg.types`` and shadows nothing. A module file is named by its stem
    (``json.py``, ``x.cpython-311-x86_64-linux-gnu.so``); a package folder by its name, when it has
    an ``__init__`` (a namespace folder loses to any real module of that name).
    """
    parent = PurePosixPath(path).parent.as_posix()
    if parent != "." and _is_package(parent, entries):
        return None
    name = PurePosixPath(path).name
    if kind in ("f", "l") and name.endswith(_MODULE_SUFFIXES):
        return name.split(".", 1)[0]
    if kind == "l":
        return name  # a link may lead to a package folder the listing does not enter: judged by its name
    if kind == "d" and _is_package(path, entries):
        return name
    return None


def _is_package(folder: str, entries: Mapping[str, str]) -> bool:
    return any(f"{folder}/__init__{suffix}" in entries for suffix in _MODULE_SUFFIXES)


def _mixed_config(packet: Packet, sandbox: Sandbox, path: str, new: bool) -> Reset | None:
    """setup.cfg / pyproject.toml: only a changed pytest section is undone (the rest may be the solution)."""
    now = _pytest_section(path, _read(sandbox, path))
    before = None if new else _pytest_section(path, (packet.workspace / path).read_bytes())
    if now == before:
        return None
    if new:
        return Reset(path, "removed", "test configuration: a pytest section not in the packet")
    _restore(packet, sandbox, path)
    return Reset(path, "restored", "test configuration: its pytest section was changed by the agent")


def _pytest_section(path: str, data: bytes | None) -> object:
    """The pytest part of a setup.cfg / pyproject.toml, comparable; a marker when it cannot be read."""
    if data is None:
        return None
    text = data.decode("utf-8", "replace")
    try:
        if path.endswith(".toml"):
            return tomllib.loads(text).get("tool", {}).get("pytest")
        parser = configparser.RawConfigParser()
        parser.read_string(text)
        return {s: dict(parser.items(s)) for s in parser.sections() if s in ("tool:pytest", "pytest")} or None
    except (tomllib.TOMLDecodeError, configparser.Error, AttributeError):
        return ("unreadable", text)  # never equal to a readable original: restored


def _matches(globs: Sequence[str], path: str) -> bool:
    """fnmatch over the workspace-relative path (``*`` also crosses ``/``: ``tests/*`` is all below tests)."""
    return any(fnmatch.fnmatchcase(path, glob) for glob in globs)


def _changed(packet: Packet, sandbox: Sandbox, path: str) -> bool:
    return _read(sandbox, path) != (packet.workspace / path).read_bytes()


def _read(sandbox: Sandbox, path: str) -> bytes | None:
    try:
        return sandbox.read_file(path)
    except (FileNotFoundError, SandboxError, OSError):
        return None


def _restore(packet: Packet, sandbox: Sandbox, path: str) -> None:
    """Put the packet's file back: whatever is there (a link, a folder) goes first."""
    _remove(sandbox, [path])
    sandbox.write_file(path, (packet.workspace / path).read_bytes())


def _remove(sandbox: Sandbox, paths: Sequence[str]) -> None:
    for start in range(0, len(paths), 200):
        chunk = paths[start : start + 200]
        res = sandbox.exec(["rm", "-rf", "--", *chunk], CHECK_TIMEOUT_S)
        if not res.ok:
            raise IntegrityError(f"could not remove {', '.join(chunk[:3])} before the gates: {res.output.strip()}")


def _missing_originals(packet: Packet, entries: Mapping[str, str], original: Mapping[str, str]) -> Iterable[str]:
    """The packet's configuration files (and protected files) that the agent deleted or turned into something else."""
    for path, kind in original.items():
        name = PurePosixPath(path).name
        if kind != "f" or _matches(packet.allow, path) or entries.get(path) == "f":
            continue
        if name in CONFIG_FILES or _matches(packet.protect, path):
            yield path


def _list_workspace(sandbox: Sandbox) -> dict[str, str]:
    """Every entry below the workspace but .git, as {relative path: find's type letter}."""
    res = sandbox.exec(_LIST, CHECK_TIMEOUT_S)
    if res.timed_out or res.truncated or res.exit_code != 0:
        why = "timed out" if res.timed_out else "went over the output cap" if res.truncated else res.stderr.strip()
        raise IntegrityError(
            f"could not list the workspace to check it before the gates ({why}); "
            "the gates did not run on a workspace that could not be checked"
        )
    out: dict[str, str] = {}
    for item in res.stdout.split("\0"):
        if len(item) > 2 and item[1] == " ":
            out[item[2:]] = item[0]
    return out


def _original_tree(root: Path) -> dict[str, str]:
    """The packet's workspace on the host, in the listing's terms."""
    out: dict[str, str] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        out[rel] = "l" if path.is_symlink() else "d" if path.is_dir() else "f"
    return out


def _importable_modules(sandbox: Sandbox) -> frozenset[str]:
    """Top-level modules the sandbox's interpreter imports without the workspace (none without Python)."""
    for python in ("python", "python3"):
        res = sandbox.exec([python, "-I", "-c", _PROBE], CHECK_TIMEOUT_S)
        if res.ok and not res.truncated:
            return frozenset(line.strip() for line in res.stdout.splitlines() if line.strip())
    return frozenset()
