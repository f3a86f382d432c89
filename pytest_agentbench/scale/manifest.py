"""``shard.json``: which shard of which split a results folder holds. pytest-free.

A run with ``--shard K/N`` writes it into its results folder once collection has split the
trials (not for ``--collect-only``)::

    {"format": 1, "shard": "2/3", "index": 2, "count": 3, "digest": "9c1e...",
     "total_trials": 6, "aliases": ["a", "b"], "others": 0,
     "trials": [["bugfix-median", "a", "builtin", 2], ...]}

``digest`` fingerprints the whole split (every trial of every shard, their costs, N:
:func:`~pytest_agentbench.scale.shards.plan_digest`), so ``agentbench merge`` can tell folders of
one split from folders of another, name a shard none of its folders holds ("shard 2/3 missing"),
and name the trials a shard was given but has no record of. Under xdist every worker writes the
same content (the split is deterministic); the file is replaced atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import ConfigError, UsageError
from pytest_agentbench.scale.shards import Shard, TrialKey

__all__ = ["MANIFEST_FORMAT", "SHARD_FILE", "ShardManifest", "check_results_folder", "read_manifest", "write_manifest"]

SHARD_FILE = "shard.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class ShardManifest:
    """What one shard's results folder was given to run."""

    shard: Shard
    digest: str  # the whole split's fingerprint: equal in every shard of one split
    total_trials: int  # trials over all N shards
    trials: tuple[TrialKey, ...]  # this shard's trials, sorted
    aliases: tuple[str, ...] = ()  # the run's aliases, in the order selected (the report's column order)
    others: int = 0  # this shard's items that are not trials (a user's own tests)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "shard": str(self.shard),
            "index": self.shard.index,
            "count": self.shard.count,
            "digest": self.digest,
            "total_trials": self.total_trials,
            "aliases": list(self.aliases),
            "others": self.others,
            "trials": [list(t) for t in self.trials],
        }


def _dumps(data: dict[str, Any]) -> str:
    """Indented JSON with one trial per line (readable, and a diff of two shards' files is a diff of trials)."""
    head = {k: v for k, v in data.items() if k != "trials"}
    trials = ",\n".join(f"  {json.dumps(t)}" for t in data["trials"])
    body = json.dumps(head, indent=1)[:-2]
    return f'{body},\n "trials": [\n{trials}\n ]\n}}\n' if trials else f'{body},\n "trials": []\n}}\n'


def write_manifest(folder: Path | str, manifest: ShardManifest) -> Path:
    """``folder/shard.json`` (folder created), replaced atomically; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SHARD_FILE
    tmp = folder / f".{SHARD_FILE}.{os.getpid()}.tmp"
    tmp.write_text(_dumps(manifest.as_json()), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _trial(raw: Any) -> TrialKey:
    packet, alias, agent, repeat = raw
    if not (isinstance(repeat, int) and all(isinstance(x, str) for x in (packet, alias, agent))):
        raise ValueError(raw)
    return (packet, alias, agent, repeat)


def read_manifest(folder: Path | str) -> ShardManifest | None:
    """The manifest of a results folder; ``None`` where it has none (an unsharded run).

    A file that is there but unreadable is a :class:`ConfigError` naming it and the fix.
    """
    path = Path(folder) / SHARD_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {MANIFEST_FORMAT}")
        shard = Shard(int(raw["index"]), int(raw["count"]))
        if not 1 <= shard.index <= shard.count:
            raise ValueError(f"shard {shard} is not K/N with 1 <= K <= N")
        return ShardManifest(
            shard=shard,
            digest=str(raw["digest"]),
            total_trials=int(raw["total_trials"]),
            trials=tuple(sorted(_trial(t) for t in raw["trials"])),
            aliases=tuple(str(a) for a in raw.get("aliases", ())),
            others=int(raw.get("others", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{path}: not a readable shard manifest ({type(exc).__name__}: {exc}); it is written by "
            "`pytest --shard K/N`: rerun that shard, or delete the file to treat the folder as an unsharded run"
        ) from None


def check_results_folder(folder: Path, shard: Shard, where: str) -> None:
    """Refuse to write shard ``shard`` into a folder that holds another shard's results (:class:`UsageError`).

    The same shard again (a retried job, ``--resume``) is fine: merge keeps the newest complete record.
    """
    try:
        found = read_manifest(folder)
    except ConfigError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if found is not None and found.shard != shard:
        raise UsageError(
            f"{where}: {folder} holds the results of shard {found.shard}, not {shard}; give every shard its own "
            f"folder (e.g. --agentbench-results results/{shard.suffix}), then `agentbench merge` them"
        )
