"""agentbench merge: shard folders -> one results folder and one HTML report, like the unsharded run."""

from __future__ import annotations

import json
import shlex
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.cli import build_parser, main
from pytest_agentbench.errors import UsageError
from pytest_agentbench.results.jsonl import RESULTS_FILE
from pytest_agentbench.scale.manifest import ShardManifest, write_manifest
from pytest_agentbench.scale.merge import merge_folders
from pytest_agentbench.scale.shards import Shard, ShardItem, assign, plan_digest

from .conftest import REPO, importorskip_extra

pytest_plugins = ["pytester"]

TRIALS = [("p", alias, r) for alias in ("a", "b") for r in (1, 2, 3)]


def _record(packet: str, alias: str, repeat: int, *, run_id: str, when: str, outcome: str = "finished") -> dict:
    passed = outcome == "finished" and alias == "a"
    return {
        "schema_version": 1,
        "run_id": run_id,
        "timestamp": f"2026-01-01T00:00:{when}+00:00",
        "packet": {"id": packet, "kind": "bug-fix", "version": 1},
        "alias": alias,
        "model": f"m-{alias}",
        "test_double": True,
        "repeat": repeat,
        "outcome": outcome,
        "failure": "connection_error" if outcome == "infrastructure" else None,
        "counted": outcome != "infrastructure",
        "passed": passed,
        "gates": [],
        "turns": 2,
        "model_calls": 2,
        "client": {"wall_s": 1.0 + repeat, "calls": [], "tokens": {"prompt": 10, "completion": 5}},
        "nodeid": f"packets/{packet}/packet.yaml::test_packet[{packet}-{alias}-r{repeat}]",
    }


def _case(packet: str, alias: str, repeat: int, run_id: str | None, *, failed: bool = False) -> str:
    props = ""
    if run_id is not None:
        names = {"run_id": run_id, "packet": packet, "alias": alias, "repeat": repeat}
        props = "<properties>" + "".join(f'<property name="agentbench.{k}" value="{v}"/>' for k, v in names.items())
        props += "</properties>"
    body = '<failure message="gates missed"/>' if failed else ""
    name = f"test_packet[{packet}-{alias}-r{repeat}]"
    return f'<testcase classname="packets.{packet}.packet.yaml" name="{name}" time="1.0">{props}{body}</testcase>'


def _junit(path: Path, cases: list[str], stamp: str) -> None:
    path.write_text(
        f'<?xml version="1.0"?><testsuites name="pytest tests"><testsuite name="pytest" timestamp="{stamp}" '
        f'hostname="h" tests="{len(cases)}">{"".join(cases)}</testsuite></testsuites>'
    )


def _plan(count: int = 3) -> tuple[dict[tuple, int], str]:
    items = [ShardItem(p, a, r, cost=300.0) for p, a, r in TRIALS]
    return assign(items, count), plan_digest(items, count)


