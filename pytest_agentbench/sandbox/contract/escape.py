"""The contract's escape checks: an agent's command must have no path to the gates or the harness.

A command that reads or rewrites the packet's hidden gate files through a harness process's
``/proc/<pid>/cwd``, ``environ`` or ``fd`` entries, or by their absolute path; that reads
``/etc/shadow``; that finds the harness's secrets in its environment; or that leaves a
``setsid`` process running after it ends (and so into gate time). The harness is stood for
by a helper process of the test's own (started like the harness's own children: same user,
cwd in the packet folder, a planted variable in its environment, the hidden file held open),
and by the test process itself (every pid in /proc is tried). ``unsafe-local`` isolates none of this: its gaps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest_agentbench
from pytest_agentbench.sandbox.contract.asserts import BEATING, assert_stopped_beating, assert_usable, sh
from pytest_agentbench.sandbox.contract.trial import Checks, Gap, Trial

CHECKS = Checks()
UNSAFE = "unsafe-local"

# The stand-in for a harness process: cwd in the packet folder, the token in its environment,
# the hidden file open for reading and writing, alive until killed.
_HOLDER = """
import sys, time
f = open(sys.argv[1], "r+")
print("ready", flush=True)
time.sleep(120)
"""
# Each vector: reads what it reaches, and appends MARK to any file holding TOKEN.
_VECTORS = {
    "proc-cwd": 'for p in /proc/[0-9]*; do f="$p/cwd/hidden/$NAME"; [ -f "$f" ] || continue; '
    'cat "$f"; echo "$MARK" >> "$f"; done 2>/dev/null; true',
    "proc-environ": "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -a \"$TOKEN\"; true",
    "proc-fd": 'for f in /proc/[0-9]*/fd/*; do [ -f "$f" ] || continue; grep -aq "$TOKEN" "$f" || continue; '
    'cat "$f"; echo "$MARK" >> "$f"; done 2>/dev/null; true',
    "absolute-path": 'cat "$HIDDEN"; echo "$MARK" >> "$HIDDEN"; '
    'ls "$HARNESS" | grep -qx runner.py && echo HARNESS-SEEN; true',
}


def _unsafe_gap(reason: str):  # type: ignore[no-untyped-def]
    def gap(t: Trial) -> Gap | None:
        return Gap(f"unsafe-local: {reason}") if t.kind == UNSAFE else None

    return gap


@contextmanager
def _packet_with_hidden_file(t: Trial) -> Iterator[tuple[Path, str]]:
    """A packet folder beside the workspace with ``hidden/<name>`` holding a token, and a helper process."""
    token = f"HIDDEN-GATE-{uuid.uuid4().hex}"
    hidden = t.source.parent / "packet" / "hidden" / f"gate-{token[-8:]}.py"
    hidden.parent.mkdir(parents=True, exist_ok=True)
    hidden.write_text(f"TOKEN = {token!r}\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AGENTBENCH_CONTRACT_PLANT": token}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(hidden)],
        cwd=hidden.parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield hidden, token
    finally:
        holder.kill()
        holder.wait()


@CHECKS.add(
    params=list(_VECTORS),
    gap=_unsafe_gap("commands run as the harness's user and see its processes and files"),
)
def check_hostile_reach_the_hidden_gate_files(t: Trial) -> None:
    sandbox = t.sandbox
    with _packet_with_hidden_file(t) as (hidden, token):
        mark = f"REWRITTEN-{uuid.uuid4().hex[:8]}"
        assigns = {
            "NAME": hidden.name,
            "TOKEN": token,
            "MARK": mark,
            "HIDDEN": str(hidden),
            "HARNESS": str(Path(pytest_agentbench.__file__).parent),
        }
        prelude = "".join(f"{k}='{v}'; " for k, v in assigns.items())
        r = sh(sandbox, prelude + _VECTORS[str(t.param)], timeout=30)
        assert not r.timed_out, r
        assert token not in r.output, f"the command read the hidden gate file: {r.output[-300:]}"
        assert hidden.read_text() == f"TOKEN = {token!r}\n", "the command rewrote the hidden gate file"
        assert "HARNESS-SEEN" not in r.stdout, "the command listed the harness's own package"
    assert_usable(sandbox)


def _shadow_gap(t: Trial) -> Gap | None:
    if t.kind == UNSAFE and os.geteuid() == 0:
        return Gap("unsafe-local: commands run as the harness's user, here root")
    return None


@CHECKS.add(gap=_shadow_gap)
def check_hostile_read_etc_shadow(t: Trial) -> None:
    r = sh(t.sandbox, "cat /etc/shadow")
    assert r.exit_code != 0 and "root:" not in r.stdout, r


@CHECKS.add()
def check_hostile_the_harness_environment_is_not_passed(t: Trial) -> None:
    token = f"sk-planted-{uuid.uuid4().hex}"
    os.environ["AGENTBENCH_PLANTED_API_KEY"] = token
    try:
        r = t.sandbox.exec(["env"], 30)
    finally:
        del os.environ["AGENTBENCH_PLANTED_API_KEY"]
    assert r.exit_code == 0 and "PATH=" in r.stdout, r
    assert token not in r.stdout and "AGENTBENCH_PLANTED_API_KEY" not in r.stdout, r
    names = [line.split("=", 1)[0] for line in r.stdout.splitlines() if "=" in line]
    secret = [n for n in names if any(w in n.upper() for w in ("KEY", "TOKEN", "SECRET", "PASSWORD"))]
    assert not secret, f"secret-looking variables reach the sandbox: {secret}"


# A survivor that leaves the command's session (see asserts.BEATING).
_SURVIVORS = {
    "detached": f"setsid sh -c '{BEATING}' </dev/null >/dev/null 2>&1 &",
    "holding-stdout": f"setsid sh -c '{BEATING}' &",
}


def _survivor_gap(t: Trial) -> Gap | None:
    if t.kind != UNSAFE:
        return None
    reason = "unsafe-local: a setsid process leaves the command's process group and outlives it"
    # holding stdout, it also holds the command's output open for ~10 s: not run
    return Gap(reason, run=t.param != "holding-stdout")


@CHECKS.add(params=list(_SURVIVORS), gap=_survivor_gap)
def check_hostile_setsid_survivor_is_gone_when_the_command_ends(t: Trial) -> None:
    sandbox = t.sandbox
    r = sh(sandbox, _SURVIVORS[str(t.param)] + " sleep 0.5; echo started", timeout=20)
    assert (r.exit_code, r.stdout, r.timed_out) == (0, "started\n", False), r
    assert r.duration_s < 5, f"the command took {r.duration_s:.1f}s: it waited on its survivor"
    assert_stopped_beating(sandbox)
    assert_usable(sandbox)
