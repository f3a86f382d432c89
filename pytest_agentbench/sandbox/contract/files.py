"""The contract's file checks: round trips, and paths and symlinks confined to the workspace."""

from __future__ import annotations

from pathlib import Path

from pytest_agentbench.errors import SandboxError
from pytest_agentbench.sandbox.contract.asserts import assert_refused, raises, sh
from pytest_agentbench.sandbox.contract.trial import Checks, Trial

CHECKS = Checks()


@CHECKS.add()
def check_the_workspace_is_copied_in(t: Trial) -> None:
    assert t.sandbox.read_file("README.md") == b"# demo\n"
    assert t.sandbox.read_file("pkg/app.py") == (t.source / "pkg" / "app.py").read_bytes()


@CHECKS.add()
def check_writes_do_not_touch_the_source(t: Trial) -> None:
    t.sandbox.write_file("README.md", "changed")
    sh(t.sandbox, "echo more > pkg/new.py")
    assert (t.source / "README.md").read_text() == "# demo\n"
    assert not (t.source / "pkg" / "new.py").exists()


@CHECKS.add()
def check_text_round_trip(t: Trial) -> None:
    text = "héllo wörld ✓\n" * 100
    t.sandbox.write_file("notes/deep/t.txt", text)
    assert t.sandbox.read_file("notes/deep/t.txt") == text.encode()
    assert t.sandbox.exec(["cat", "notes/deep/t.txt"], 30).stdout == text


@CHECKS.add()
def check_bytes_round_trip(t: Trial) -> None:
    data = bytes(range(256)) * 1000 + b"\0\r\n"
    t.sandbox.write_file("bin/blob.dat", data)
    assert t.sandbox.read_file("bin/blob.dat") == data
    assert t.sandbox.exec(["wc", "-c", "bin/blob.dat"], 30).stdout.split()[0] == str(len(data))


@CHECKS.add()
def check_empty_file_round_trip(t: Trial) -> None:
    t.sandbox.write_file("empty", b"")
    assert t.sandbox.read_file("empty") == b""


@CHECKS.add()
def check_overwrite(t: Trial) -> None:
    t.sandbox.write_file("f.txt", "a long first version\n")
    t.sandbox.write_file("f.txt", "short\n")
    assert t.sandbox.read_file("f.txt") == b"short\n"


@CHECKS.add()
def check_read_what_a_command_wrote(t: Trial) -> None:
    sh(t.sandbox, "printf 'from\\000cmd' > made.bin")
    assert t.sandbox.read_file("made.bin") == b"from\0cmd"


@CHECKS.add()
def check_read_a_missing_file(t: Trial) -> None:
    with raises(FileNotFoundError):
        t.sandbox.read_file("nope/missing.txt")


@CHECKS.add()
def check_directories_are_not_files(t: Trial) -> None:
    assert_refused(t.sandbox, "pkg")


@CHECKS.add()
def check_symlink_inside_the_workspace_is_followed(t: Trial) -> None:
    assert t.sandbox.read_file("link_in") == b"# demo\n"


@CHECKS.add(params=["../x", "a/../../x", "/etc/passwd", "/workspace/README.md", "", "  "])
def check_paths_outside_the_workspace_are_refused(t: Trial) -> None:
    assert_refused(t.sandbox, str(t.param))


@CHECKS.add()
def check_dotdot_that_stays_inside_is_fine(t: Trial) -> None:
    t.sandbox.write_file("pkg/../inside.txt", "in")
    assert t.sandbox.read_file("inside.txt") == b"in"


@CHECKS.add()
def check_symlink_from_the_source_escaping_is_refused(t: Trial) -> None:
    assert_refused(t.sandbox, "link_out")


@CHECKS.add()
def check_symlink_made_by_a_command_escaping_is_refused(t: Trial) -> None:
    sandbox = t.sandbox
    assert sh(sandbox, "ln -s /etc esc_dir && ln -s /etc/passwd esc_file && ln -s /nowhere/x dangling").ok
    for path in ("esc_dir/passwd", "esc_file", "dangling"):
        with raises(SandboxError):
            sandbox.read_file(path)
    for path in ("esc_dir/agentbench-evil", "esc_file", "dangling"):
        with raises(SandboxError):
            sandbox.write_file(path, "x")
    assert not Path("/etc/agentbench-evil").exists()


@CHECKS.add(fresh=True)
def check_close_is_idempotent_and_final(t: Trial) -> None:
    sb = t.make()
    sb.close()
    sb.close()
    with raises(SandboxError):
        sb.exec(["true"], 10)