def _shard_folder(root: Path, index: int, count: int = 3, *, name: str | None = None, when: str = "1") -> Path:
    """A results folder as `pytest --shard index/count` leaves it: manifest, records, JUnit, benchmark JSON."""
    plan, digest = _plan(count)
    mine = sorted(key for key, k in plan.items() if k == index)
    folder = root / (name or f"shard{index}of{count}")
    manifest = ShardManifest(Shard(index, count), digest, len(plan), tuple(mine), aliases=("a", "b"))
    write_manifest(folder, manifest)
    records = [_record(p, a, r, run_id=f"{p}{a}{r}-{when}", when=f"{r}{when}") for p, a, _, r in mine]
    (folder / "results-main.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    bench = {"machine_info": {"node": f"runner-{index}"}, "commit_info": {"id": "abc123"}, "benchmarks": []}
    (folder / "benchmark.json").write_text(json.dumps(bench))
    stamp = f"2026-01-01T00:0{index}:00"
    _junit(folder / "junit.xml", [_case(p, a, r, f"{p}{a}{r}-{when}", failed=a == "b") for p, a, _, r in mine], stamp)
    return folder


def _trials(records: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(r["packet"]["id"], r["alias"], r["repeat"]) for r in records]


def test_three_shards_merge_into_one_folder_sorted_by_trial(tmp_path: Path) -> None:
    importorskip_extra("junitparser", "junit")
    folders = [_shard_folder(tmp_path, k) for k in (3, 1, 2)]  # any order
    report = merge_folders(folders, tmp_path / "merged")
    assert _trials(report.records) == sorted(TRIALS)
    lines = (tmp_path / "merged" / RESULTS_FILE).read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == [r["run_id"] for r in report.records]
    bench = json.loads((tmp_path / "merged" / "benchmark.json").read_text())
    assert [(b["param"], b["stats"]["rounds"]) for b in bench["benchmarks"]] == [("p-a", 3), ("p-b", 3)]
    assert bench["machine_info"] == {"node": "runner-1"} and bench["commit_info"] == {"id": "abc123"}
    root = ET.parse(tmp_path / "merged" / "junit.xml").getroot()
    (suite,) = root.iter("testsuite")
    assert suite.get("name") == "pytest" and suite.get("tests") == "6" and suite.get("failures") == "3"
    assert suite.get("timestamp") == "2026-01-01T00:01:00"
    assert [c.get("name") for c in suite.iter("testcase")] == [f"test_packet[p-{a}-r{r}]" for _, a, r in TRIALS]
    html = (tmp_path / "merged" / "report.html").read_text()
    assert html.count("<html") == 1 and "m-a" in html
    assert report.aliases == ["a", "b"] and not report.problems


def test_a_missing_shard_is_named_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folders = [_shard_folder(tmp_path, k) for k in (1, 3)]
    with pytest.raises(UsageError, match=r"shard 2/3 missing: none of the folders given"):
        merge_folders(folders, tmp_path / "merged")
    assert main(["merge", *map(str, folders), "--out", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err
    assert "agentbench merge: error: shard 2/3 missing" in err and "--shard 2/3" in err and "--allow-missing" in err
    assert not (tmp_path / "merged").exists()
    partial = merge_folders(folders, tmp_path / "merged", allow_missing=True)
    assert len(partial.records) == 4 and any("shard 2/3 missing" in p for p in partial.problems)


def test_a_retried_shard_keeps_the_newest_complete_record_per_trial(tmp_path: Path) -> None:
    first = _shard_folder(tmp_path, 2, name="try1", when="1")
    second = _shard_folder(tmp_path, 2, name="try2", when="5")
    mine = [json.loads(line) for line in (first / RESULTS_FILE).read_text().splitlines()]
    # The retry's first trial hit a dead endpoint (infrastructure): the first try's complete record must win.
    retry = [json.loads(line) for line in (second / RESULTS_FILE).read_text().splitlines()]
    retry[0]["outcome"] = "infrastructure"
    retry.append(dict(mine[1]))  # the same run id in both folders (a resumed folder): one record
    text = "".join(json.dumps(r) + "\n" for r in retry)
    (second / RESULTS_FILE).write_text(text)
    (second / "results-main.jsonl").write_text(text)
    others = [_shard_folder(tmp_path, k) for k in (1, 3)]
    report = merge_folders([first, second, *others], tmp_path / "merged")
    assert sorted(_trials(report.records)) == sorted(TRIALS) and len(report.records) == 6
    kept = {(r["alias"], r["repeat"]): r["run_id"] for r in report.records}
    first_key = (mine[0]["alias"], mine[0]["repeat"])
    assert kept[first_key] == mine[0]["run_id"]  # complete beats a newer infrastructure record
    second_key = (mine[1]["alias"], mine[1]["repeat"])
    assert kept[second_key] == retry[1]["run_id"] and retry[1]["run_id"].endswith("-5")  # newest complete
    assert any("shard 2/3 given 2 times" in n for n in report.notes)
    assert any("kept run" in n and "newest complete" in n for n in report.notes)
    cases = ET.parse(tmp_path / "merged" / "junit.xml").getroot().iter("testcase")
    ids = [{p.get("name"): p.get("value") for p in c.iter("property")}["agentbench.run_id"] for c in cases]
    assert sorted(ids) == sorted(kept.values())  # each test once, the testcase of the kept record


def test_folders_of_different_splits_are_refused(tmp_path: Path) -> None:
    three = [_shard_folder(tmp_path, k) for k in (1, 2, 3)]
    two = _shard_folder(tmp_path, 1, count=2)
    with pytest.raises(UsageError, match=r"different splits .*shard1of2 \(shard 1/2\).* same N"):
        merge_folders([*three, two], tmp_path / "merged")


def test_a_trial_without_record_is_named(tmp_path: Path) -> None:
    folders = [_shard_folder(tmp_path, k) for k in (1, 2, 3)]
    lines = (folders[0] / RESULTS_FILE).read_text().splitlines()
    for name in (RESULTS_FILE, "results-main.jsonl"):
        (folders[0] / name).write_text(lines[0] + "\n" + '{"cut off')  # one lost, one torn line
    problems: list[str] = []
    report = merge_folders(folders, tmp_path / "merged", on_problem=problems.append)
    assert len(report.records) == 5
    assert any("truncated last line" in p for p in problems)
    assert any("shard 1/3 has no record of 1 of its 2 trials" in p and "--resume" in p for p in problems)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist: give the results folders of the shards"),
        ("empty", "holds no results.jsonl and no shard.json: not a results folder"),
        ("out-is-input", "--out: * is one of the folders to merge; choose a new folder"),
        ("out-is-a-shard", "--out: * holds a shard's results (shard.json); choose a new folder"),
        ("bad-manifest", "shard.json: not a readable shard manifest"),
    ],
)
def test_bad_folders_exit_2_naming_the_folder_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    folders = [_shard_folder(tmp_path, k) for k in (1, 2, 3)]
    out = tmp_path / "merged"
    if setup == "missing":
        folders.append(tmp_path / "nope")
    elif setup == "empty":
        (tmp_path / "empty").mkdir()
        folders.append(tmp_path / "empty")
    elif setup == "out-is-input":
        out = folders[0]
    elif setup == "out-is-a-shard":
        out = tmp_path / "copy"
        shutil.copytree(folders[0], out)
    else:
        (folders[1] / "shard.json").write_text('{"format": 1, "index": 4, "count": 3}')
    assert main(["merge", *map(str, folders), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentbench merge: error: ") and "Traceback" not in err
    assert all(part in err for part in message.split("*")), err


def test_unsharded_folders_merge_without_a_completeness_check(tmp_path: Path) -> None:
    runs = []
    for alias in ("a", "b"):
        folder = tmp_path / f"run-{alias}"
        folder.mkdir()
        records = [_record("p", alias, r, run_id=f"{alias}{r}", when=f"{r}0") for r in (1, 2)]
        (folder / RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
        runs.append(folder)
    report = merge_folders(runs, tmp_path / "merged")
    assert _trials(report.records) == [("p", "a", 1), ("p", "a", 2), ("p", "b", 1), ("p", "b", 2)]
    assert not (tmp_path / "merged" / "junit.xml").exists()


# --------------------------------------------------------------------------- acceptance: real shard runs


@pytest.fixture
def user(pytester: pytest.Pytester, user_folder: Path) -> Path:
    for entry in user_folder.iterdir():
        shutil.move(str(entry), pytester.path / entry.name)
    return pytester.path


def _run(pytester: pytest.Pytester, results: str, *extra: str) -> pytest.RunResult:
    args = ["--models=a,b", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "--repeats=3"]
    return pytester.runpytest(*args, "--agentbench-results", results, f"--junitxml={results}/junit.xml", *extra)


def _junit_cases(path: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        out[case.get("name")] = "failed" if case.find("failure") is not None else "passed"
    return out


@pytest.mark.slow
def test_three_shards_run_apart_merge_like_the_unsharded_run(
    pytester: pytest.Pytester, user: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1 packet x 2 aliases x 3 repeats: --shard 1/3, 2/3, 3/3 merged == the unsharded run; a missing shard named."""
    importorskip_extra("junitparser", "junit")
    outcomes = {"passed": 0, "failed": 0}
    for k in (1, 2, 3):
        result = _run(pytester, f"shards/{k}", f"--shard={k}/3")
        counts = result.parseoutcomes()
        assert counts.get("deselected") == 4
        outcomes["passed"] += counts.get("passed", 0)
        outcomes["failed"] += counts.get("failed", 0)
    assert outcomes == {"passed": 3, "failed": 3}  # a (good) passes every trial, b (noop) fails every one
    whole = _run(pytester, "whole")
    whole.assert_outcomes(passed=3, failed=3)

    folders = [str(user / "shards" / str(k)) for k in (1, 2, 3)]
    assert main(["merge", *folders, "--out", str(user / "merged")]) == 0
    printed = capsys.readouterr().out
    assert "merged 6 records from 3 folders" in printed and "pass rate" in printed

    def load(folder: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (folder / RESULTS_FILE).read_text().splitlines()]

    merged, unsharded = load(user / "merged"), load(user / "whole")
    assert len(merged) == 6 and sorted(_trials(merged)) == sorted(_trials(unsharded))
    assert _trials(merged) == sorted(_trials(merged))
    same = {(t, r["passed"], r["outcome"]) for t, r in zip(_trials(merged), merged, strict=True)}
    assert same == {(t, r["passed"], r["outcome"]) for t, r in zip(_trials(unsharded), unsharded, strict=True)}
    bench = {
        b["param"]: b["stats"]["rounds"]
        for b in json.loads((user / "merged" / "benchmark.json").read_text())["benchmarks"]
    }
    whole_bench = json.loads((user / "whole" / "benchmark.json").read_text())["benchmarks"]
    assert (
        bench == {b["param"]: b["stats"]["rounds"] for b in whole_bench} == {"bugfix-median-a": 3, "bugfix-median-b": 3}
    )
    assert _junit_cases(user / "merged" / "junit.xml") == _junit_cases(user / "whole" / "junit.xml")
    assert (user / "merged" / "report.html").read_text().count("<html") == 1

    assert main(["merge", folders[0], folders[2], "--out", str(user / "partial")]) == 2
    assert "shard 2/3 missing" in capsys.readouterr().err


# --------------------------------------------------------------------------- the CI examples (examples/ci)

CI = REPO / "examples" / "ci"


def _pytest_args(pytester: pytest.Pytester, command: str, values: dict[str, str]) -> pytest.Config:
    """The example's pytest command line with its CI variables filled in, parsed by pytest and this plugin."""
    for name, value in values.items():
        command = command.replace(name, value)
    argv = shlex.split(command)
    assert argv[0] == "pytest"
    return pytester.parseconfig(*argv[1:])


def _merge_args(command: str, values: dict[str, str]) -> Any:
    for name, value in values.items():
        command = command.replace(name, value)
    argv = shlex.split(command)
    assert argv[:2] == ["agentbench", "merge"]
    return build_parser().parse_args(argv[1:])


def test_github_actions_example_shards_and_merges(pytester: pytest.Pytester) -> None:
    flow = yaml.safe_load((CI / "github-actions.yml").read_text())
    shards = int(flow["env"]["SHARDS"])
    jobs = flow["jobs"]
    assert set(flow.get("on", flow.get(True))) >= {"workflow_dispatch"}  # YAML 1.1 reads a bare `on` as True
    matrix = jobs["shard"]["strategy"]["matrix"]["shard"]
    assert matrix == list(range(1, shards + 1)) and shards >= 2  # the shard count agrees in both places
    assert jobs["shard"]["strategy"]["fail-fast"] is False
    steps = jobs["shard"]["steps"]
    (run,) = [s["run"] for s in steps if "--shard" in s.get("run", "")]
    config = _pytest_args(pytester, run, {"${{ matrix.shard }}": "2", "$SHARDS": str(shards), "$MODELS": "a"})
    assert config.option.agentbench_shard == f"2/{shards}"
    assert config.option.agentbench_results == f"results/shard2of{shards}"
    assert config.option.xmlpath == f"results/shard2of{shards}/junit.xml"
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "results/" and "!cancelled()" in upload["if"]
    assert upload["with"]["name"] == "agentbench-shard-${{ matrix.shard }}"

    merge = jobs["merge"]
    assert merge["needs"] == "shard" and "!cancelled()" in merge["if"]  # after the matrix, failed shards or not
    (download,) = [s for s in merge["steps"] if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"]["pattern"] == "agentbench-shard-*" and download["with"]["merge-multiple"] is True
    (command,) = [s["run"] for s in merge["steps"] if "agentbench merge" in s.get("run", "")]
    args = _merge_args(command, {"$SHARDS": str(shards), "${{ github.run_id }}": "1"})
    assert args.folders == [f"{download['with']['path']}/shard*of{shards}"] and args.out == "merged"


def test_gitlab_example_shards_and_merges(pytester: pytest.Pytester) -> None:
    ci = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    job, merge = ci["agentbench"], ci["agentbench-merge"]
    shards = job["parallel"]
    assert isinstance(shards, int) and shards >= 2
    assert ci["stages"].index(job["stage"]) < ci["stages"].index(merge["stage"])
    (run,) = [line for line in job["script"] if "--shard" in line]
    values = {"${CI_NODE_INDEX}": "3", "${CI_NODE_TOTAL}": str(shards), "$CI_NODE_INDEX": "3"}
    config = _pytest_args(pytester, run, {**values, "$CI_NODE_TOTAL": str(shards), "$MODELS": "a"})
    assert config.option.agentbench_shard == f"3/{shards}"
    assert config.option.agentbench_results == f"results/shard3of{shards}"
    assert job["artifacts"]["when"] == "always" and job["artifacts"]["paths"] == ["results/"]
    assert merge["needs"] == [{"job": "agentbench", "artifacts": True}] and merge["when"] == "always"
    (command,) = [line for line in merge["script"] if "agentbench merge" in line]
    args = _merge_args(command, {"$CI_PIPELINE_ID": "1"})
    assert args.folders == ["results/shard*of*"] and args.out == "merged"
