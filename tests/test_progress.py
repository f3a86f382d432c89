"""Live progress: the events of the core, the status line in a terminal, lines elsewhere, across xdist."""

from __future__ import annotations

import io
import re
import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest

from pytest_agentbench.errors import ServerStartError
from pytest_agentbench.events import ServerProgress
from pytest_agentbench.plugin import progress as progress_module
from pytest_agentbench.plugin.progress import describe, status_line
from pytest_agentbench.results.redact import Redactor
from pytest_agentbench.serving.vllm.process import VLLMServer

from .conftest import BUGFIX, importorskip_extra
from .fake_vllm import fake_spec

pytest_plugins = ["pytester"]

#: Each turn answers after a pause, so that a run stays in flight for about two seconds.
SLOW_SCRIPT = """\
conversations:
  - responses:
      - {delay_s: 0.5, tool_calls: [{name: list_files, arguments: {}}]}
      - {delay_s: 0.5, tool_calls: [{name: list_files, arguments: {}}]}
      - {delay_s: 0.5, tool_calls: [{name: list_files, arguments: {}}]}
      - {delay_s: 0.5, tool_calls: [{name: finish, arguments: {summary: done}}]}
"""
RUN_LINE = re.compile(r"agentbench: (\[gw\d\] )?(tiny-[ab]): turn (\d+)/\d+, \S+ in / \S+ out tokens, \d+ s of \d+ s")


TINY_PACKET = """\
id: tiny
kind: bug-fix
title: Leave a done.txt behind
prompt: Create the file done.txt.
workspace: repo/
limits: {max_turns: 10, timeout_s: 60, max_output_tokens: 256}
gates:
  - {id: made, run: test -f done.txt, timeout_s: 10}
"""


@pytest.fixture
def slow_folder(pytester: pytest.Pytester) -> Path:
    """A one-gate packet, two aliases on a scripted server (a test double) that answers each turn after 0.5 s."""
    (pytester.path / "packets" / "tiny" / "repo").mkdir(parents=True)
    (pytester.path / "packets" / "tiny" / "repo" / "README.md").write_text("tiny\n")
    (pytester.path / "packets" / "tiny" / "packet.yaml").write_text(TINY_PACKET)
    (pytester.path / "slow.yaml").write_text(SLOW_SCRIPT)
    (pytester.path / "fast.yaml").write_text(SLOW_SCRIPT.replace("delay_s: 0.5", "delay_s: 0"))
    (pytester.path / "models.yaml").write_text(
        "models:\n"
        "  a: {model: slow-a, serve: {engine: scripted, script: slow.yaml}}\n"
        "  b: {model: slow-b, serve: {engine: scripted, script: slow.yaml}}\n"
        "  fast: {model: fast, serve: {engine: scripted, script: fast.yaml}}\n"
    )
    return pytester.path


