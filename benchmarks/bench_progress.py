"""What live progress costs a run: the same run with progress off, drawing a terminal's status line, and
writing an xdist worker's progress file (issue 12: under 5 % of a run's wall time against an instant server).

A run is :func:`~pytest_agentbench.runner.run_packet` on a one-gate packet in a local (bubblewrap) sandbox
against the scripted server of ``conftest.py`` in another process, which answers at once with a ``run
true`` tool call: 30 turns (the packet's budget), each a model call and a sandboxed command, then the gate.
That is the densest stream of progress events a run makes. The terminal is a StringIO that says it is one
(nothing reaches the screen); the worker writes real files. Run:

    .venv/bin/pytest benchmarks/bench_progress.py -p no:xdist --benchmark-columns=min,median,mean,max,rounds

``test_progress_overhead`` alternates runs with and without progress and asserts the median of the paired
ratios; it also times the pieces (one callback, one tick) and bounds the overhead from them, which does
not depend on the machine's noise.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_agentbench.events import RunProgress
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.schema import Packet, load_packet
from pytest_agentbench.plugin.progress import PROGRESS, Progress, track_run
from pytest_agentbench.results.redact import Redactor
from pytest_agentbench.runner import run_packet
from pytest_agentbench.sandbox import make_sandbox

pytest_plugins = ["pytester"]

MODES = ("off", "terminal", "worker")
ROUNDS = 12
PAIRS = 12
TARGET = 0.05

PACKET = """\
id: bench-progress
kind: bug-fix
title: Leave a done.txt behind
prompt: Create the file done.txt.
workspace: repo/
limits: {max_turns: 30, timeout_s: 600, max_output_tokens: 256}
gates:
  - {id: made, run: test -f done.txt, timeout_s: 10}
