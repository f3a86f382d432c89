"""Live progress in the terminal: a model server on its way up, and each run's turn, tokens and time.

The core reports :mod:`pytest_agentbench.events` to callbacks made here (:func:`track_run` for a run,
:meth:`Progress.server_progress` for a server start); this module owns what the terminal shows of them:

- in a terminal (the reporter's ``isatty``): one status line, redrawn in place twice a second after
  whatever pytest has on its current line (``bugfix-median-local-cpu: turn 3/30, 1.2k in / 340 out
  tokens, 45 s of 90 s``; several runs share the line in a short form). While progress is on, the
  reporter's writer is wrapped so that the status is erased (backspaces, never a cursor escape) before
  pytest writes anything: a letter, a report or a warning never lands inside it;
- elsewhere (CI logs, files): ``agentbench: ...`` lines - one when a server starts and one when it is
  up, then one per run in flight and per server still starting every ``--agentbench-progress-every``
  seconds (default 20);
- with ``-q`` or ``--agentbench-progress-every 0``: nothing, and the core gets no callback at all.

Across xdist workers: a worker's runs cannot reach the controller's terminal mid-test - xdist's execnet
channel carries only xdist's own events (the controller treats an unknown event name as an error) and
``workeroutput`` travels only when a worker shuts down. So each worker keeps its runs' state in one small
JSON file, ``<results folder>/progress/<worker>.json``, replaced atomically when it changed (at most four
times a second, and at once when a run ends), and a thread of the controller reads the folder twice a
second; the controller removes it at the end. Workers on another machine (``--tx ssh``) share no folder:
the controller then shows only its own servers, the runs stay silent as before. Server starts happen in
the process that owns the servers, which is the one with the terminal.

Progress must never break a run: a failure in this module's thread stops progress and is reported once
at the end of the session.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.events import OnRunProgress, RunProgress, ServerProgress
from pytest_agentbench.results.redact import Redactor

__all__ = ["PROGRESS", "Progress", "describe", "install_progress", "status_line", "track_run"]

_WORKER_DIR = "agentbench_progress_dir"  # workerinput key: the folder a worker writes its file to
_TTY_TICK_S = 0.5  # redraw and poll period on the controller
_WORKER_TICK_S = 0.25  # a worker's file is rewritten at most this often
_MIN_ROOM = 20  # columns the status needs next to pytest's line; with less it waits for a new line

Entry = dict[str, Any]  # plain JSON: what one run or server start shows (it travels in the worker files)


def _count(n: int) -> str:
    return f"{n}" if n < 1000 else f"{n / 1000:.1f}k" if n < 100_000 else f"{n / 1000:.0f}k"


def describe(entry: Entry, now: float, *, short: bool = False, here: Path | None = None) -> str:
    """The words for one entry at wall time ``now``; ``short`` for a line shared with other entries."""
    who = f"[{entry['worker']}] " if entry.get("worker") else ""
    label = entry["label"]
    if entry["kind"] == "server":
        elapsed = now - entry["since"]
        if short:
            return f"{who}starting {entry['engine']} for {label}: {elapsed:.0f} s"
        log = _shown_path(entry.get("log"), here)
        last = f": {entry['last']}" if entry.get("last") else ""
        return f"{who}starting {entry['engine']} for {label}: {elapsed:.0f} s, log {log}{last}"
    phase = entry["phase"]
    if phase == "setup":
        return f"{who}{label}: setting up the sandbox, {now - entry['since']:.0f} s"
    tokens = f"{_count(entry['tokens_in'])} in / {_count(entry['tokens_out'])} out tokens"
    if phase == "gates":
        if short:
            return f"{who}{label}: gates"
        return f"{who}{label}: gates, after {entry['turn']} turn(s) and {tokens}, {now - entry['since']:.0f} s"
    elapsed = now - entry["agent_since"]
    if short:
        return f"{who}{label}: turn {entry['turn']}/{entry['max_turns']}, {elapsed:.0f}/{entry['budget_s']:.0f} s"
    turn = f"turn {entry['turn']}/{entry['max_turns']}"
    return f"{who}{label}: {turn}, {tokens}, {elapsed:.0f} s of {entry['budget_s']:.0f} s"


def status_line(entries: list[Entry], now: float, width: int, here: Path | None = None) -> str:
    """One line for everything in flight, at most ``width`` columns ("" when nothing is)."""
    if not entries:
        return ""
    ordered = sorted(entries, key=lambda e: (e["kind"] != "server", e.get("worker") or "", e["label"]))
    line = describe(ordered[0], now, here=here) if len(ordered) == 1 else ""
    if not line:
        line = " | ".join(describe(e, now, short=True) for e in ordered)
    return line if len(line) <= width else line[: max(0, width - 3)] + "..."


def _shown_path(path: str | None, here: Path | None) -> str:
    if not path:
        return "(none)"
    if here is not None:
        try:
            return os.path.relpath(path, here)
        except ValueError:  # another drive (Windows)
            pass
    return path


class _Board:
    """What is in flight in this process: key -> entry, with a version that changes on every update."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self.version = 0

    def put(self, key: str, entry: Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self.version += 1

    def drop(self, key: str) -> None:
        with self._lock:
            if self._entries.pop(key, None) is not None:
                self.version += 1

    def snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())


