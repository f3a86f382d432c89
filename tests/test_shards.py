"""--shard K/N: a stable, cost-balanced split of the trials; the union of the shards is the unsharded run."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_agentbench.errors import UsageError
from pytest_agentbench.scale.manifest import SHARD_FILE, read_manifest
from pytest_agentbench.scale.shards import (
    Shard,
    ShardItem,
    assign,
    node_shard,
    parse_shard,
    plan_digest,
    shard_loads,
)

from .conftest import REPO

pytest_plugins = ["pytester"]

TWIN = "bugfix-twin"


def _items(packets: int = 5, aliases: int = 4, agents: int = 3, repeats: int = 10, costs=None) -> list[ShardItem]:
    costs = costs or [600.0] * packets
    return [
        ShardItem(f"p{p}", f"alias{a}", r, agent=f"agent{g}", cost=costs[p])
        for p in range(packets)
        for a in range(aliases)
        for g in range(agents)
        for r in range(1, repeats + 1)
    ]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3 / 3 ", Shard(3, 3))])
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize("text", ["0/3", "4/3", "x", "3", "1/0", "", "-1/3", "1/3/4", "1.5/3"])
def test_bad_shard_names_the_option_and_the_fix(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_shard(text, "--shard")
    message = str(err.value)
    assert message.startswith("--shard: ") and repr(text) in message and "e.g. --shard 2/3" in message


# --------------------------------------------------------------------------- the split


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16])
def test_every_trial_in_exactly_one_shard(count: int) -> None:
    items = _items(packets=3, aliases=2, agents=2, repeats=3)
    plan = assign(items, count)
    assert set(plan) == {it.key for it in items}  # the union is the whole run
    assert all(1 <= k <= count for k in plan.values())  # one shard each: no overlap by construction
    shards = [{key for key, k in plan.items() if k == index} for index in range(1, count + 1)]
    assert sum(len(s) for s in shards) == len(items)


def test_split_ignores_collection_order() -> None:
    items = _items(packets=4, aliases=3, agents=2, repeats=5, costs=[600.0, 300.0, 900.0, 120.0])
    plan = assign(items, 4)
    for seed in range(5):
        shuffled = items[:]
        random.Random(seed).shuffle(shuffled)
        assert assign(shuffled, 4) == plan
        assert plan_digest(shuffled, 4) == plan_digest(items, 4)


def test_adding_or_removing_an_alias_moves_no_other_alias_trials() -> None:
    base = _items(packets=5, aliases=3, agents=2, repeats=4, costs=[600.0, 300.0, 900.0, 120.0, 450.0])
    plan = assign(base, 4)
    more = base + [ShardItem(f"p{p}", "new-alias", r, cost=100.0 * (p + 1)) for p in range(5) for r in (1, 2, 3, 4)]
    grown = assign(more, 4)
    assert {k: grown[k] for k in plan} == plan
    fewer = [it for it in base if it.alias != "alias1"]
    shrunk = assign(fewer, 4)
    assert shrunk == {k: v for k, v in plan.items() if k[1] != "alias1"}


def test_budgets_balance_within_each_group_by_one_trial() -> None:
    costs = [600.0, 300.0, 900.0, 120.0, 450.0]
    items = _items(costs=costs)
    for count in (4, 16):
        plan = assign(items, count)
        groups: dict[tuple[str, str], list[float]] = {}
        for it in items:
            loads = groups.setdefault((it.alias, it.agent), [0.0] * count)
            loads[plan[it.key] - 1] += it.cost
        for loads in groups.values():
            assert max(loads) - min(loads) <= max(costs)
        total = shard_loads(items, count)
        assert sum(total) == pytest.approx(sum(it.cost for it in items))
        assert max(total) / (sum(total) / count) < 1.10  # the 600-run example: within 10% of the mean


def test_equal_costs_split_evenly_in_count() -> None:
    items = _items(packets=1, aliases=2, agents=1, repeats=3)  # the acceptance case: 6 trials, 3 shards
    plan = assign(items, 3)
    assert sorted(list(plan.values()).count(k) for k in (1, 2, 3)) == [2, 2, 2]
    for alias in ("alias0", "alias1"):
        assert sorted(k for key, k in plan.items() if key[1] == alias) == [1, 2, 3]


def test_expensive_packets_spread_before_cheap_ones() -> None:
    items = [ShardItem("long", "a", r, cost=1000.0) for r in (1, 2)] + [
        ShardItem("short", "a", r, cost=10.0) for r in range(1, 11)
    ]
    plan = assign(items, 2)
    assert plan[("long", "a", "builtin", 1)] != plan[("long", "a", "builtin", 2)]
    loads = shard_loads(items, 2)
    assert max(loads) - min(loads) <= 10.0


def test_split_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "import json; from pytest_agentbench.scale.shards import ShardItem, assign\n"
        "items = [ShardItem(f'p{p}', f'a{a}', r, cost=60.0 * (p + 1)) for p in range(4) for a in range(3) "
        "for r in range(1, 4)]\n"
        "print(json.dumps(sorted((list(k), v) for k, v in assign(items, 5).items())))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
        ).stdout
        for seed in ("1", "987")
    ]
    assert runs[0] == runs[1] and json.loads(runs[0])


def test_digest_changes_with_the_trials_their_costs_and_n() -> None:
    items = _items(packets=2, aliases=2, agents=1, repeats=2)
    digest = plan_digest(items, 3)
    assert plan_digest(items, 4) != digest
    assert plan_digest(items[1:], 3) != digest
    cheaper = [ShardItem(it.packet, it.alias, it.repeat, cost=it.cost / 2) for it in items]
    assert plan_digest(cheaper, 3) != digest


def test_items_that_are_not_trials_hash_by_node_id() -> None:
    ids = [f"tests/test_mine.py::test_{i}" for i in range(200)]
    shards = [node_shard(n, 4) for n in ids]
    assert set(shards) == {1, 2, 3, 4} and shards == [node_shard(n, 4) for n in ids]


def test_a_trial_needs_a_positive_cost() -> None:
    for cost in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="cost"):
            ShardItem("p", "a", 1, cost=cost)
    with pytest.raises(ValueError, match="two costs"):
        assign([ShardItem("p", "a", 1, cost=1.0), ShardItem("p", "a", 1, cost=2.0)], 2)


# --------------------------------------------------------------------------- the plugin


@pytest.fixture
def folder(pytester: pytest.Pytester, user_folder: Path) -> Path:
    """The user folder (aliases a = good, b = noop) with two packets, the second with half the budget."""
    for entry in user_folder.iterdir():
        shutil.move(str(entry), pytester.path / entry.name)
    packets = pytester.path / "packets"
    shutil.copytree(packets / "bugfix-median", packets / TWIN)
    spec = packets / TWIN / "packet.yaml"
    text = spec.read_text().replace("id: bugfix-median", f"id: {TWIN}", 1)
    assert "timeout_s: 300," in text
    spec.write_text(text.replace("timeout_s: 300,", "timeout_s: 150,", 1))
    return pytester.path


def _ids(result: pytest.RunResult) -> list[str]:
    return [line.split("::", 1)[1] for line in result.outlines if "::test_" in line]


def _collect(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--collect-only", "-q", "--models=a,b", "--packets", "packets", "--repeats=3", *args)


def test_shards_partition_the_collected_trials(pytester: pytest.Pytester, folder: Path) -> None:
    whole = _ids(_collect(pytester))
    assert len(whole) == 12
    parts = []
    for k in (1, 2, 3):
        result = _collect(pytester, f"--shard={k}/3")
        ids = _ids(result)
        result.stdout.fnmatch_lines([f"{len(ids)}/12 tests collected ({12 - len(ids)} deselected)*"])
        parts.append(ids)
    assert sorted(sum(parts, [])) == sorted(whole)  # union = the unsharded run, no overlap
    assert all(len(p) == 4 for p in parts)
    assert [_ids(_collect(pytester, f"--shard={k}/3")) for k in (1, 2, 3)] == parts  # stable


def test_shard_then_k_narrows_without_moving_trials(pytester: pytest.Pytester, folder: Path) -> None:
    shard = set(_ids(_collect(pytester, "--shard=2/3")))
    narrowed = set(_ids(_collect(pytester, "--shard=2/3", "-k", "median-a")))
    assert narrowed == {i for i in shard if "median-a" in i}


def test_ini_shard_and_cli_wins(pytester: pytest.Pytester, folder: Path) -> None:
    pytester.makeini("[pytest]\nagentbench_shard = 1/2\n")
    ini = _ids(_collect(pytester))
    cli = _ids(_collect(pytester, "--shard", "2/2"))
    assert len(ini) + len(cli) == 12 and not set(ini) & set(cli)


@pytest.mark.parametrize(
    ("args", "ini", "where", "found"),
    [
        (["--shard", "0/3"], "", "--shard", "'0/3'"),
        (["--shard", "4/3"], "", "--shard", "'4/3'"),
        (["--shard=x"], "", "--shard", "'x'"),
        ([], "agentbench_shard = 2", "ini agentbench_shard", "'2'"),
    ],
)
def test_bad_shard_is_a_usage_error(
    pytester: pytest.Pytester, folder: Path, args: list[str], ini: str, where: str, found: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = _collect(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{where}: *found {found}; e.g. --shard 2/3*"])
    assert "Traceback" not in result.stderr.str()


def test_a_users_own_tests_land_in_exactly_one_shard(pytester: pytest.Pytester, folder: Path) -> None:
    pytester.makepyfile(test_mine="\n".join(f"def test_{i}(): pass" for i in range(8)))
    args = ["--collect-only", "-q", "--models=a,b", "--packets", "packets", "test_mine.py", "packets"]

    def nodeids(result: pytest.RunResult) -> list[str]:
        return [line for line in result.outlines if "::test_" in line]

    whole = nodeids(pytester.runpytest(*args))
    parts = [nodeids(pytester.runpytest(*args, f"--shard={k}/2")) for k in (1, 2)]
    assert sorted(parts[0] + parts[1]) == sorted(whole) and not set(parts[0]) & set(parts[1])
    assert len([i for i in whole if i.startswith("test_mine.py::")]) == 8


def test_each_shard_gets_its_own_default_results_folder(pytester: pytest.Pytester, folder: Path) -> None:
    """A run (no --collect-only) writes shard.json; the default folder ends in -shard<K>of<N>."""
    result = pytester.runpytest(
        "--models=a", "--packets", "packets", "--shard=2/2", "-k", "no-such-test", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # every item deselected: nothing ran, no model called
    (run,) = (pytester.path / ".agentbench" / "runs").iterdir()
    assert run.name.endswith("-shard2of2")
    manifest = read_manifest(run)
    assert manifest is not None and manifest.shard == Shard(2, 2) and manifest.total_trials == 2
    assert manifest.aliases == ("a",)
    assert {t[0] for t in manifest.trials} <= {"bugfix-median", TWIN} and len(manifest.trials) == 1


def test_collect_only_writes_no_manifest(pytester: pytest.Pytester, folder: Path) -> None:
    _collect(pytester, "--shard=1/2", "--agentbench-results", "res")
    assert not (pytester.path / "res").exists()


def test_a_folder_of_another_shard_is_refused(pytester: pytest.Pytester, folder: Path) -> None:
    res = pytester.path / "res"
    res.mkdir()
    (res / SHARD_FILE).write_text(
        json.dumps({"format": 1, "index": 1, "count": 3, "digest": "x", "total_trials": 0, "trials": []})
    )
    result = _collect(pytester, "--shard=2/3", "--agentbench-results", "res")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--agentbench-results: *res holds the results of shard 1/3, not 2/3; give every*"])
    same = _collect(pytester, "--shard=1/3", "--agentbench-results", "res")  # a retried shard may reuse its folder
    assert same.ret == pytest.ExitCode.OK
    (res / SHARD_FILE).write_text("{not json")
    broken = _collect(pytester, "--shard=1/3", "--agentbench-results", "res")
    assert broken.ret == pytest.ExitCode.USAGE_ERROR
    broken.stderr.fnmatch_lines(["*shard.json: not a readable shard manifest*"])
