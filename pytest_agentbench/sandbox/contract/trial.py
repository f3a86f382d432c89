"""What a contract check is, what it runs on, and what came of it.

A :class:`Check` is a named function of a :class:`Trial` that raises
``AssertionError`` when the backend breaks the contract; the trial carries the
backend's kind, its sandbox factory (:data:`SandboxFactory`), the workspace
every sandbox starts from (:func:`make_workspace`) and the check's parameter,
and closes every sandbox it made. A backend's known limitation is a
:class:`Gap` (expected not to hold, and perhaps not run at all);
:func:`run_check` runs one check and reports an :class:`Outcome`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_agentbench.sandbox.base import Sandbox

#: ``factory(workspace, **options)``: a new sandbox holding a copy of ``workspace``.
#: The checks pass one option, ``output_cap`` (bytes kept per stream).
SandboxFactory = Callable[..., Sandbox]


@dataclass(frozen=True)
class Gap:
    """A known limitation of a backend: the check is expected not to hold there."""

    reason: str
    run: bool = True  # False: running the check would harm the host, so it is not run


class Trial:
    """One check against one backend: the sandboxes it makes, all closed by :meth:`close`."""

    def __init__(self, kind: str, factory: SandboxFactory, source: Path, param: str | None = None) -> None:
        self.kind = kind  # what ``sandbox.info.kind`` must say, e.g. "local"
        self.factory = factory
        self.source = source  # the workspace every sandbox starts from (see make_workspace)
        self.param = param  # the check's parameter, for a check with ``params``
        self._default: Sandbox | None = None
        self._made: list[Sandbox] = []

    @property
    def sandbox(self) -> Sandbox:
        """The trial's sandbox with default options, made on first use."""
        if self._default is None:
            self._default = self.make()
        return self._default

    def make(self, **options: object) -> Sandbox:
        """A new sandbox of the workspace with ``options`` (e.g. ``output_cap=1000``)."""
        sb = self.factory(self.source, **options)
        self._made.append(sb)
        return sb

    def close(self) -> None:
        for sb in self._made:
            sb.close()


@dataclass(frozen=True)
class Check:
    """One clause of the contract; ``run`` raises ``AssertionError`` if the sandbox breaks it."""

    name: str
    run: Callable[[Trial], None]
    params: tuple[str, ...] = ()  # run once per parameter (``trial.param``)
    fresh: bool = False  # makes its own sandboxes (``trial.make``) instead of using ``trial.sandbox``
    gap: Callable[[Trial], Gap | None] | None = None

    def gap_for(self, trial: Trial) -> Gap | None:
        """The backend's known gap for this check, or None where it is expected to hold."""
        return self.gap(trial) if self.gap is not None else None


class Checks(list[Check]):
    """Checks in the order they were added; ``@checks.add()`` above ``check_NAME`` adds it as ``NAME``."""

    def add(
        self, *, params: Sequence[str] = (), fresh: bool = False, gap: Callable[[Trial], Gap | None] | None = None
    ) -> Callable[[Callable[[Trial], None]], Callable[[Trial], None]]:
        def register(fn: Callable[[Trial], None]) -> Callable[[Trial], None]:
            name = fn.__name__.removeprefix("check_")
            self.append(Check(name, fn, tuple(params), fresh, gap))
            return fn

        return register


@dataclass(frozen=True)
class Outcome:
    """What one check did on one backend."""

    name: str  # the check, with its parameter: "cwd_outside_the_workspace_is_refused[..]"
    held: bool | None  # None: not run (a gap whose check would harm the host)
    expected: bool  # False where the backend has a known gap
    detail: str = ""  # why it failed, or the gap's reason

    @property
    def as_expected(self) -> bool:
        return self.held is None or self.held == self.expected


def run_check(check: Check, kind: str, factory: SandboxFactory, source: Path, param: str | None = None) -> Outcome:
    """Run one check (with ``param`` if it has params) on sandboxes from ``factory``; never raises for a failure."""
    name = check.name if param is None else f"{check.name}[{param}]"
    trial = Trial(kind, factory, source, param)
    gap: Gap | None = None
    try:
        gap = check.gap_for(trial)
        if gap is not None and not gap.run:
            return Outcome(name, None, False, gap.reason)
        check.run(trial)
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__} at {where.name}:{where.lineno}: {where.line or ''} {exc}".rstrip()
        return Outcome(name, False, gap is None, detail)
    finally:
        trial.close()
    return Outcome(name, True, gap is None, gap.reason if gap is not None else "")


def make_workspace(folder: Path) -> Path:
    """The workspace the checks expect, as ``folder/src``: a README, a package, two symlinks."""
    src = folder / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "README.md").write_text("# demo\n")
    (src / "pkg" / "app.py").write_text("def add(a, b):\n    return a + b\n")
    (src / "link_in").symlink_to("README.md")
    (src / "link_out").symlink_to("/etc/hostname")
    return src