def _write_entries(path: Path, entries: list[Entry]) -> None:
    """Replace ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(entries), encoding="utf-8")
    os.replace(tmp, path)


def _read_entries(folder: Path) -> list[Entry]:
    """Every worker's entries; a file being replaced or gone is skipped (it is read again next tick)."""
    entries: list[Entry] = []
    try:
        files = sorted(folder.glob("*.json"))
    except OSError:
        return entries
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entries.extend(e for e in data if isinstance(e, dict) and "kind" in e and "label" in e)
    return entries


class _Screen:
    """The terminal side: the status line in place (a terminal) or lines of their own (anything else).

    Without xdist the runs happen inside a test, where pytest captures file descriptor 1: what we write
    goes to a duplicate of the terminal's descriptor taken at configure time (capture is suspended then),
    or, when the reporter's file has no descriptor (pytester in-process, a StringIO), to that file, which
    capture cannot redirect either.
    """

    def __init__(self, config: pytest.Config, every_s: float, redactor: Redactor, fd: int | None) -> None:
        self.config = config
        self.every_s = every_s
        self.hide = redactor.text
        self.here = config.invocation_params.dir
        self.lock = threading.RLock()
        self.fd = fd  # ours to close
        self._drawn = 0  # columns of status on the screen now
        self._text = ""
        self._owed = ""  # pytest's line so far, to show again after a line of ours
        self._said: dict[str, float] = {}  # entry key -> wall time of its last line
        self._raw: Callable[..., None] | None = None  # the writer's own write_raw, once guarded
        self._tw: Any = None

    def _reporter(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    @property
    def tty(self) -> bool:
        isatty = getattr(self._reporter(), "isatty", False)
        return bool(isatty() if callable(isatty) else isatty)

    def _guard(self) -> Any:
        """The reporter's writer, wrapped once so that every write first erases the status."""
        if self._tw is None:
            tw = self.config.get_terminal_writer()
            write, write_raw = tw.write, tw.write_raw

            def guarded_write(msg: str, *, flush: bool = False, **markup: bool) -> None:
                with self.lock:
                    self._settle()
                    write(msg, flush=flush, **markup)

            def guarded_write_raw(msg: str, *, flush: bool = False) -> None:
                with self.lock:
                    self._settle()
                    write_raw(msg, flush=flush)

            tw.write, tw.write_raw = guarded_write, guarded_write_raw
            self._tw, self._raw = tw, write_raw
        return self._tw

    def _out(self, text: str) -> None:
        """Straight to the terminal, after what pytest has written so far."""
        assert self._raw is not None and self._tw is not None
        if self.fd is None:
            self._raw(text, flush=True)
            return
        self._tw.flush()
        data = text.encode(getattr(sys.stdout, "encoding", None) or "utf-8", "replace")
        while data:
            data = data[os.write(self.fd, data) :]

    def _settle(self) -> None:
        """Make the screen what pytest believes it is: no status, its line so far shown again after ours."""
        self._erase()
        if self._owed:
            owed, self._owed = self._owed, ""
            self._out(owed)

    def _erase(self) -> None:
        if self._drawn:
            n, self._drawn = self._drawn, 0
            self._out("\b" * n + " " * n + "\b" * n)

    def _line_so_far(self) -> str:
        """What pytest shows on its current line (after a "\\r" rewrite, only what follows it)."""
        return str(getattr(self._tw, "_current_line", "")).rsplit("\r", 1)[-1]

    def draw(self, entries: list[Entry], now: float) -> None:
        """Terminal: show ``entries`` on the status line after pytest's line (erase it when there are none)."""
        with self.lock:
            tw = self._guard()
            col = len(self._line_so_far())
            sep = "  " if col > 0 else ""
            room = tw.fullwidth - col - 1 - len(sep)
            text = self.hide(status_line(entries, now, room, self.here)) if room >= _MIN_ROOM else ""
            if text == self._text and self._drawn:
                return
            self._text = text
            if not text:
                self._erase()
                return
            if self._owed:
                self._settle()
            # Over the old status in one write: back to its start, the new one, blanks over what is left.
            drawn, self._drawn = self._drawn, len(sep) + len(text)
            pad = max(0, drawn - self._drawn)
            self._out("\b" * drawn + sep + tw.markup(text, cyan=True) + " " * pad + "\b" * pad)

    def periodic(self, entries: list[Entry], now: float) -> None:
        """Not a terminal: a line per server start at once, then per entry every ``every_s`` seconds."""
        keys = set()
        for entry in entries:
            key = f"{entry.get('worker')}:{entry['kind']}:{entry['label']}"
            keys.add(key)
            last = self._said.get(key)
            if last is None:  # a server start is said at once, a run once it has run for a period
                due = entry["kind"] == "server" or now - entry["since"] >= self.every_s
            else:
                due = now - last >= self.every_s
            if due:
                self._said[key] = now
                self.say(describe(entry, now, here=self.here))
        for gone in set(self._said) - keys:
            del self._said[gone]

    def say(self, text: str) -> None:
        """A line of its own, kept in the output; pytest's line so far is shown again below it, later."""
        with self.lock:
            self._guard()
            self._erase()
            so_far = self._line_so_far()
            newline = "\n" if so_far and not self._owed else ""  # owed: our last line ended it already
            self._out(newline + self.hide(f"agentbench: {text}") + "\n")
            self._owed = so_far  # shown again before pytest writes next, or the status is drawn

    def close(self) -> None:
        """Erase the status, give the writer its own methods back, close our descriptor."""
        with self.lock:
            if self._tw is not None:
                self._settle()
                for name in ("write", "write_raw"):
                    self._tw.__dict__.pop(name, None)
                self._tw = None
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


def _own_descriptor() -> int | None:
    """A duplicate of stdout's descriptor, which pytest's capture (it redirects descriptor 1) cannot move.

    Taken at configure time, when capture is suspended; stdout is the file the terminal reporter writes to.
    """
    try:
        return os.dup(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both OSError and ValueError
        return None


class Progress:
    """One per process with progress on, in ``config.stash[PROGRESS]`` and registered as a plugin.

    The terminal process (no xdist, or the controller) draws its own board and the workers' files; an
    xdist worker writes its board to its file.
    """

    def __init__(self, config: pytest.Config, every_s: float, redactor: Redactor, folder: Path | None) -> None:
        self.config = config
        self.board = _Board()
        self.folder = folder  # workers' files (controller: read them; worker: write one)
        self.worker: str | None = getattr(config, "workerinput", {}).get("workerid")
        self.screen = None if self.worker else _Screen(config, every_s, redactor, _own_descriptor())
        self.error: str | None = None
        self._stop = threading.Event()
        self._written = -1
        self._file_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="agentbench-progress", daemon=True)

    def start(self) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def _loop(self) -> None:
        period = _WORKER_TICK_S if self.worker else _TTY_TICK_S
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception as exc:  # never break the runs: stop showing progress, say so at the end
                self._give_up(exc)
                return

    def _give_up(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self._stop.set()
        if self.worker and self.folder is not None:  # a stale file would show its runs forever
            try:
                (self.folder / f"{self.worker}.json").unlink(missing_ok=True)
            except OSError:
                pass

    def tick(self) -> None:
        """One step: a worker writes its file if its board changed; the terminal process shows it all."""
        if self.worker:
            self._write_file()
            return
        entries = self.board.snapshot()
        if self.folder is not None:
            entries += _read_entries(self.folder)
        assert self.screen is not None
        if self.screen.tty:
            self.screen.draw(entries, time.time())
        else:
            self.screen.periodic(entries, time.time())

    def _write_file(self) -> None:
        with self._file_lock:  # the ticker and a run that ends share the file
            version = self.board.version
            if self.folder is None or version == self._written:
                return
            self._written = version
            _write_entries(self.folder / f"{self.worker}.json", self.board.snapshot())

    def run_ended(self, key: str) -> None:
        self.board.drop(key)
        if self.worker and self.error is None:
            try:
                self._write_file()  # at once: the controller must not show a run whose letter is out
            except OSError as exc:  # never the run's problem
                self._give_up(exc)

    def server_progress(self, alias: str, event: ServerProgress) -> None:
        """The owner of the servers hears of one (:class:`~pytest_agentbench.serving.endpoints.Endpoints`)."""
        key = f"server:{alias}"
        if event.state == "starting":
            since = time.time() - event.elapsed_s
            entry = {"kind": "server", "label": alias, "engine": event.engine, "since": since}
            self.board.put(key, entry | {"log": event.log_path, "last": event.last_line})
            return
        self.board.drop(key)
        if self.screen is not None and self.error is None:
            log = _shown_path(event.log_path, self.screen.here)
            what = "is up after" if event.state == "ready" else "did not start; it ran"
            try:
                self.screen.say(f"{event.engine} for {alias} {what} {event.elapsed_s:.0f} s (log {log})")
            except Exception as exc:  # never the server start's problem
                self._give_up(exc)

    def _stop_thread(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def stop(self) -> None:
        """The thread stopped, the status erased, the writer and the descriptor given back (idempotent)."""
        self._stop_thread()
        if self.screen is not None:
            self.screen.close()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.folder is not None:
            node.workerinput[_WORKER_DIR] = str(self.folder)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist says "node down"
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker that is gone (a crash included) has no run in flight: forget its file."""
        if self.folder is not None:
            try:
                (self.folder / f"{node.gateway.id}.json").unlink(missing_ok=True)
            except OSError:
                pass

    def pytest_sessionfinish(self) -> None:
        if self.worker:
            return
        self._stop_thread()
        if self.error is not None and self.screen is not None:
            self.screen.say(f"live progress stopped: {self.error}")
        self.stop()
        if self.folder is not None:
            for file in self.folder.glob("*.json"):
                file.unlink(missing_ok=True)
            try:
                self.folder.rmdir()
            except OSError:
                pass

    def pytest_unconfigure(self) -> None:
        self.stop()


PROGRESS = pytest.StashKey[Progress]()


def install_progress(config: pytest.Config, every_s: float, redactor: Redactor, results_dir: Path | None) -> None:
    """Turn progress on for this process, unless ``-q``, ``every_s == 0``, no terminal or --collect-only.

    An xdist worker writes to the folder the controller passed it, and only when it passed one.
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        if _WORKER_DIR not in workerinput:
            return
        folder: Path | None = Path(workerinput[_WORKER_DIR])
    else:
        if every_s <= 0 or config.get_verbosity() < 0 or config.option.collectonly:
            return
        if config.pluginmanager.is_blocked("terminal"):  # -p no:terminal (its reporter comes after us)
            return
        folder = None if results_dir is None or not _distributed(config) else results_dir / "progress"
    progress = Progress(config, every_s, redactor, folder)
    config.stash[PROGRESS] = progress
    config.pluginmanager.register(progress, "agentbench-progress")
    progress.start()


def _distributed(config: pytest.Config) -> bool:
    """Whether this controller hands tests to xdist workers (-n N, --dist ...)."""
    return bool(getattr(config.option, "numprocesses", None)) or getattr(config.option, "dist", "no") != "no"


@contextmanager
def track_run(config: pytest.Config, item: pytest.Item) -> Iterator[OnRunProgress | None]:
    """The callback for one run's :class:`~pytest_agentbench.events.RunProgress` (None: progress is off)."""
    progress = config.stash.get(PROGRESS, None)
    if progress is None:
        yield None
        return
    key = item.nodeid
    callspec = getattr(item, "callspec", None)
    base: Entry = {"kind": "run", "label": callspec.id if callspec else item.name, "worker": progress.worker}
    started = time.time()
    progress.board.put(key, base | {"phase": "setup", "since": started})

    def hear(event: RunProgress) -> None:
        progress.board.put(
            key,
            base
            | {
                "phase": event.phase,
                "since": started,
                "agent_since": time.time() - event.elapsed_s,
                "turn": event.turn,
                "max_turns": event.max_turns,
                "tokens_in": event.prompt_tokens,
                "tokens_out": event.completion_tokens,
                "budget_s": event.budget_s,
            },
        )

    try:
        yield hear
    finally:
        progress.run_ended(key)
