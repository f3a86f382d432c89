"""The agent's patch: taken in every backend, from a hostile workspace, never crashing the run.

Each backend (unsafe-local, local on bubblewrap, docker) is given the same workspace and the same
"agent" commands (run through ``exec``, as the agent's tools run them); the patch must show the
change against the packet as given, new and deleted files included and binaries marked, must apply
to the original with ``git apply``, and must not be steered by anything the agent left in ``.git``
or ``.gitattributes``. Faults of the sandbox itself (a timeout, a dead container, junk output, no
python3) are played by a small stand-in that implements the Sandbox protocol.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import SandboxError
from pytest_agentbench.sandbox import base
from pytest_agentbench.sandbox import patch as patch_mod
from pytest_agentbench.sandbox.base import ExecResult, SandboxInfo
from pytest_agentbench.sandbox.bwrap import bwrap_status
from pytest_agentbench.sandbox.patch import Patch, cut_patch, take_patch

Factory = Callable[[Path], Any]

KINDS = [
    "unsafe-local",
    pytest.param("local", marks=pytest.mark.skipif(not bwrap_status()[0], reason="bubblewrap cannot run here")),
    pytest.param("docker", marks=pytest.mark.docker),
]


@pytest.fixture(params=KINDS)
def make(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """A factory of sandboxes of one backend; every sandbox made is closed at the end."""
    made: list[Any] = []

    def factory(src: Path) -> Any:
        if request.param == "docker":
            from pytest_agentbench.sandbox.docker import DockerSandbox

            request.getfixturevalue("docker_engine")
            sb = DockerSandbox(src)
        elif request.param == "local":
            from pytest_agentbench.sandbox.local import LocalSandbox

            sb = LocalSandbox(src)
        else:
            from pytest_agentbench.sandbox.unsafe_local import UnsafeLocalSandbox

            sb = UnsafeLocalSandbox(src)
        made.append(sb)
        return sb

    factory.kind = request.param  # type: ignore[attr-defined]
    yield factory
    for sb in made:
        sb.close()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """The packet's workspace as given."""
    root = tmp_path / "given"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "core.py").write_text("def f():\n    return 1\n")
    (root / "old.txt").write_text("to be deleted\n")
    (root / "keep.txt").write_text("unchanged\n")
    return root


def sh(sb: Any, script: str) -> ExecResult:
    res = sb.exec(["sh", "-c", script], 60)
    assert res.exit_code == 0, res.output
    return res


