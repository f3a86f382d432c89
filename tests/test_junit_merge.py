"""Merging JUnit XML files and the per-alias table from the agentbench.* properties."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from pytest_agentbench.errors import JunitMergeWarning
from pytest_agentbench.results.junit import format_alias_table, merge_junit

from .conftest import SCRIPTS, importorskip_extra

JUnitXml = importorskip_extra("junitparser", "junit").JUnitXml

pytest_plugins = ["pytester"]

# A tiny test module that sets the same user_properties a packet run sets (RunRecord.properties()).
SHARD = textwrap.dedent("""
    import pytest

    RUNS = {RUNS!r}

    @pytest.fixture
    def run(request):
        props = RUNS[request.param]
        if props is None:
            raise RuntimeError("sandbox could not start")  # an infrastructure error: no record, no properties
        request.node.user_properties.extend(("agentbench." + k, v) for k, v in props.items())
        return props

    @pytest.mark.parametrize("run", list(RUNS), indirect=True)
    def test_packet(run):
        assert run["passed"], "gate regression failed"
""")


def props(
    alias: str, passed: bool, outcome: str = "finished", failure: str = "", wall: float = 1.0, test_double: bool = False
) -> dict[str, object]:
    return {
        "run_id": f"{alias}-{wall}",
        "packet": "bugfix-median",
        "alias": alias,
        "model": f"m-{alias}",
        "test_double": test_double,
        "outcome": outcome,
        "failure": failure,
        "passed": passed,
        "wall_s": wall,
        "prompt_tokens": 1000,
        "completion_tokens": 100,
    }


def shard(pytester: pytest.Pytester, name: str, runs: dict[str, dict[str, object] | None]) -> Path:
    pytester.makepyfile(**{f"test_{name}": SHARD.replace("{RUNS!r}", repr(runs))})
    xml = pytester.path / f"{name}.xml"
    pytester.runpytest(f"test_{name}.py", f"--junitxml={xml}", "-p", "no:cacheprovider")
    assert xml.is_file()
    return xml


@pytest.fixture
def shards(pytester: pytest.Pytester) -> list[Path]:
    one = shard(
        pytester,
        "one",
        {
            "bugfix-median-local": props("local", True, wall=2.0),
            "bugfix-median-local-2": props("local", False, wall=4.0),
            "bugfix-median-api": props("api", True, wall=1.0),
        },
    )
    two = shard(
        pytester,
        "two",
        {
            "bugfix-median-api": props("api", False, "model_error", "rate_limited", wall=3.0),
            "refactor-pricing-local": props("local", True, wall=6.0),
            "docs-retry-options-api": None,  # errored before the run finished: no properties
            "docs-retry-options-scripted": props("scripted", True, test_double=True),
        },
    )
    return [one, two]


def test_merge_computes_a_row_per_alias(shards: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "merged" / "all.xml"
    rows = merge_junit(shards, out)
    by = {r["alias"]: r for r in rows}
    assert list(by) == ["local", "api", "scripted"]
    local, api = by["local"], by["api"]
    assert (local["runs"], local["passed"], local["pass_rate"]) == (3, 2, pytest.approx(2 / 3))
    assert local["wall_s_p50"] == 4.0 and local["wall_s_mean"] == 4.0
    assert local["tests"] == {"failed": 1, "passed": 2} and local["prompt_tokens"] == 3000
    assert (api["runs"], api["passed"], api["no_record"]) == (2, 1, 1)  # the errored case counted apart
    assert api["tests"] == {"error": 1, "failed": 1, "passed": 1}
    assert api["failures"] == {"rate_limited": 1} and api["outcomes"] == {"finished": 1, "model_error": 1}
    assert by["scripted"]["test_double"] is True and by["scripted"]["model"] == "m-scripted"
    merged = JUnitXml.fromfile(str(out))
    merged.update_statistics()
    assert (merged.tests, merged.failures, merged.errors) == (7, 2, 1)


def test_alias_table_is_readable(shards: list[Path]) -> None:
    text = format_alias_table(merge_junit(shards))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["alias", "runs", "pass"]
    assert lines[2].startswith("local ") and "67% (2/3)" in lines[2] and "4.00 s" in lines[2]
    assert lines[3].startswith("api ") and "50% (1/2)" in lines[3] and "rate_limited 1" in lines[3]
    assert lines[4].startswith("scripted (test double)")
    assert lines[3].rstrip().endswith("1")  # no record: 1
    assert format_alias_table([]) == "no agentbench test cases found"


def test_broken_file_is_left_out_with_a_warning(shards: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "cut.xml"
    bad.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest"><testcase name="x"')
    with pytest.warns(JunitMergeWarning) as caught:
        rows = merge_junit([*shards, bad, tmp_path / "missing.xml"])
    assert sum(r["runs"] for r in rows) == 6
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "cut.xml: left out of the merge" in messages[0]
    assert "missing.xml: left out of the merge: FileNotFoundError" in messages[1]
    problems: list[str] = []
    merge_junit([bad], on_problem=problems.append)
    assert len(problems) == 1


@pytest.mark.slow
def test_real_plugin_junit_files_merge(pytester: pytest.Pytester, user_folder: Path, tmp_path: Path) -> None:
    """Two CI shards of the real plugin (one alias each) merge into one table."""
    for entry in user_folder.iterdir():
        shutil.move(str(entry), pytester.path / entry.name)
    assert (SCRIPTS / "good").is_dir()
    files = []
    for alias in ("a", "b"):
        xml = tmp_path / f"shard-{alias}.xml"
        pytester.runpytest(
            f"--models={alias}",
            "--packets",
            "packets",
            "--sandbox=local",
            f"--junitxml={xml}",
            "-p",
            "no:cacheprovider",
        )
        files.append(xml)
    rows = merge_junit(files, tmp_path / "merged.xml")
    by = {r["alias"]: r for r in rows}
    assert (by["a"]["runs"], by["a"]["passed"], by["a"]["model"]) == (1, 1, "scripted-good")
    assert (by["b"]["runs"], by["b"]["passed"], by["b"]["outcomes"]) == (1, 0, {"finished": 1})
    assert by["a"]["test_double"] is True
    text = format_alias_table(rows)
    assert "a (test double)" in text and "100% (1/1)" in text and "0% (0/1)" in text
