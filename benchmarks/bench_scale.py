"""Scale: collecting many packet x alias items, and reporting over many records.

Targets (issue #7): collection of 1,000 items < 2 s; summary + HTML report over 10,000
records < 5 s. Run: .venv/bin/pytest benchmarks/bench_scale.py --benchmark-only -p no:xdist
"""

from __future__ import annotations

import random
import shutil
from typing import Any

import pytest

from pytest_agentbench.reports.html import render_html
from pytest_agentbench.reports.summary import format_summary
from pytest_agentbench.results.record import record_to_dict
from tests.conftest import BUGFIX
from tests.test_results import make_record

pytest_plugins = ["pytester"]


def test_collect_1000_items(benchmark: Any, pytester: pytest.Pytester) -> None:
    for i in range(100):
        dst = pytester.path / "packets" / f"p{i:03d}"
        shutil.copytree(BUGFIX, dst, ignore=shutil.ignore_patterns("repo"))
        (dst / "repo").mkdir()
        (dst / "packet.yaml").write_text(
            (BUGFIX / "packet.yaml").read_text().replace("id: bugfix-median", f"id: p{i:03d}")
        )
    aliases = [f"m{j}" for j in range(10)]
    (pytester.path / "models.yaml").write_text(
        "models:\n" + "".join(f"  {a}:\n    model: x\n    base_url: http://127.0.0.1:9/v1\n" for a in aliases)
    )

    def collect() -> Any:
        return pytester.runpytest_inprocess(
            "--collect-only", "-q", f"--models={','.join(aliases)}", "--packets", "packets", "-p", "no:cacheprovider"
        )

    result = benchmark.pedantic(collect, rounds=3, iterations=1)
    result.stdout.fnmatch_lines(["1000 tests collected*"])


@pytest.fixture(scope="module")
def ten_thousand_records() -> list[dict[str, Any]]:
    rng = random.Random(7)
    base = [
        record_to_dict(
            make_record(
                f"alias-{k % 4}",
                passed=rng.random() < 0.6,
                calls=[(rng.uniform(0.5, 9), rng.uniform(0.05, 1.5), 3000, 300)] * 5,
            ),
            transcript=False,
        )
        for k in range(200)
    ]
    return [dict(r, run_id=f"{r['run_id']}-{n}") for n in range(50) for r in base]


def test_summary_over_10000_records(benchmark: Any, ten_thousand_records: list[dict[str, Any]]) -> None:
    text = benchmark.pedantic(format_summary, args=(ten_thousand_records,), rounds=3, iterations=1)
    assert "alias-0" in text


def test_html_over_10000_records(benchmark: Any, ten_thousand_records: list[dict[str, Any]]) -> None:
    html = benchmark.pedantic(render_html, args=(ten_thousand_records,), rounds=3, iterations=1)
    assert html.count("<tr") > 100