def applies_to(original: Path, diff: str, tmp: Path) -> Path:
    """Copy ``original``, apply ``diff`` with git apply; the copy."""
    copy = tmp / "applied"
    shutil.copytree(original, copy)
    done = subprocess.run(["git", "apply", "-"], cwd=copy, input=diff.encode(), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return copy


def listing(sb: Any) -> str:
    return sb.exec(["sh", "-c", "find . -path ./.git -prune -o -print | sort"], 30).stdout


# --------------------------------------------------------------------------- the patch in every backend


def test_the_patch_shows_the_change_and_applies_to_the_original(make: Factory, src: Path, tmp_path: Path) -> None:
    sb = make(src)
    sb.write_file("pkg/core.py", "def f():\n    return 2\n")
    sb.write_file("pkg/new_module.py", "X = 1\n")  # new, untracked
    sb.write_file("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    sh(sb, "rm old.txt && git add -A && git commit -qm 'agent commit'")  # the agent's own commit changes nothing
    p = take_patch(sb, src)
    assert p.error is None, p.error
    files = {f["path"]: f for f in p.files}
    assert set(files) == {"pkg/core.py", "pkg/new_module.py", "logo.png", "old.txt"}
    assert files["old.txt"]["status"] == "deleted" and files["pkg/new_module.py"]["status"] == "added"
    assert files["pkg/core.py"] == {
        "path": "pkg/core.py",
        "status": "modified",
        "added": 1,
        "deleted": 1,
        "binary": False,
    }
    assert p.binary == ["logo.png"] and "Binary files /dev/null and b/logo.png differ" in p.diff
    assert "+    return 2" in p.diff and "-    return 1" in p.diff and not p.truncated
    assert p.bytes == len(p.diff.encode()) and len(p.sha256 or "") == 64
    text = applies_to(src, p.diff.replace("Binary files /dev/null and b/logo.png differ\n", ""), tmp_path)
    assert (text / "pkg" / "core.py").read_text() == "def f():\n    return 2\n" and not (text / "old.txt").exists()
    assert ".agentbench-patch" not in listing(sb)


def test_no_change_is_an_empty_patch(make: Factory, src: Path) -> None:
    p = take_patch(make(src), src)
    assert p.error is None and p.diff == "" and p.files == [] and p.bytes == 0


def test_what_the_agent_left_in_git_decides_nothing(make: Factory, src: Path) -> None:
    """Config that runs commands (fsmonitor, hooks, external diff, pager), attributes that hide or
    convert text, a rewritten history: the patch is the same, and nothing of the agent's ran."""
    sb = make(src)
    sb.write_file("pkg/core.py", "def f():\n    return 3\n")
    sh(  # the agent's own git work first, then config that would run commands in any later git
        sb,
        "mkdir -p hooks && printf '#!/bin/sh\\ntouch owned-hook\\n' > hooks/pre-commit && chmod +x hooks/pre-commit"
        " && printf '*.py -diff\\n*.txt filter=evil text eol=crlf\\n' > .gitattributes && git add -A"
        " && git commit -qm x && git checkout -q --orphan other && git rm -rfq --cached . && echo rewritten > keep.txt"
        " && git config core.fsmonitor 'touch /tmp/owned-fsmonitor; touch owned-fsmonitor; echo'"
        " && git config diff.external 'sh -c \"touch owned-ext\"' && git config core.pager 'touch owned-pager'"
        " && git config core.hooksPath hooks && git config filter.evil.clean 'touch owned-filter; cat'"
        " && git config alias.diff '!touch owned-alias'",
    )
    before = listing(sb)
    p = take_patch(sb, src)
    assert p.error is None, p.error
    assert "+    return 3" in p.diff  # text despite `*.py -diff`
    assert "-unchanged\n+rewritten" in p.diff and "\r" not in p.diff  # no eol conversion, no filter
    assert not any(f["binary"] for f in p.files)
    assert listing(sb) == before and "owned" not in before
    assert sb.exec(["test", "-e", "/tmp/owned-fsmonitor"], 10).exit_code != 0


@pytest.mark.parametrize(
    "damage",
    [
        "rm -rf .git",
        "rm -rf .git && echo 'gitdir: /nowhere' > .git",
        "rm -rf .git && ln -s / .git",
        "echo junk > .git/HEAD",
    ],
    ids=["deleted", "a-file", "a-link-to-root", "corrupt"],
)
def test_a_broken_or_missing_git_does_not_matter(make: Factory, src: Path, damage: str) -> None:
    sb = make(src)
    sb.write_file("pkg/core.py", "def f():\n    return 4\n")
    sh(sb, damage)
    p = take_patch(sb, src)
    assert p.error is None, p.error
    assert [f["path"] for f in p.files] == ["pkg/core.py"] and "+    return 4" in p.diff


def test_huge_special_and_unreadable_files_are_listed_not_read(
    make: Factory, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(patch_mod, "MAX_FILE_BYTES", 100_000)
    sb = make(src)
    sh(sb, "head -c 300000 /dev/zero > huge.bin && mkfifo pipe && echo secret > closed.txt && chmod 000 closed.txt")
    sh(
        sb,
        "printf 'x\\n' > small.txt && mkdir -p build && head -c 300000 /dev/zero > build/out.bin"
        " && echo build/ > .gitignore",
    )
    p = take_patch(sb, src)
    assert p.error is None, p.error
    skipped = {s["path"]: s["why"] for s in p.skipped}
    assert "300000 bytes, over the 100000-byte limit" in skipped["huge.bin"]
    assert "not a regular file" in skipped["pipe"]
    assert "build/out.bin" not in skipped  # ignored: git would not read it anyway
    if os.geteuid() != 0 or make.kind != "unsafe-local":  # type: ignore[attr-defined]
        assert skipped["closed.txt"] == "not readable"  # root on the host reads everything
    assert {f["path"] for f in p.files} >= {"small.txt", ".gitignore"} and "huge.bin" not in p.diff


def test_a_patch_over_the_record_cap_is_cut_after_a_whole_file(
    make: Factory, src: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(patch_mod, "KEEP_BYTES", 3000)
    monkeypatch.setattr(patch_mod, "INLINE_BYTES", 1000)  # through the hand-over file
    sb = make(src)
    for i in range(6):
        sb.write_file(f"f{i}.txt", "".join(f"line {i} {n}\n" for n in range(60)))
    p = take_patch(sb, src)
    assert p.error is None, p.error
    assert p.truncated and p.bytes > 3000 and len(p.diff.encode()) <= 3000 and p.whole is not None
    assert len(p.whole) == p.bytes and p.whole.decode().startswith(p.diff)
    assert p.diff.endswith("line 0 59\n") or p.diff.count("diff --git") == p.kept_files
    assert f"(the first {p.kept_files} of 6 files)" in p.note() and "not written" in p.note()
    applies_to(src, p.diff, tmp_path)  # the head still applies
    assert ".agentbench-patch" not in listing(sb)


def test_a_read_only_workspace_still_gives_the_head(make: Factory, src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0 and make.kind == "unsafe-local":  # type: ignore[attr-defined]
        pytest.skip("root writes into a read-only folder on the host")
    monkeypatch.setattr(patch_mod, "INLINE_BYTES", 500)
    sb = make(src)
    sb.write_file("big.txt", "y\n" * 2000)
    sh(sb, "chmod 555 .")
    p = take_patch(sb, src)
    sh(sb, "chmod 755 .")
    assert p.error is None and p.truncated and p.diff.startswith("diff --git a/big.txt")
    assert any("refused the hand-over file" in w for w in p.warnings)


# --------------------------------------------------------------------------- faults of the sandbox


class FakeSandbox:
    """The Sandbox protocol with scripted answers to exec (or an exception)."""

    info = SandboxInfo(kind="fake", isolation="none")

    def __init__(self, answer: ExecResult | Exception) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []

    def exec(self, argv: Any, timeout: float, *, cwd: str = ".", stdin: str | None = None) -> ExecResult:
        self.calls.append(list(argv))
        if argv[0] == "rm":
            return ExecResult(0, "", "", 0.0)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def write_file(self, path: str, content: str | bytes) -> None:
        raise AssertionError("the patch never writes into the workspace")

    def read_file(self, path: str) -> bytes:
        raise SandboxError("the container is gone")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (ExecResult(124, "", "", 120.0, timed_out=True), "ran past 120 s"),
        (ExecResult(127, "", "python3: command not found", 0.1), "python3 is not on the sandbox's PATH"),
        (ExecResult(0, "hello\n", "", 0.1), "gave no report (it printed none; exit 0)"),
        (
            ExecResult(3, patch_mod._patch_script.MARKER + '{"ok": false, "error": "git add failed"}\n', "", 0.1),
            "git add failed",
        ),
        (ExecResult(0, patch_mod._patch_script.MARKER + "{not json\n", "", 0.1), "not JSON"),
        (
            ExecResult(0, patch_mod._patch_script.MARKER + '{"ok": true, "bytes": 5, "written": 5}\n', "", 0.1),
            "container is gone",
        ),
        (SandboxError("docker sandbox: exec failed"), "exec failed"),
    ],
    ids=["timeout", "no-python", "junk", "script-error", "bad-json", "read-fails", "exec-raises"],
)
def test_a_failing_sandbox_gives_an_error_not_a_crash(src: Path, answer: Any, said: str) -> None:
    fake = FakeSandbox(answer)
    p = take_patch(fake, src)
    assert isinstance(p, Patch) and p.diff == "" and p.error is not None and said in p.error
    assert p.to_dict()["note"] == f"no patch: {p.error}" and p.to_dict()["error"] == p.error


def test_a_small_output_cap_is_met_by_asking_again(src: Path) -> None:
    from pytest_agentbench.sandbox.unsafe_local import UnsafeLocalSandbox

    with UnsafeLocalSandbox(src, output_cap=4096) as sb:
        sb.write_file("mid.txt", "z\n" * 6000)  # a 12 KB diff: inline it would overflow a 4 KB cap
        p = take_patch(sb, src)
    assert p.error is None and p.files[0]["path"] == "mid.txt" and p.bytes > 12000


def test_the_script_keeps_its_deadline_and_never_prints_a_traceback(tmp_path: Path, capsys: Any) -> None:
    import time

    from pytest_agentbench.sandbox import _patch_script as script

    with pytest.raises(script.Failed, match="ran out of time before git status"):
        script.Git(str(tmp_path), str(tmp_path), time.monotonic() - 1)("status")
    assert script.main(["-c", "{not json"]) == 3
    out = capsys.readouterr().out
    assert out.strip().startswith(script.MARKER) and '"ok": false' in out and "Traceback" not in out


def test_the_baseline_is_the_packet_not_a_missing_folder(tmp_path: Path) -> None:
    fake = FakeSandbox(ExecResult(0, "", "", 0.0))
    p = take_patch(fake, tmp_path / "nope")
    assert p.error and "baseline" in p.error and fake.calls == []


def test_cut_patch_keeps_whole_files_or_whole_lines() -> None:
    a = b"diff --git a/a b/a\n+1\n+2\n"
    b = b"diff --git a/b b/b\n+3\n"
    assert cut_patch(a + b, 1000) == (a + b, 2)
    assert cut_patch(a + b, len(a) + 5) == (a, 1)
    assert cut_patch(a, 21) == (b"diff --git a/a b/a\n", 0)
    assert cut_patch(b"x" * 50, 10) == (b"x" * 10, 0)
    assert base.DEFAULT_OUTPUT_CAP > patch_mod.INLINE_BYTES * 4 // 3  # inline patches fit the default cap


# --------------------------------------------------------------------------- in the runner


def test_the_runner_takes_the_patch_before_the_hidden_files(tmp_path: Path) -> None:
    """The scripted fix of bugfix-median: the patch holds the fix only (the gate's hidden test was copied
    in later), and the original plus the patch passes that hidden test."""
    import sys

    from .conftest import BUGFIX
    from .test_results import real_records

    good, _ = real_records()
    assert good.passed and good.patch is not None and good.patch.error is None
    assert [f["path"] for f in good.patch.files] == ["stats/core.py"]
    applied = applies_to(BUGFIX / "repo", good.patch.diff, tmp_path)
    shutil.copy(BUGFIX / "hidden" / "test_median_even.py", applied / "tests" / "test_median_hidden.py")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=applied, capture_output=True
    )
    assert done.returncode == 0, done.stdout.decode()


def test_a_run_that_never_got_an_answer_has_no_patch(src: Path) -> None:
    from pytest_agentbench.errors import ModelCallError
    from pytest_agentbench.results.record import record_to_dict
    from pytest_agentbench.runner import run_packet
    from pytest_agentbench.sandbox.unsafe_local import UnsafeLocalSandbox

    from .test_results import make_spec, packet

    class Unreachable:
        def complete(self, *args: Any, **kwargs: Any) -> Any:
            raise ModelCallError("connection_error", "connection refused")

        def close(self) -> None:
            pass

    record = run_packet(packet(), make_spec("dead"), Unreachable(), lambda p: UnsafeLocalSandbox(p.workspace))
    assert record.agent.outcome == "infrastructure" and record.patch is None
    assert record_to_dict(record)["patch"] is None
