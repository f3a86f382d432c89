"""Run *inside* a sandbox as ``python3 -I -c SOURCE CONFIG``: the workspace's diff against the packet's baseline.

:mod:`pytest_agentbench.sandbox.patch` sends this file's source; it imports nothing of the package
(only the standard library of the sandbox's Python). The agent owns everything in the workspace,
``.git`` included, so nothing of the agent's is trusted:

- the baseline comes on stdin (a base64 git bundle made on the host from the packet's folder) and is
  verified by ``git fetch``; the workspace's own ``.git`` is never read (git skips it as a work tree entry);
- git runs with a fresh ``GIT_DIR`` in a private temp folder, no system or user config, our settings
  as command-line config (``GIT_CONFIG_COUNT``: no fsmonitor, no hooks), and attributes in
  ``$GIT_DIR/info/attributes`` that outrank the workspace's ``.gitattributes`` (no diff drivers,
  filters or eol conversions);
- before ``git add``, a walk that follows no symlink lists what git must not read: files over
  ``max_file_bytes``, unreadable files and folders (the list is reported, minus ignored paths), and
  they are excluded by literal pathspecs; fifos, sockets and devices git skips by itself;
- every git command runs under the time left of ``budget_s``.

The diff goes to a file of ours; its first ``keep_bytes`` (all of it up to ``whole_limit``) are copied
to ``out`` in the workspace root (created exclusively, never through a link) for the harness to read
and remove - or, up to ``inline_bytes`` (or where the workspace refuses the file), sent base64 on
stdout. The last stdout line is ``MARKER`` + JSON: ``{"ok": true, "tree", "bytes", "sha256",
"written", "inline", "whole", "files", "files_total", "skipped", "skipped_total", "warnings"}`` or
``{"ok": false, "error"}``. A failure is a report, never a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

__all__ = ["MARKER", "main"]

MARKER = "AGENTBENCH-PATCH "
_GIT_SETTINGS = (
    ("safe.directory", "*"),
    ("core.fsmonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("core.autocrlf", "false"),
    ("core.safecrlf", "false"),
    ("core.symlinks", "true"),
    ("core.fileMode", "true"),
    ("core.untrackedCache", "false"),
    ("core.quotePath", "true"),
    ("diff.noprefix", "false"),
    ("gc.auto", "0"),
    ("transfer.fsckObjects", "true"),
)
_STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "type-changed"}


class Failed(Exception):
    """A step failed: the message is the report."""


class Git:
    """git with a private GIT_DIR over the workspace, under a deadline."""

    def __init__(self, workspace: str, tmp: str, deadline: float) -> None:
        self.workspace, self.deadline = workspace, deadline
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": tmp,
            "XDG_CONFIG_HOME": tmp,
            "GIT_DIR": os.path.join(tmp, "git"),
            "GIT_WORK_TREE": workspace,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            "LC_ALL": "C",
            "GIT_CONFIG_COUNT": str(len(_GIT_SETTINGS)),
        }
        for i, (key, value) in enumerate(_GIT_SETTINGS):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
        self.env, self.git_dir = env, env["GIT_DIR"]

    def __call__(self, *args: str, stdin: bytes | None = None, out: object = None, ok: tuple = (0,)) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failed(f"ran out of time before git {args[0]}")
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=self.workspace,
                env=self.env,
                input=stdin,
                stdout=out if out is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=left,
            )
        except subprocess.TimeoutExpired:
            raise Failed(f"git {args[0]} ran past the time limit") from None
        except OSError as exc:
            raise Failed(f"cannot run git: {exc}") from None
        if done.returncode not in ok:
            err = done.stderr.decode("utf-8", "replace").strip()[-1500:]
            raise Failed(f"git {args[0]} failed (exit {done.returncode}): {err}")
        self.last_stderr = done.stderr
        return done.stdout or b""


def walk(workspace: str, max_file_bytes: int, deadline: float) -> list[dict]:
    """What git must not read, or need not: big, unreadable, not regular (never following a link)."""
    found: list[dict] = []

    def unreadable_dir(err: OSError) -> None:
        rel = os.path.relpath(err.filename or "?", workspace)
        found.append({"path": rel, "why": f"folder not readable ({err.strerror})", "exclude": True})

    for n, (folder, dirs, files) in enumerate(os.walk(workspace, onerror=unreadable_dir)):
        if n % 500 == 0 and time.monotonic() > deadline:
            raise Failed("ran out of time walking the workspace (too many files?)")
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            if name == ".git":
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, workspace)
            try:
                st = os.lstat(path)
            except OSError as exc:
                found.append({"path": rel, "why": f"cannot stat ({exc.strerror})", "exclude": True})
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                found.append({"path": rel, "why": "not a regular file (fifo, socket or device)", "exclude": False})
            elif st.st_size > max_file_bytes:
                why = f"{st.st_size} bytes, over the {max_file_bytes}-byte limit: not compared"
                found.append({"path": rel, "why": why, "bytes": st.st_size, "exclude": True})
            elif not os.access(path, os.R_OK):
                found.append({"path": rel, "why": "not readable", "exclude": True})
    return found


def _split_z(data: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p]


def _files(git: Git, tree: str) -> list[dict]:
    """Every changed path: status, lines added/deleted, binary (git's own check: a NUL in the first 8000 bytes)."""
    names = _split_z(git("diff", "--cached", "--no-renames", "--name-status", "-z", tree))
    status = {names[i + 1]: names[i] for i in range(0, len(names) - 1, 2)}
    files = []
    for entry in _split_z(git("diff", "--cached", "--no-renames", "--numstat", "-z", tree)):
        added, deleted, path = entry.split("\t", 2)
        binary = added == "-"
        files.append(
            {
                "path": path,
                "status": _STATUS.get(status.get(path, "M")[:1], status.get(path, "?")),
                "added": None if binary else int(added),
                "deleted": None if binary else int(deleted),
                "binary": binary,
            }
        )
    return files


def _stage(git: Git, bundle: bytes, skipped: list[dict], workspace: str) -> str:
    """Fetch the baseline, index it, stage the workspace on top (minus the excluded paths); the tree id."""
    git("init", "-q")
    os.makedirs(os.path.join(git.git_dir, "info"), exist_ok=True)
    with open(os.path.join(git.git_dir, "info", "attributes"), "w") as f:
        f.write(CONFIG["attributes"])
    bundle_path = os.path.join(os.path.dirname(git.git_dir), "base.bundle")
    with open(bundle_path, "wb") as f:
        f.write(bundle)
    git("fetch", "-q", "--no-tags", bundle_path, "main:refs/agentbench/base")
    tree = git("rev-parse", "refs/agentbench/base^{tree}").decode().strip()
    git("read-tree", tree)
    excluded = [s["path"] for s in skipped if s["exclude"]]
    if excluded:
        listed = "\0".join(excluded).encode("utf-8", "surrogateescape") + b"\0"
        ignored = set(_split_z(git("check-ignore", "-z", "--stdin", stdin=listed, ok=(0, 1))))
        skipped[:] = [s for s in skipped if s["path"] not in ignored]
    specs = ["."] + [f":(exclude,literal){p}" for p in excluded]
    data = "\0".join(specs).encode("utf-8", "surrogateescape") + b"\0"
    git("add", "-A", "--ignore-errors", "--pathspec-from-file=-", "--pathspec-file-nul", stdin=data, ok=(0, 1))
    return tree


def _hand_over(patch: str, out: str, limit: int) -> int:
    """Copy up to ``limit`` bytes of the patch to ``out`` (created new, never through a link); bytes written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(out, flags, 0o600)
    written = 0
    with open(patch, "rb") as src, os.fdopen(fd, "wb") as dst:
        while written < limit:
            chunk = src.read(min(1 << 20, limit - written))
            if not chunk:
                break
            dst.write(chunk)
            written += len(chunk)
    return written


def take(bundle: bytes, tmp: str) -> dict:
    workspace = os.getcwd()
    deadline = time.monotonic() + float(CONFIG["budget_s"])
    git = Git(workspace, tmp, deadline)
    skipped = walk(workspace, int(CONFIG["max_file_bytes"]), deadline)
    tree = _stage(git, bundle, skipped, workspace)
    warnings = git.last_stderr.decode("utf-8", "replace").strip().splitlines()
    files = _files(git, tree)
    patch = os.path.join(tmp, "patch.diff")
    with open(patch, "wb") as f:
        git("diff", "--cached", "--no-renames", "--no-ext-diff", "--no-textconv", "--no-color", tree, out=f)
    size = os.path.getsize(patch)
    digest = hashlib.sha256()
    with open(patch, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    whole = size <= int(CONFIG["whole_limit"])
    inline, written = None, 0
    if size <= int(CONFIG["inline_bytes"]):
        with open(patch, "rb") as f:
            inline = base64.b64encode(f.read()).decode()
    else:
        limit = size if whole else int(CONFIG["keep_bytes"])
        try:
            written = _hand_over(patch, os.path.join(workspace, CONFIG["out"]), limit)
        except OSError as exc:  # e.g. the agent made the workspace read-only: send what fits on stdout
            with open(patch, "rb") as f:
                inline = base64.b64encode(f.read(int(CONFIG["inline_bytes"]))).decode()
            whole = False
            warnings.append(f"the workspace refused the hand-over file ({exc.strerror}): only the head came back")
    listed = int(CONFIG["max_listed"])
    return {
        "ok": True,
        "tree": tree,
        "bytes": size,
        "sha256": digest.hexdigest(),
        "written": written,
        "inline": inline,
        "whole": whole,
        "files": files[:listed],
        "files_total": len(files),
        "skipped": [{k: v for k, v in s.items() if k != "exclude"} for s in skipped[:listed]],
        "skipped_total": len(skipped),
        "warnings": [w[:300] for w in warnings[:20]],
    }


CONFIG: dict = {}


def main(argv: list[str]) -> int:
    tmp = tempfile.mkdtemp(prefix="agentbench-patch-")
    try:
        CONFIG.update(json.loads(argv[1]))
        bundle = base64.b64decode(sys.stdin.buffer.read(), validate=False)
        report = take(bundle, tmp)
    except Failed as exc:
        report = {"ok": False, "error": str(exc)}
    except Exception as exc:  # report, never a traceback: the harness reads only the marker line
        report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.write("\n" + MARKER + json.dumps(report) + "\n")
    return 0 if report["ok"] else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
