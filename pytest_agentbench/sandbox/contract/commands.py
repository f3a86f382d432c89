"""The contract's command checks: the protocol, exit codes, stdin, cwd, git, timeouts, output caps."""

from __future__ import annotations

from pytest_agentbench.errors import PathRefused, SandboxError
from pytest_agentbench.sandbox.base import DEFAULT_OUTPUT_CAP, Sandbox
from pytest_agentbench.sandbox.contract.asserts import BEATING, assert_head_and_tail, assert_stopped_beating, raises, sh
from pytest_agentbench.sandbox.contract.trial import Checks, Trial

CHECKS = Checks()


@CHECKS.add()
def check_implements_the_protocol(t: Trial) -> None:
    assert isinstance(t.sandbox, Sandbox)
    assert t.sandbox.info.kind == t.kind


@CHECKS.add()
def check_exec_captures_stdout_stderr_and_exit_code(t: Trial) -> None:
    r = sh(t.sandbox, "echo out; echo err >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert not r.timed_out and not r.truncated and not r.ok
    assert r.output == "out\nerr\n"
    assert r.duration_s > 0


@CHECKS.add()
def check_exec_argv_is_not_a_shell_line(t: Trial) -> None:
    r = t.sandbox.exec(["echo", "a  b", "$HOME", "; false"], 30)
    assert (r.exit_code, r.stdout) == (0, "a  b $HOME ; false\n")


@CHECKS.add()
def check_exit_codes(t: Trial) -> None:
    sandbox = t.sandbox
    assert sandbox.exec(["true"], 30).exit_code == 0
    assert sandbox.exec(["false"], 30).exit_code == 1
    assert sh(sandbox, "exit 42").exit_code == 42
    assert sh(sandbox, "kill -KILL $$").exit_code == 137  # killed by a signal: 128 + n


@CHECKS.add()
def check_missing_command_is_127_not_an_error(t: Trial) -> None:
    r = t.sandbox.exec(["no-such-command-xyz"], 30)
    assert r.exit_code == 127
    assert "no-such-command-xyz" in r.stderr


@CHECKS.add()
def check_empty_argv_is_refused(t: Trial) -> None:
    with raises(SandboxError):
        t.sandbox.exec([], 30)


@CHECKS.add()
def check_stdin(t: Trial) -> None:
    text = "line one\nline two ünïcödé\n" * 1000
    r = t.sandbox.exec(["cat"], 30, stdin=text)
    assert (r.exit_code, r.stdout) == (0, text)


@CHECKS.add()
def check_no_stdin_reads_eof(t: Trial) -> None:
    r = t.sandbox.exec(["cat"], 10)
    assert (r.exit_code, r.stdout, r.timed_out) == (0, "", False)


@CHECKS.add()
def check_cwd_default_is_the_workspace_root(t: Trial) -> None:
    assert t.sandbox.exec(["ls"], 30).stdout.split() == ["README.md", "link_in", "link_out", "pkg"]


@CHECKS.add()
def check_cwd_below_the_workspace(t: Trial) -> None:
    r = t.sandbox.exec(["ls"], 30, cwd="pkg")
    assert r.stdout.split() == ["app.py"]
    assert t.sandbox.exec(["pwd"], 30, cwd="pkg/").stdout.rstrip().endswith("/pkg")


@CHECKS.add(params=["..", "../..", "/", "/etc", "pkg/../../"])
def check_cwd_outside_the_workspace_is_refused(t: Trial) -> None:
    with raises(PathRefused):
        t.sandbox.exec(["pwd"], 30, cwd=str(t.param))


@CHECKS.add()
def check_cwd_missing_or_escaping_through_a_symlink_is_refused(t: Trial) -> None:
    sandbox = t.sandbox
    with raises(PathRefused):
        sandbox.exec(["pwd"], 30, cwd="no/such/folder")
    assert sh(sandbox, "ln -s /etc etc_link").ok
    with raises(PathRefused):
        sandbox.exec(["pwd"], 30, cwd="etc_link")


@CHECKS.add()
def check_workspace_is_a_git_repo_with_one_commit(t: Trial) -> None:
    sandbox = t.sandbox
    log = sandbox.exec(["git", "log", "--oneline"], 30)
    assert log.exit_code == 0 and len(log.stdout.splitlines()) == 1, log
    assert sandbox.exec(["git", "status", "--porcelain"], 30).stdout == ""
    sandbox.write_file("pkg/app.py", "def add(a, b):\n    return a - b\n")
    diff = sandbox.exec(["git", "diff"], 30).stdout
    assert "-    return a + b" in diff and "+    return a - b" in diff


@CHECKS.add()
def check_timeout(t: Trial) -> None:
    r = t.sandbox.exec(["sleep", "100"], 1)
    assert (r.exit_code, r.timed_out, r.ok) == (124, True, False)
    assert 1 <= r.duration_s < 6


@CHECKS.add()
def check_exit_124_before_the_timeout_is_not_a_timeout(t: Trial) -> None:
    r = sh(t.sandbox, "exit 124")
    assert (r.exit_code, r.timed_out) == (124, False)


@CHECKS.add()
def check_output_before_the_timeout_is_kept(t: Trial) -> None:
    r = sh(t.sandbox, "echo before; sleep 100", timeout=1)
    assert r.timed_out and r.stdout == "before\n"


@CHECKS.add()
def check_background_child_does_not_outlive_the_command(t: Trial) -> None:
    r = sh(t.sandbox, f"({BEATING}) >/dev/null 2>&1 & sleep 0.5; echo $!")
    assert r.exit_code == 0 and int(r.stdout) > 0, r
    assert_stopped_beating(t.sandbox)


@CHECKS.add(fresh=True)
def check_output_at_the_cap_is_whole(t: Trial) -> None:
    sb = t.make(output_cap=1000)
    exact = sh(sb, "printf S; head -c 998 /dev/zero | tr '\\0' a; printf E")
    assert (exact.stdout, exact.truncated) == ("S" + "a" * 998 + "E", False)


@CHECKS.add(fresh=True)
def check_output_over_the_cap_keeps_head_and_tail(t: Trial) -> None:
    sb = t.make(output_cap=1000)
    r = sh(sb, "printf S; head -c 4999 /dev/zero | tr '\\0' b; printf E; printf s >&2; head -c 3000 /dev/zero >&2")
    assert r.truncated and r.exit_code == 0
    assert_head_and_tail(r.stdout, 1000, "S" + "b" * 499, "b" * 499 + "E", total=5001)
    assert_head_and_tail(r.stderr, 1000, "s" + "\0" * 499, "\0" * 500, total=3001)


@CHECKS.add()
def check_default_output_cap_is_per_stream(t: Trial) -> None:
    n = DEFAULT_OUTPUT_CAP + 10
    r = sh(t.sandbox, f"head -c {n} /dev/zero | tr '\\0' o; head -c {n} /dev/zero | tr '\\0' e >&2")
    assert r.truncated
    assert_head_and_tail(r.stdout, DEFAULT_OUTPUT_CAP, "ooo", "ooo", total=n)
    assert_head_and_tail(r.stderr, DEFAULT_OUTPUT_CAP, "eee", "eee", total=n)
