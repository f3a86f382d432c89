"""--repeats: N independent trials per (packet, alias), each its own test item; --resume per trial."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_agentbench.results.benchmark import benchmark_json
from pytest_agentbench.results.jsonl import RESULTS_FILE, completed_trials, record_repeat

from .conftest import importorskip_extra

pytest_plugins = ["pytester"]

TWIN = "bugfix-twin"  # a second packet: bugfix-median under another id (the scripted trajectories match its prompt)


@pytest.fixture
def folder(pytester: pytest.Pytester, user_folder: Path) -> Path:
    """The user folder (aliases a = good, b = noop) with two packets."""
    for entry in user_folder.iterdir():
        shutil.move(str(entry), pytester.path / entry.name)
    packets = pytester.path / "packets"
    shutil.copytree(packets / "bugfix-median", packets / TWIN)
    spec = packets / TWIN / "packet.yaml"
    spec.write_text(spec.read_text().replace("id: bugfix-median", f"id: {TWIN}", 1))
    return pytester.path


def _ids(result: pytest.RunResult) -> list[str]:
    return [line.split("::", 1)[1] for line in result.outlines if "::test_packet[" in line]


def _expected_ids(repeats: int) -> list[str]:
    return [
        f"test_packet[{packet}-{alias}-r{r}]"
        for packet in ("bugfix-median", TWIN)
        for alias in ("a", "b")
        for r in range(1, repeats + 1)
    ]


def test_repeats_5_collects_20_items_with_stable_ids(pytester: pytest.Pytester, folder: Path) -> None:
    args = ["--collect-only", "-q", "--models=a,b", "--packets", "packets", "--repeats", "5"]
    first = pytester.runpytest(*args)
    first.stdout.fnmatch_lines(["20 tests collected*"])
    assert _ids(first) == _expected_ids(5)
    assert _ids(pytester.runpytest(*args)) == _ids(first)  # the same order on every run (and xdist worker)


def test_repeats_1_keeps_the_ids_and_k_filters(pytester: pytest.Pytester, folder: Path) -> None:
    result = pytester.runpytest("--collect-only", "-q", "--models=a,b", "--packets", "packets", "--repeats=1")
    assert _ids(result) == [f"test_packet[{p}-{a}]" for p in ("bugfix-median", TWIN) for a in ("a", "b")]
    picked = pytester.runpytest("--collect-only", "-q", "--models=a,b", "--packets", "packets", "-k", "median-a")
    assert _ids(picked) == ["test_packet[bugfix-median-a]"]


def test_ini_repeats_and_cli_wins(pytester: pytest.Pytester, folder: Path) -> None:
    pytester.makeini("[pytest]\nagentbench_repeats = 3\n")
    result = pytester.runpytest("--collect-only", "-q", "--models=a", "--packets", "packets")
    result.stdout.fnmatch_lines(["6 tests collected*"])
    assert "test_packet[bugfix-median-a-r3]" in _ids(result)
    cli = pytester.runpytest("--collect-only", "-q", "--models=a", "--packets", "packets", "--repeats", "2")
    cli.stdout.fnmatch_lines(["4 tests collected*"])


@pytest.mark.parametrize(
    ("args", "ini", "where", "found"),
    [
        (["--repeats", "0"], "", "--repeats", "'0'"),
        (["--repeats", "-2"], "", "--repeats", "'-2'"),
        (["--repeats=2.5"], "", "--repeats", "'2.5'"),
        (["--repeats="], "", "--repeats", "''"),
        ([], "agentbench_repeats = many", "ini agentbench_repeats", "'many'"),
    ],
)
def test_bad_repeats_is_a_usage_error(
    pytester: pytest.Pytester, folder: Path, args: list[str], ini: str, where: str, found: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("--collect-only", "--models=a", "--packets", "packets", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{where}: expected a whole number of trials >= 1, found {found}*"])
    assert "Traceback" not in result.stderr.str()


def test_completed_trials_reads_repeats_and_old_records_as_repeat_1(tmp_path: Path) -> None:
    lines = [
        {"packet": {"id": "p"}, "alias": "a", "outcome": "finished"},  # before --repeats: repeat 1
        {"packet": {"id": "p"}, "alias": "a", "repeat": 3, "outcome": "finished"},
        {"packet": {"id": "p"}, "alias": "a", "repeat": 4, "outcome": "infrastructure"},  # judged nothing: again
        {"packet": {"id": "p"}, "alias": "b", "repeat": True, "outcome": "finished"},  # unusable: repeat 1
        {"packet": {"id": "p"}, "alias": "b", "repeat": 2, "outcome": "max_turns"},  # a model failure is a result
    ]
    (tmp_path / RESULTS_FILE).write_text("".join(json.dumps(r) + "\n" for r in lines))
    done = {("p", "a", 1), ("p", "a", 3), ("p", "b", 1), ("p", "b", 2)}
    assert completed_trials(tmp_path) == {(p, a, "builtin", r) for p, a, r in done}
    assert [record_repeat(r) for r in lines] == [1, 3, 4, 1, 2]


def test_record_carries_repeat_and_the_sampling_the_alias_sends(tmp_path: Path) -> None:
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.results.record import sampling_settings

    seeded = ModelSpec("s", "m", tmp_path / "models.yaml", temperature=0.7, extra_body={"seed": 7, "top_k": 5})
    assert sampling_settings(seeded) == {"temperature": 0.7, "seed": 7}
    default = ModelSpec("d", "m", tmp_path / "models.yaml", temperature=None)
    assert sampling_settings(default) == {"temperature": None}  # none sent: the server's default, not 0


def _pytest_benchmark_compare_reads(path: Path) -> None:
    """``pytest-benchmark compare`` shows one benchmark per pair with the trials as rounds."""
    importorskip_extra("pytest_benchmark", "benchmark")
    import subprocess
    import sys

    copy = path.with_name("0001_repeats.json")
    shutil.copy(path, copy)
    cli = Path(sys.executable).with_name("pytest-benchmark")
    done = subprocess.run(
        [str(cli), "compare", str(copy), "--columns=rounds"], capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Failed to load" not in out, out
    for param in ("bugfix-median-a", "bugfix-median-b", f"{TWIN}-a", f"{TWIN}-b"):
        assert f"test_packet[{param}]" in out, out
    assert "-r1]" not in out


def _record(repeat: int, wall: float, passed: bool) -> dict:
    return {
        "packet": {"id": "p", "kind": "bug-fix"},
        "alias": "a",
        "repeat": repeat,
        "outcome": "finished",
        "passed": passed,
        "client": {"wall_s": wall, "calls": [], "tokens": {}},
        "nodeid": f"packets/p/packet.yaml::test_packet[p-a-r{repeat}]",
    }


def test_benchmark_json_makes_the_trials_of_a_pair_the_rounds_of_one_benchmark() -> None:
    records = [_record(2, 2.0, False), _record(1, 1.0, True), _record(3, 3.0, True)]
    (bench,) = benchmark_json(records, machine_info={}, commit_info={})["benchmarks"]
    assert bench["name"] == "test_packet[p-a]" and bench["param"] == "p-a"
    assert bench["fullname"] == "packets/p/packet.yaml::test_packet[p-a]"  # compares with a run without repeats
    assert bench["stats"]["rounds"] == 3 and bench["stats"]["data"] == [1.0, 2.0, 3.0]  # in repeat order
    assert bench["extra_info"]["agentbench.runs"] == 3 and bench["extra_info"]["agentbench.repeats"] == 3
    assert bench["extra_info"]["agentbench.pass_rate"] == pytest.approx(2 / 3)


@pytest.mark.slow
def test_repeats_under_xdist_then_resume_runs_only_the_missing_trials(pytester: pytest.Pytester, folder: Path) -> None:
    importorskip_extra("xdist", "xdist")
    args = ["--models=a,b", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "--repeats", "5"]
    result = pytester.runpytest_subprocess(*args, "-n", "2", "--agentbench-results", "res", "--junitxml=out.xml")
    result.assert_outcomes(passed=10, failed=10)  # a (good) passes every trial, b (noop) fails every one

    cases = ET.parse(folder / "out.xml").getroot().iter("testcase")
    repeats = {}
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        repeats[case.get("name")] = props["agentbench.repeat"]
    assert sorted(repeats) == sorted(_expected_ids(5))
    assert all(name.endswith(f"-r{r}]") for name, r in repeats.items())

    merged = folder / "res" / RESULTS_FILE
    records = [json.loads(line) for line in merged.read_text().splitlines()]
    trials = sorted((r["packet"]["id"], r["alias"], r["repeat"]) for r in records)
    assert trials == sorted((p, a, r) for p in ("bugfix-median", TWIN) for a in ("a", "b") for r in range(1, 6))
    assert all(r["sampling"] == {"temperature": 0.0} for r in records)
    assert all(r["nodeid"].endswith(f"-r{r['repeat']}]") for r in records)
    bench = json.loads((folder / "res" / "benchmark.json").read_text())["benchmarks"]
    assert sorted((b["param"], b["stats"]["rounds"]) for b in bench) == [
        (f"{p}-{a}", 5) for p in ("bugfix-median", TWIN) for a in ("a", "b")
    ]
    result.stdout.fnmatch_lines(["*pass rate*(10/10)*(0/10)*"])  # per alias: 10 trials each, counted once
    _pytest_benchmark_compare_reads(folder / "res" / "benchmark.json")

    # An interrupted run: only some trials got their record (each is fsynced when it finishes).
    lost = {("bugfix-median", "a", 4), (TWIN, "b", 2), (TWIN, "b", 5)}
    kept = [r for r in records if (r["packet"]["id"], r["alias"], r["repeat"]) not in lost]
    for part in (folder / "res").glob("results-*.jsonl"):
        part.unlink()
    merged.write_text("".join(json.dumps(r) + "\n" for r in kept))
    again = pytester.runpytest(*args, "--resume", "res", "-v")
    again.assert_outcomes(passed=1, failed=2, deselected=17)
    again.stdout.fnmatch_lines(
        [
            "*test_packet?bugfix-median-a-r4? PASSED*",
            "*test_packet?bugfix-twin-b-r2? FAILED*",
            "*test_packet?bugfix-twin-b-r5? FAILED*",
        ],
        consecutive=False,
    )
    final = [json.loads(line) for line in merged.read_text().splitlines()]
    assert len(final) == 20 and {(r["packet"]["id"], r["alias"], r["repeat"]) for r in final} == {
        (p, a, r) for p in ("bugfix-median", TWIN) for a in ("a", "b") for r in range(1, 6)
    }


def test_each_repeat_sends_its_own_seed(pytester: pytest.Pytester, folder: Path, tmp_path: Path) -> None:
    """A seeded alias would send the same seed to every trial: N copies of one draw. Trial r sends seed + r - 1."""
    from pytest_agentbench.models.registry import ModelSpec

    models = folder / "models.yaml"
    models.write_text(models.read_text().replace("  a:\n", "  a:\n    extra_body: {seed: 7, top_k: 5}\n", 1))
    result = pytester.runpytest(
        "--models=a", "--packets", "packets", "--repeats", "3", "-k", "median", "--agentbench-results", "out"
    )
    result.assert_outcomes(passed=3)
    records = [json.loads(line) for line in (folder / "out" / RESULTS_FILE).open()]
    assert sorted((r["repeat"], r["sampling"]["seed"]) for r in records) == [(1, 7), (2, 8), (3, 9)]
    spec = ModelSpec("s", "m", tmp_path / "models.yaml", extra_body={"seed": 7, "top_k": 5})
    assert spec.for_repeat(1) is spec and spec.for_repeat(3).extra_body == {"seed": 9, "top_k": 5}
    assert ModelSpec("n", "m", tmp_path / "models.yaml").for_repeat(4).extra_body == {}  # no seed: none invented
