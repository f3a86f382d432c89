"""Collection: every ``packet.yaml`` becomes a module whose one test runs over the selected aliases.

A packet that does not load is a pytest *collection error* naming the file, the key and the fix,
not a failed test: it is the packet author's mistake, not a result of any model, so it must not
count against an alias in pass rates, JUnit or results.jsonl, and the run should go red before it
spends model time. The other packets are still collected; the message says how to run them
meanwhile (``--ignore=<packet folder>``, or ``--continue-on-collection-errors``).

(Under ``CI=true`` a run that would collect packets but selects no alias is a usage error,
raised before collection by ``options.py``: skipping every packet would exit 0, and a CI job
would pass having run nothing.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.packets.schema import PACKET_FILE, Packet, load_packet, packet_root_of
from pytest_agentbench.plugin.session import SESSION
from pytest_agentbench.plugin.shard import apply_shard
from pytest_agentbench.results.cells import BUILTIN_AGENT, TrialKey
from pytest_agentbench.scale.shards import ShardItem, packet_cost

if TYPE_CHECKING:
    from pytest_agentbench.models.registry import ModelSpec


@dataclass(frozen=True)
class Case:
    """One trial: a packet on an alias under an agent, the ``repeat``-th of ``--repeats`` (1-based)."""

    packet: Packet
    spec: ModelSpec
    repeat: int = 1
    agent: str = BUILTIN_AGENT  # the agent's registry name (--agent): the built-in loop or an external agent

    @property
    def trial(self) -> TrialKey:
        """(packet id, alias, agent, repeat): what ``--resume`` matches against finished records."""
        return (self.packet.id, self.spec.alias, self.agent, self.repeat)

    def shard_item(self) -> ShardItem:
        """This trial as ``--shard`` places it: its key and its expected cost (scale.shards)."""
        return ShardItem(self.packet.id, self.spec.alias, self.repeat, agent=self.agent, cost=packet_cost(self.packet))


def case_id(packet_id: str, alias: str, repeat: int, repeats: int, agent: str | None = None) -> str:
    """``<packet>-<alias>``, plus ``-<agent>`` when agents other than the built-in one are selected, plus
    ``-r<repeat>`` when the run has more than one repeat."""
    base = f"{packet_id}-{alias}" if agent is None else f"{packet_id}-{alias}-{agent}"
    return base if repeats == 1 else f"{base}-r{repeat}"


def _under(path: Path, roots: tuple[Path, ...] | list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect inside a packet (its workspace tests and hidden files are not ours).

    Below a ``--packets`` folder only ``packet.yaml`` files are collected, even in a
    packet still being written (no packet.yaml yet). (A path inside a packet given on the
    command line is a usage error with the fix, ``-p no:agentbench``: see ``options.py``.)
    """
    if collection_path.name == PACKET_FILE:
        return None
    root = packet_root_of(collection_path)
    if root is not None:
        return True
    state = config.stash.get(SESSION, None)
    if state is not None and collection_path.is_file() and _under(collection_path.resolve(), state.settings.packets):
        return True
    return None


def _explicit_args(config: pytest.Config) -> list[Path]:
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    here = config.invocation_params.dir
    return [(here / a.split("::")[0]).resolve() for a in config.args]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name != PACKET_FILE:
        return None
    config = parent.config
    roots = list(config.stash[SESSION].settings.packets) + _explicit_args(config)
    if not _under(file_path.resolve(), roots):
        return None
    return PacketModule.from_parent(parent, path=file_path)


class PacketModule(pytest.Module):
    """A ``packet.yaml`` collected as a test module whose one test is ``_suite.test_packet``."""

    packet: Packet

    def _getobj(self) -> Any:
        from pytest_agentbench.plugin import _suite

        return _suite

    def collect(self) -> Any:
        state = self.config.stash[SESSION]
        try:
            self.packet = load_packet(self.path, prompt_warn_bytes=state.settings.prompt_warn_bytes)
        except ConfigError as exc:
            raise self.CollectError(str(exc)) from None
        other = state.packet_ids.setdefault(self.packet.id, self.path)
        if other != self.path:
            raise self.CollectError(
                f"{self.path}: id: duplicate packet id {self.packet.id!r}, also used by "
                f"{other}; packet ids must be unique"
            )
        return super().collect()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        if isinstance(excinfo.value, self.CollectError):
            return f"{excinfo.value}\n{self._how_to_run_the_rest()}"
        return super().repr_failure(excinfo)

    def _how_to_run_the_rest(self) -> str:
        if self.config.option.continue_on_collection_errors:
            return "This packet is left out; the others run (--continue-on-collection-errors)."
        try:
            folder = self.path.parent.relative_to(self.config.invocation_params.dir)
        except ValueError:
            folder = self.path.parent
        return (
            "A broken packet stops the run before any model is called. To run the other packets meanwhile: "
            f"--ignore={folder} (or --continue-on-collection-errors); `agentbench validate` lists every "
            "packet's verdict."
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "agentbench_case" not in metafunc.fixturenames:
        return
    module = metafunc.definition.parent
    if not isinstance(module, PacketModule):
        return
    state = metafunc.config.stash[SESSION]
    packet = module.packet
    if not state.specs:
        known = ""
        if state.settings.models_file is not None:
            try:
                from pytest_agentbench.models.registry import load_models

                aliases = ", ".join(load_models(state.settings.models_file))
                known = f" (known in {state.settings.models_file}: {aliases})"
            except ConfigError:
                pass
        reason = f"no model alias selected: pass --models=ALIAS{known}"
        metafunc.parametrize(
            "agentbench_case", [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=[packet.id]
        )
        return
    # Alias order as selected, then agents as selected, then repeat 1..N: the same on every xdist worker.
    repeats, agents = state.settings.repeats, state.settings.agents
    named = agents != ("builtin",)
    cases = [Case(packet, spec, r, a) for spec in state.specs for a in agents for r in range(1, repeats + 1)]
    metafunc.parametrize(
        "agentbench_case",
        cases,
        ids=[case_id(packet.id, c.spec.alias, c.repeat, repeats, c.agent if named else None) for c in cases],
    )


def _shard_item(item: pytest.Item) -> ShardItem | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("agentbench_case") if callspec is not None else None
    return case.shard_item() if isinstance(case, Case) else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--shard: keep this shard's items (plugin.shard); then --resume: deselect trials that already have a record."""
    apply_shard(config, items, _shard_item)
    done = config.stash[SESSION].done
    if not done:
        return
    keep, skip = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("agentbench_case") if callspec is not None else None
        finished = isinstance(case, Case) and case.trial in done
        (skip if finished else keep).append(item)
    if skip:
        config.hook.pytest_deselected(items=skip)
        items[:] = keep