RUN_ARGS = ("--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "--agentbench-progress-every", "0.4")


# --------------------------------------------------------------------------- the words


def run_entry(**kw: object) -> dict[str, object]:
    entry: dict[str, object] = {"kind": "run", "label": "bugfix-median-local-cpu", "worker": None, "since": 100.0}
    entry |= {"phase": "agent", "agent_since": 101.0, "turn": 3, "max_turns": 30, "budget_s": 90.0}
    return entry | {"tokens_in": 1234, "tokens_out": 56} | kw


def test_a_run_says_turn_tokens_and_elapsed_against_its_budget() -> None:
    assert describe(run_entry(), 146.2) == "bugfix-median-local-cpu: turn 3/30, 1.2k in / 56 out tokens, 45 s of 90 s"
    assert describe(run_entry(worker="gw1"), 146.2).startswith("[gw1] bugfix-median-local-cpu: turn 3/30")
    assert describe(run_entry(phase="setup"), 102.0) == "bugfix-median-local-cpu: setting up the sandbox, 2 s"
    gates = describe(run_entry(phase="gates", turn=7), 150.0)
    assert gates == "bugfix-median-local-cpu: gates, after 7 turn(s) and 1.2k in / 56 out tokens, 50 s"


def test_a_server_start_says_elapsed_log_and_last_line(tmp_path: Path) -> None:
    log = tmp_path / ".agentbench" / "logs" / "vllm-x.log"
    entry = {"kind": "server", "label": "local-cpu", "engine": "vLLM", "since": 10.0, "log": str(log)}
    entry["last"] = "INFO Loading weights took 3.1 s"
    got = describe(entry, 55.4, here=tmp_path)
    assert got == "starting vLLM for local-cpu: 45 s, log .agentbench/logs/vllm-x.log: INFO Loading weights took 3.1 s"


def test_several_runs_share_one_line_that_fits_the_width() -> None:
    entries = [run_entry(worker=f"gw{i}", label=f"packet-{i}-local-cpu") for i in range(4)]
    line = status_line(entries, 146.0, 200)
    assert line.count(" | ") == 3 and "[gw0] packet-0-local-cpu: turn 3/30, 45/90 s" in line
    assert len(status_line(entries, 146.0, 60)) == 60 and status_line(entries, 146.0, 60).endswith("...")
    assert status_line([], 146.0, 60) == ""


# --------------------------------------------------------------------------- the terminal path, forced


@pytest.fixture
def tty_reporter(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[pytest.Config, io.StringIO]:
    """A terminal reporter on a StringIO that says it is a terminal (as pytest's own test_rewrite does)."""
    from _pytest.terminal import TerminalReporter

    config = pytester.parseconfigure()
    out = io.StringIO()
    monkeypatch.setattr(out, "isatty", lambda: True)
    reporter = TerminalReporter(config, out)
    reporter._tw.fullwidth = 120
    config.pluginmanager.unregister(name="terminalreporter")
    config.pluginmanager.register(reporter, "terminalreporter")
    return config, out


def test_terminal_status_is_one_line_updated_in_place_and_erased_before_pytest_writes(
    tty_reporter: tuple[pytest.Config, io.StringIO],
) -> None:
    config, out = tty_reporter
    screen = progress_module._Screen(config, 20.0, Redactor(["s3cret-token"]), fd=None)
    assert screen.tty
    tw = config.get_terminal_writer()
    tw.write("packets/bugfix/packet.yaml ")
    screen.draw([run_entry()], 146.2)
    first = "  bugfix-median-local-cpu: turn 3/30, 1.2k in / 56 out tokens, 45 s of 90 s"
    assert out.getvalue() == "packets/bugfix/packet.yaml " + first
    screen.draw([run_entry()], 146.3)  # the same words: nothing written
    assert out.getvalue().endswith(first)
    screen.draw([run_entry(turn=4)], 147.2)  # over the old status, in place
    assert out.getvalue().endswith("\b" * len(first) + first.replace("turn 3/30", "turn 4/30").replace("45 s", "46 s"))
    tw.write("F")  # pytest's letter: the status goes first, so the letter lands after the path
    n = len(first)
    assert out.getvalue().endswith("\b" * n + " " * n + "\b" * n + "F")
    assert "\n" not in out.getvalue()
    assert tw.width_of_current_line == len("packets/bugfix/packet.yaml F")  # pytest's count is still true
    screen.draw([run_entry(label="s3cret-token")], 147.2)  # every word passes the session's redactor
    assert "s3cret-token" not in out.getvalue() and "***" in out.getvalue()
    screen.close()
    assert "write" not in tw.__dict__  # the writer has its own methods back


def test_terminal_status_uses_markup_where_the_writer_has_it(tty_reporter: tuple[pytest.Config, io.StringIO]) -> None:
    config, out = tty_reporter
    config.get_terminal_writer().hasmarkup = True
    screen = progress_module._Screen(config, 20.0, Redactor(), fd=None)
    screen.draw([run_entry()], 146.2)
    assert "\x1b[36mbugfix-median-local-cpu: turn 3/30" in out.getvalue()
    screen.close()


def test_a_line_of_its_own_shows_pytests_line_again_when_pytest_writes_next(
    tty_reporter: tuple[pytest.Config, io.StringIO],
) -> None:
    config, out = tty_reporter
    screen = progress_module._Screen(config, 20.0, Redactor(), fd=None)
    tw = config.get_terminal_writer()
    tw.write("packets/bugfix/packet.yaml ")
    screen.say("vLLM for local-cpu is up after 62 s (log x.log)")
    screen.say("second")
    tw.write("F")
    assert out.getvalue() == (
        "packets/bugfix/packet.yaml \nagentbench: vLLM for local-cpu is up after 62 s (log x.log)\n"
        "agentbench: second\npackets/bugfix/packet.yaml F"
    )
    screen.close()


def test_pytester_run_in_a_forced_terminal_draws_the_status_line(pytester: pytest.Pytester, slow_folder: Path) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            reporter = config.pluginmanager.getplugin("terminalreporter")
            reporter.isatty = lambda: True  # as if stdout were a terminal
            reporter._tw.hasmarkup = True
        """
    )
    result = pytester.runpytest("--models=a", *RUN_ARGS)
    out = result.stdout.str()
    result.assert_outcomes(failed=1)  # the scripted run leaves no done.txt: the gate misses
    drawn = re.findall(r"\x1b\[36m(tiny-a: turn (\d+)/10, [^\x1b]*)\x1b\[0m", out)
    assert len({turn for _, turn in drawn}) >= 3, out  # updated as the turns go
    assert "agentbench: tiny-a" not in out  # in place, no lines of their own
    # What a terminal shows once the backspaces are applied: pytest's line as if no status had been there.
    assert re.search(r"^packets/tiny/packet\.yaml F +\[100%\]$", shown(out), re.MULTILINE), shown(out)


def shown(output: str) -> str:
    """``output`` as a terminal displays it: markup dropped, backspaces and carriage returns applied."""
    lines: list[str] = []
    for raw in re.sub(r"\x1b\[[0-9;]*m", "", output).split("\n"):
        cells: list[str] = []
        col = 0
        for ch in raw:
            if ch in "\b\r":
                col = 0 if ch == "\r" else max(0, col - 1)
                continue
            cells.extend(" " * (col + 1 - len(cells)))
            cells[col] = ch
            col += 1
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


# --------------------------------------------------------------------------- xdist, -q


def test_under_xdist_the_controller_prints_workers_progress_while_runs_are_in_flight(
    pytester: pytest.Pytester, slow_folder: Path
) -> None:
    importorskip_extra("xdist", "xdist")
    result = pytester.runpytest_subprocess("--models=a,b", "-n", "2", "--agentbench-results", "res", *RUN_ARGS)
    result.assert_outcomes(failed=2)
    lines = result.stdout.lines
    progress = [(i, RUN_LINE.search(line)) for i, line in enumerate(lines) if RUN_LINE.search(line)]
    assert progress, result.stdout.str()
    assert {m.group(1) for _, m in progress} <= {"[gw0] ", "[gw1] "}  # from the workers, via their files
    assert {m.group(2) for _, m in progress} == {"tiny-a", "tiny-b"}  # both runs at once
    assert max(int(m.group(3)) for _, m in progress) >= 2  # updated mid-run, not only at its start
    done = next(i for i, line in enumerate(lines) if "[100%]" in line)
    assert progress[0][0] < done  # while the runs were in flight, before their results
    assert not (slow_folder / "res" / "progress").exists()  # the controller cleaned up


def test_a_worker_that_crashes_mid_run_leaves_no_run_shown_in_flight(
    pytester: pytest.Pytester, slow_folder: Path
) -> None:
    importorskip_extra("xdist", "xdist")
    pytester.makeconftest(
        """
        import os, pathlib, time

        def pytest_agentbench_make_sandbox(packet, settings):
            marker = pathlib.Path("crashed-once")
            if not marker.exists():  # the first run: its worker dies while it sets up
                marker.touch()
                time.sleep(1.5)
                os._exit(1)
            return None  # the others: the default sandbox
        """
    )
    result = pytester.runpytest_subprocess("--models=a,b", "-n", "1", "--agentbench-results", "res", *RUN_ARGS)
    result.assert_outcomes(passed=0, failed=2)  # the crash counts as a failure; the other run misses its gate
    out = result.stdout.str()
    crashed = re.search(r"worker 'gw0' crashed while running '.*test_packet\[(tiny-[ab])\]'", out)
    assert crashed is not None, out
    label, lines = crashed.group(1), result.stdout.lines
    down = next(i for i, line in enumerate(lines) if line.startswith("[gw0] node down"))
    before = [line for line in lines[:down] if line.startswith(f"agentbench: [gw0] {label}: setting up the sandbox")]
    after = [line for line in lines[down + 1 :] if line.startswith("agentbench: [gw0] ")]
    others = [line for line in lines[down + 1 :] if line.startswith("agentbench: [gw1] tiny-")]
    assert before and others and not after, out  # shown while it ran, forgotten once its worker was down


def test_quiet_runs_show_no_progress_and_hand_the_core_no_callback(
    pytester: pytest.Pytester, slow_folder: Path
) -> None:
    importorskip_extra("xdist", "xdist")
    result = pytester.runpytest_subprocess("--models=a,b", "-n", "2", "-q", "--agentbench-results", "res", *RUN_ARGS)
    result.assert_outcomes(failed=2)
    assert not RUN_LINE.search(result.stdout.str()) and "agentbench: [gw" not in result.stdout.str()
    assert not (slow_folder / "res" / "progress").exists()  # the workers were told nothing to write


def test_progress_every_zero_turns_it_off(pytester: pytest.Pytester, slow_folder: Path) -> None:
    result = pytester.runpytest("--models=a", *RUN_ARGS[:-1], "0")
    result.assert_outcomes(failed=1)
    assert "agentbench: tiny-a" not in result.stdout.str()
    bad = pytester.runpytest("--models=a", *RUN_ARGS[:-2], "-o", "agentbench_progress_every=soon")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*ini agentbench_progress_every: expected seconds >= 0 (0: no live progress)*'soon'*"])


def test_a_broken_progress_never_breaks_the_run(
    pytester: pytest.Pytester, slow_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kw: object) -> str:
        raise RuntimeError("progress is broken")

    monkeypatch.setattr(progress_module, "describe", broken)
    result = pytester.runpytest("--models=a", *RUN_ARGS)
    result.assert_outcomes(failed=1)  # graded as usual
    result.stdout.fnmatch_lines(["agentbench: live progress stopped: RuntimeError: progress is broken"])


# --------------------------------------------------------------------------- a server on its way up


def fake_vllm_models(folder: Path, fake_vllm: Path, mode: str = "serve", ready_after: float = 1.5) -> None:
    (folder / "fake-model").mkdir()
    env = f"{{PYTHONPATH: '{fake_vllm}', FAKE_VLLM_MODE: {mode}, FAKE_VLLM_READY_AFTER: '{ready_after}'}}"
    (folder / "models.yaml").write_text(
        "models:\n  fake-cpu:\n    model: fake\n"
        f"    serve: {{engine: vllm, model_path: fake-model, python: '{sys.executable}', startup_timeout_s: 20, "
        f"env: {env}}}\n"
    )
    shutil.copytree(BUGFIX, folder / "packets" / "bugfix-median")


def test_a_starting_server_says_so_with_its_log_and_last_line(pytester: pytest.Pytester, fake_vllm: Path) -> None:
    fake_vllm_models(pytester.path, fake_vllm)
    result = pytester.runpytest("--models=fake-cpu", *RUN_ARGS)
    result.stdout.fnmatch_lines(
        [
            "agentbench: starting vLLM for fake-cpu: * s, log .agentbench/logs/vllm-fake-*.log: fake vllm: *",
            "agentbench: vLLM for fake-cpu is up after * s (log .agentbench/logs/vllm-fake-*.log)",
        ]
    )
    quiet = pytester.runpytest("--models=fake-cpu", "-q", *RUN_ARGS)
    assert "starting vLLM" not in quiet.stdout.str() and "is up after" not in quiet.stdout.str()


def test_a_server_that_dies_on_start_says_so(pytester: pytest.Pytester, fake_vllm: Path) -> None:
    fake_vllm_models(pytester.path, fake_vllm, mode="exit")
    result = pytester.runpytest("--models=fake-cpu", *RUN_ARGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["agentbench: vLLM for fake-cpu did not start; it ran * s (log *)"])


def test_vllm_server_reports_each_poll_then_ready(fake_vllm: Path, tmp_path: Path) -> None:
    events: list[ServerProgress] = []
    spec = fake_spec(fake_vllm, tmp_path, "serve", env={"FAKE_VLLM_READY_AFTER": "0.6"})
    with VLLMServer(spec, poll_interval_s=0.05, on_progress=events.append) as server:
        assert server.log_path is not None
    states = [e.state for e in events]
    assert states[-1] == "ready" and states.count("ready") == 1 and states.count("starting") >= 3
    assert all(e.log_path == str(server.log_path) and e.engine == "vLLM" and e.timeout_s == 20 for e in events)
    assert [e.elapsed_s for e in events] == sorted(e.elapsed_s for e in events)
    assert events[-1].last_line.startswith("fake vllm: child pid")  # the log's last line, as it grows


def test_a_hanging_server_reports_failed_and_its_last_line_never_shows_a_secret(
    fake_vllm: Path, tmp_path: Path
) -> None:
    secret = f"sk-vllm-{uuid.uuid4().hex[:12]}"
    events: list[ServerProgress] = []
    # The fake echoes its argv, --api-key SECRET included, then hangs: that line stays the last one.
    spec = fake_spec(fake_vllm, tmp_path, "hang", extra_args={"api_key": secret}, startup_timeout_s=5.0)
    server = VLLMServer(spec, poll_interval_s=0.05, redactor=Redactor([secret]), on_progress=events.append)
    with pytest.raises(ServerStartError):
        server.start()
    assert events[-1].state == "failed" and [e.state for e in events[:-1]] == ["starting"] * (len(events) - 1)
    assert "fake vllm: mode=hang" in events[-1].last_line and "***" in events[-1].last_line
    assert all(secret not in e.last_line for e in events)


def test_last_log_line_skips_blanks_and_splits_progress_bars(tmp_path: Path) -> None:
    from pytest_agentbench.serving.vllm.process import _last_line

    log = tmp_path / "a.log"
    assert _last_line(log) == ""  # no file yet
    log.write_text("first\nLoading: 10%\rLoading: 60%\r\n\n  \n")
    assert _last_line(log) == "Loading: 60%"
    log.write_text("x" * 10_000 + "\nlast one\n")
    assert _last_line(log) == "last one"


def test_worker_files_round_trip_and_a_torn_file_is_skipped(tmp_path: Path) -> None:
    entries = [run_entry(worker="gw0")]
    progress_module._write_entries(tmp_path / "gw0.json", entries)
    (tmp_path / "gw1.json").write_text('[{"kind": "run", "lab')  # a reader racing a writer
    assert progress_module._read_entries(tmp_path) == entries
    assert progress_module._read_entries(tmp_path / "missing") == []
    assert not list(tmp_path.glob(".*.tmp"))  # replaced atomically, nothing left over


def test_the_runs_callback_hears_every_turn_and_the_gates(tmp_path: Path) -> None:
    """run_packet hands the agent's turns and the gates' start to on_progress (core, no pytest run)."""
    import yaml

    from pytest_agentbench.models.adapter import ModelAdapter
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.packets.schema import load_packet
    from pytest_agentbench.runner import run_packet
    from pytest_agentbench.sandbox import make_sandbox
    from pytest_agentbench.serving.scripted import ScriptedServer

    packet = load_packet(BUGFIX / "packet.yaml")
    spec = ModelSpec(alias="s", model="s", source=tmp_path / "models.yaml")
    heard: list[object] = []
    with ScriptedServer(yaml.safe_load(SLOW_SCRIPT.replace("0.5", "0"))) as server:
        model = ModelAdapter(spec, base_url=server.base_url)
        start = time.monotonic()
        record = run_packet(packet, spec, model, lambda p: make_sandbox("local", p.workspace), on_progress=heard.append)
        model.close()
    assert [(e.phase, e.turn) for e in heard] == [("agent", 1), ("agent", 2), ("agent", 3), ("agent", 4), ("gates", 4)]
    assert heard[1].prompt_tokens > 0 and heard[-1].prompt_tokens >= heard[1].prompt_tokens  # tokens so far
    assert all(e.budget_s == packet.limits.timeout_s and e.max_turns == packet.limits.max_turns for e in heard)
    assert heard[-1].elapsed_s <= time.monotonic() - start and record.agent.outcome == "finished"


# --------------------------------------------------------------------------- what appears unasked


def test_pytest_benchmark_table_appears_only_when_benchmark_output_is_asked_for(
    pytester: pytest.Pytester, slow_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    importorskip_extra("pytest_benchmark", "benchmark")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when this suite itself runs under xdist
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    args = ["--models=fast", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider"]
    table = ["*benchmark: 1 tests*", "*Name (time in *", "*test_packet[[]tiny-fast[]]*", "Legend:"]

    unasked = pytester.runpytest(*args, "--agentbench-results", "quiet")
    unasked.assert_outcomes(failed=1)
    assert "Legend:" not in unasked.stdout.str() and "Name (time in" not in unasked.stdout.str()
    assert (slow_folder / "quiet" / "benchmark.json").is_file()  # our benchmark JSON is written all the same
    unasked.stdout.fnmatch_lines(["written: *quiet/benchmark.json"])

    asked = pytester.runpytest(*args, "--benchmark-columns=min,max", "--agentbench-results", "asked")
    asked.assert_outcomes(failed=1)
    asked.stdout.fnmatch_lines(table)
    assert (slow_folder / "asked" / "benchmark.json").is_file()

    monkeypatch.setenv("PYTEST_ADDOPTS", "--benchmark-json=bench.json")
    env_asked = pytester.runpytest(*args)
    env_asked.stdout.fnmatch_lines(table)
    assert '"tiny-fast"' in (slow_folder / "bench.json").read_text()  # pytest-benchmark's own export
