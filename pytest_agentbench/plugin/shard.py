"""``--shard K/N`` on the collected items: keep this shard's, report the others as deselected, write shard.json.

The split itself is pytest-free (:mod:`pytest_agentbench.scale.shards`); this is the skin. It runs
first among the ``pytest_collection_modifyitems`` hooks (``collection.py`` calls it before ``--resume``
and before pytest's ``-k``/``-m``), so a shard is a function of what was collected, never of what a
filter or a resumed folder left: ``--resume`` of a shard resumes the same shard, and ``-k`` narrows a
shard without moving trials between shards.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_agentbench.plugin.session import SESSION
from pytest_agentbench.scale.manifest import ShardManifest, write_manifest
from pytest_agentbench.scale.shards import ShardItem, TrialKey, assign, node_shard, plan_digest

__all__ = ["apply_shard"]


def apply_shard(
    config: pytest.Config, items: list[pytest.Item], trial_of: Callable[[pytest.Item], ShardItem | None]
) -> None:
    """Deselect every item of another shard; ``trial_of`` says which items are trials (the rest: by node id)."""
    state = config.stash[SESSION]
    shard = state.settings.shard
    if shard is None:
        return
    pairs = [(item, trial_of(item)) for item in items]
    trials = [t for _, t in pairs if t is not None]
    plan = assign(trials, shard.count)
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    mine: set[TrialKey] = set()
    others = 0
    for item, trial in pairs:
        k = plan[trial.key] if trial is not None else node_shard(item.nodeid, shard.count)
        if k != shard.index:
            drop.append(item)
            continue
        keep.append(item)
        if trial is not None:
            mine.add(trial.key)
        else:
            others += 1
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if config.option.collectonly or state.results_dir is None:
        return
    manifest = ShardManifest(
        shard=shard,
        digest=plan_digest(trials, shard.count),
        total_trials=len(plan),
        trials=tuple(sorted(mine)),
        aliases=tuple(spec.alias for spec in state.specs),
        others=others,
    )
    write_manifest(state.results_dir, manifest)
