"""What the agent changed: the workspace's diff against the packet as given, taken safely from any sandbox.

:func:`take_patch` runs after the agent stops and before the gates copy their hidden files in. It
works through the :class:`~pytest_agentbench.sandbox.base.Sandbox` protocol alone (one ``exec`` of
the sandbox's ``python3``, and for a big patch one ``read_file`` and one ``rm``), so the docker,
local and unsafe-local backends - and a third party's - all produce it the same way:

- the baseline is the packet's own workspace folder, committed on the host
  (:func:`~pytest_agentbench.sandbox.git.baseline_bundle`) and sent on stdin; the sandbox's ``.git``,
  which the agent owns (config, hooks, history - or deleted), is never read;
- in the sandbox, :mod:`._patch_script` stages the workspace into a private git dir with no config
  or hooks of the agent's, attributes neutralised, huge and unreadable files left out (listed in
  ``skipped``), every git command under the time left of :data:`PATCH_TIMEOUT_S`;
- the diff is ``git diff`` of the staged workspace against the baseline tree: new and deleted files
  included, binary files marked (``Binary files a/x and b/x differ``, listed in ``binary``), no
  rename detection (a rename is a deletion and an addition: it applies everywhere).

The record keeps the first :data:`KEEP_BYTES` of the diff (cut after the last whole file that fits,
so the kept part still applies), with ``bytes`` the whole's size; a whole up to :data:`WHOLE_LIMIT`
stays in :attr:`Patch.whole` for the plugin to write next to the results
(:func:`pytest_agentbench.results.export.keep_whole_patch`). Nothing here raises: whatever goes
wrong (a broken sandbox, a timeout, a workspace git cannot read) is :attr:`Patch.error`, naming why
no patch could be taken.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_agentbench.sandbox import _patch_script
from pytest_agentbench.sandbox.base import ExecResult, Sandbox
from pytest_agentbench.sandbox.git import NEUTRAL_ATTRIBUTES, baseline_bundle

__all__ = [
    "INLINE_BYTES",
    "KEEP_BYTES",
    "MAX_FILE_BYTES",
    "PATCH_TIMEOUT_S",
    "WHOLE_LIMIT",
    "Patch",
    "cut_patch",
    "take_patch",
]

#: Seconds the whole diff may take in the sandbox (the script gives git all but the last 10).
PATCH_TIMEOUT_S = 120.0
#: Bytes of the diff kept in the run record.
KEEP_BYTES = 256 * 1024
#: A whole diff up to this size is kept as a file next to the results when the record holds only its head.
WHOLE_LIMIT = 16 * 1024 * 1024
#: A diff up to this size comes back on stdout (base64); a bigger one through a file in the workspace.
INLINE_BYTES = 48 * 1024
#: Files over this size are not compared (listed in ``skipped``): hashing a 10 GB file is no diff.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: At most this many changed (and skipped) files are listed; ``files_total`` counts them all.
MAX_LISTED = 1000
_SCRIPT = Path(_patch_script.__file__).read_text(encoding="utf-8")


@dataclass
class Patch:
    """The agent's change, as far as it could be taken; ``error`` says why not, when it could not."""

    diff: str = ""
    bytes: int = 0  # the whole diff's size
    truncated: bool = False  # ``diff`` is only its head
    files: list[dict[str, Any]] = field(default_factory=list)
    files_total: int = 0
    kept_files: int = 0  # files wholly in ``diff``
    skipped: list[dict[str, Any]] = field(default_factory=list)
    skipped_total: int = 0
    sha256: str | None = None  # of the whole diff
    base_tree: str | None = None  # the baseline's git tree id
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    took_s: float = 0.0
    whole: bytes | None = field(default=None, repr=False)  # the whole diff when cut and <= WHOLE_LIMIT
    whole_path: str | None = None  # where the whole was written, relative to the results folder

    @property
    def binary(self) -> list[str]:
        return [f["path"] for f in self.files if f.get("binary")]

    def note(self) -> str:
        """One sentence on what is missing from ``diff`` and where the whole is; "" when nothing is."""
        if self.error:
            return f"no patch: {self.error}"
        if not self.truncated:
            return ""
        if self.whole_path:
            where = f"the whole is {self.whole_path} next to results.jsonl"
        elif self.whole is not None:
            where = "the whole was not written (no results folder)"
        else:
            where = f"the whole was not kept (over the {WHOLE_LIMIT}-byte limit)"
        return (
            f"cut for the record at {len(self.diff.encode())} of {self.bytes} bytes "
            f"(the first {self.kept_files} of {self.files_total} files); {where}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The record's ``patch`` field (see :mod:`pytest_agentbench.results.record`)."""
        return {
            "diff": self.diff,
            "files": self.files,
            "files_total": self.files_total,
            "bytes": self.bytes,
            "truncated": self.truncated,
            "binary": self.binary,
            "skipped": self.skipped,
            "skipped_total": self.skipped_total,
            "sha256": self.sha256,
            "base_tree": self.base_tree,
            "whole": self.whole_path,
            "note": self.note(),
            "warnings": self.warnings,
            "error": self.error,
            "took_s": round(self.took_s, 6),
        }


class _NoPatch(Exception):
    """Why no patch could be taken (the message)."""


def cut_patch(data: bytes, limit: int) -> tuple[bytes, int]:
    """The head of a diff within ``limit`` bytes, cut after the last whole file that fits (else after the
    last whole line); and how many files it holds whole."""
    if len(data) <= limit:
        return data, data.count(b"diff --git ")
    at = data.rfind(b"\ndiff --git ", 0, limit + len(b"diff --git "))  # a file starting within the limit
    if at > 0:
        kept = data[: at + 1]
        return kept, kept.count(b"diff --git ")
    head = data[:limit]
    line = head.rfind(b"\n")
    return (head[: line + 1] if line >= 0 else head), 0


def take_patch(sandbox: Sandbox, workspace_src: Path, *, timeout_s: float = PATCH_TIMEOUT_S) -> Patch:
    """The workspace's diff against ``workspace_src`` (the packet's folder); never raises an ``Exception``."""
    start = time.monotonic()
    out = f".agentbench-patch-{uuid.uuid4().hex[:12]}.diff"
    handed_over = False  # a file may be in the workspace: remove it before the gates
    try:
        bundle = base64.b64encode(baseline_bundle(workspace_src)).decode()
        config = {
            "out": out,
            "max_file_bytes": MAX_FILE_BYTES,
            "whole_limit": WHOLE_LIMIT,
            "keep_bytes": KEEP_BYTES,
            "inline_bytes": INLINE_BYTES,
            "max_listed": MAX_LISTED,
            "budget_s": max(1.0, timeout_s - 10.0),
            "attributes": NEUTRAL_ATTRIBUTES,
        }
        handed_over = True
        res = sandbox.exec(["python3", "-I", "-c", _SCRIPT, json.dumps(config)], timeout_s, stdin=bundle)
        if res.truncated and not res.timed_out:  # a sandbox with a small output cap: ask for less on stdout
            _remove(sandbox, out)
            config.update(inline_bytes=0, max_listed=20)
            res = sandbox.exec(["python3", "-I", "-c", _SCRIPT, json.dumps(config)], timeout_s, stdin=bundle)
        report = _report(res, timeout_s)
        handed_over = bool(report.get("written"))
        data = base64.b64decode(report["inline"]) if report.get("inline") is not None else sandbox.read_file(out)
        return _patch_of(report, data, time.monotonic() - start)
    except _NoPatch as exc:
        return Patch(error=str(exc), took_s=time.monotonic() - start)
    except Exception as exc:  # a broken sandbox or a baseline that cannot be made: say so, never crash the run
        return Patch(error=f"{type(exc).__name__}: {exc}", took_s=time.monotonic() - start)
    finally:
        if handed_over:
            _remove(sandbox, out)


def _remove(sandbox: Sandbox, name: str) -> None:
    """Remove the hand-over file (if any) before the gates see the workspace; a dead sandbox is not our failure."""
    try:
        sandbox.exec(["rm", "-f", "--", name], 30)
    except Exception:
        pass


def _report(res: ExecResult, timeout_s: float) -> dict[str, Any]:
    """The script's JSON report, or ``_NoPatch`` saying plainly what went wrong."""
    if res.timed_out:
        raise _NoPatch(f"taking the diff ran past {timeout_s:g} s (a workspace too big to stage in time?)")
    if res.exit_code == 127:
        raise _NoPatch("python3 is not on the sandbox's PATH (every sandbox must offer it)")
    line = next((ln for ln in reversed(res.stdout.splitlines()) if ln.startswith(_patch_script.MARKER)), None)
    if line is None:
        why = "its output was cut by the sandbox's output cap" if res.truncated else "it printed none"
        tail = (res.stderr.strip() or res.stdout.strip())[-600:]
        raise _NoPatch(f"the diff script gave no report ({why}; exit {res.exit_code}): {tail}")
    try:
        report = json.loads(line[len(_patch_script.MARKER) :])
    except json.JSONDecodeError as exc:
        raise _NoPatch(f"the diff script's report is not JSON ({exc})") from None
    if not isinstance(report, dict) or not report.get("ok"):
        raise _NoPatch(str(report.get("error") if isinstance(report, dict) else report))
    return report


def _patch_of(report: dict[str, Any], data: bytes, took_s: float) -> Patch:
    size = int(report["bytes"])
    kept, kept_files = cut_patch(data, KEEP_BYTES)
    warnings = [str(w) for w in report.get("warnings") or []]
    try:
        text = kept.decode("utf-8")
    except UnicodeDecodeError:
        text = kept.decode("utf-8", "replace")
        warnings.append("the diff is not valid UTF-8: the bytes that are not were replaced by U+FFFD")
    truncated = len(kept) < size
    whole = data if truncated and report.get("whole") and len(data) == size else None
    return Patch(
        diff=text,
        bytes=size,
        truncated=truncated,
        files=list(report.get("files") or []),
        files_total=int(report.get("files_total") or 0),
        kept_files=kept_files,
        skipped=list(report.get("skipped") or []),
        skipped_total=int(report.get("skipped_total") or 0),
        sha256=report.get("sha256"),
        base_tree=report.get("tree"),
        warnings=warnings,
        took_s=took_s,
        whole=whole,
    )