"""


@pytest.fixture(scope="module")
def packet(tmp_path_factory: pytest.TempPathFactory) -> Packet:
    root = tmp_path_factory.mktemp("packet")
    (root / "repo").mkdir()
    (root / "repo" / "README.md").write_text("bench\n")
    (root / "packet.yaml").write_text(PACKET)
    return load_packet(root)


def progress_of(mode: str, pytester: pytest.Pytester, folder: Path) -> Progress:
    """A Progress as the plugin makes it: a terminal's (drawing into a StringIO) or an xdist worker's."""
    from _pytest.terminal import TerminalReporter

    config = pytester.parseconfigure("-p", "no:agentbench")
    if mode == "worker":
        config.workerinput = {"workerid": "gw0"}  # type: ignore[attr-defined]
        progress = Progress(config, 20.0, Redactor(), folder)
    else:
        screen_file = io.StringIO()
        screen_file.isatty = lambda: True  # type: ignore[method-assign]
        config.pluginmanager.unregister(name="terminalreporter")
        config.pluginmanager.register(TerminalReporter(config, screen_file), "terminalreporter")
        progress = Progress(config, 20.0, Redactor(), None)
        assert progress.screen is not None
        progress.screen.fd = None  # into the StringIO, not our own stdout
    config.stash[PROGRESS] = progress
    return progress


@pytest.fixture
def runner(
    instant_server: str, packet: Packet, pytester: pytest.Pytester, tmp_path: Path
) -> Iterator[Callable[[str], float]]:
    """``run(mode)`` -> the wall time of one run with progress ``mode``."""
    spec = ModelSpec(alias="bench", model="scripted", source=Path("bench"))
    progresses = {mode: progress_of(mode, pytester, tmp_path / "progress") for mode in MODES[1:]}
    (tmp_path / "progress").mkdir()
    for progress in progresses.values():
        progress.start()
    item = SimpleNamespace(nodeid="bench::test_packet[bench-progress-bench]", name="test_packet")

    def run(mode: str) -> float:
        tracking: AbstractContextManager[Any] = (
            nullcontext(None) if mode == "off" else track_run(progresses[mode].config, item)  # type: ignore[arg-type]
        )
        model = ModelAdapter(spec, base_url=instant_server)
        start = time.perf_counter()
        with tracking as on_progress:
            record = run_packet(
                packet, spec, model, lambda p: make_sandbox("local", p.workspace), on_progress=on_progress
            )
        wall = time.perf_counter() - start
        model.close()
        assert record.agent.outcome == "max_turns" and len(record.agent.turns) == 30
        return wall

    yield run
    for progress in progresses.values():
        progress.stop()


@pytest.mark.parametrize("mode", MODES)
def test_run_with_progress(benchmark: Any, runner: Callable[[str], float], mode: str) -> None:
    runner(mode)  # warm: the sandbox, the connection pool
    benchmark.pedantic(runner, args=(mode,), rounds=ROUNDS, iterations=1)


def _cost_per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def test_progress_overhead(benchmark: Any, runner: Callable[[str], float], pytester: pytest.Pytester) -> None:
    """Progress adds < 5 % to a run: bounded from its pieces always; measured on alternating runs (off /
    terminal / worker, order rotated, median paired ratio) where the machine is quiet enough to tell."""
    for mode in MODES:
        runner(mode)

    def compare() -> dict[str, float]:
        walls: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(PAIRS):
            for mode in MODES[i % 3 :] + MODES[: i % 3]:
                walls[mode].append(runner(mode))
        off = walls["off"]
        q1, _, q3 = statistics.quantiles(off, n=4)
        figures = {"run_median_s": statistics.median(off), "run_noise": (q3 - q1) / statistics.median(off)}
        for m in MODES[1:]:
            figures[f"{m}_overhead"] = statistics.median(w / o - 1 for w, o in zip(walls[m], off, strict=True))
        return figures

    figures = benchmark.pedantic(compare, rounds=1, iterations=1)
    figures |= _piece_costs(pytester, figures["run_median_s"])
    benchmark.extra_info.update(figures)
    print("\nprogress overhead:", ", ".join(f"{k}={v:.3g}" for k, v in figures.items()))
    assert figures["bound"] < TARGET, figures
    if figures["run_noise"] >= TARGET:  # the runs' own spread (IQR / median) hides a 5 % difference
        print(
            f"runs vary by {figures['run_noise']:.0%} on this machine (load: {os.getloadavg()[0]:.1f}): "
            "the paired comparison cannot resolve 5 %; the bound above stands"
        )
        return
    assert figures["terminal_overhead"] < TARGET and figures["worker_overhead"] < TARGET, figures


def _piece_costs(pytester: pytest.Pytester, run_s: float) -> dict[str, float]:
    """The overhead bounded from its pieces: 31 callbacks a run, and a tick every 0.25 s of the run."""
    folder = pytester.path / "pieces"
    folder.mkdir()
    item = SimpleNamespace(nodeid="bench::x", name="x")
    event = RunProgress("agent", 3, 30, 1234, 56, 1.0, 600.0)
    costs: dict[str, float] = {}
    for mode in MODES[1:]:
        progress = progress_of(mode, pytester, folder)
        with track_run(progress.config, item) as hear:  # type: ignore[arg-type]
            assert hear is not None
            costs[f"{mode}_callback_s"] = _cost_per_call(lambda: hear(event), 20_000)
            costs[f"{mode}_tick_s"] = _cost_per_call(lambda p=progress: _changed_tick(p), 500)
        progress.stop()
    per_run = max(31 * costs[f"{m}_callback_s"] + run_s / 0.25 * costs[f"{m}_tick_s"] for m in MODES[1:])
    return costs | {"bound": per_run / run_s}


def _changed_tick(progress: Progress) -> None:
    """One tick that has work to do: a worker's board changed (a file write), the terminal's words too."""
    if progress.worker:
        progress.board.put("bump", {"kind": "run", "label": "x"})
    else:
        assert progress.screen is not None
        progress.screen._text = ""  # a redraw, as when a second has passed
    progress.tick()
