"""``agentbench export --format swebench``: predictions from run records, and the whole patches kept beside them.

The end-to-end test runs the plugin on bugfix-median with the scripted ``good`` and ``noop``
trajectories (test doubles, not models), exports, and applies the exported ``model_patch`` to the
packet's workspace: with it, the packet's hidden test passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_agentbench.cli import main
from pytest_agentbench.results.export import keep_whole_patch, swebench_predictions
from pytest_agentbench.results.redact import Redactor
from pytest_agentbench.sandbox.bwrap import bwrap_status
from pytest_agentbench.sandbox.patch import Patch

from .conftest import BUGFIX

pytest_plugins = ["pytester"]

DIFF = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"


def rec(packet: str = "p", alias: str = "a", repeat: int = 1, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": f"{packet}-{alias}-{repeat}-{kw.pop('n', 0)}",
        "packet": {"id": packet},
        "alias": alias,
        "model": f"org/{alias}-model",
        "repeat": repeat,
        "timestamp": kw.pop("timestamp", "2026-01-01T00:00:00+00:00"),
        "outcome": "finished",
        "patch": {"diff": DIFF, "truncated": False, "error": None},
    }
    out.update(kw)
    return out


def predictions(records: list[dict[str, Any]], folder: Path | None = None, **kw: Any) -> tuple[list, list[str]]:
    warnings: list[str] = []
    rows = swebench_predictions([((folder or Path(".")) / "results.jsonl", records)], warn=warnings.append, **kw)
    return rows, warnings


def test_one_trial_per_packet_is_the_packet_id() -> None:
    rows, warnings = predictions([rec("p", "a"), rec("q", "a"), rec("p", "b")])
    assert rows == [
        {"instance_id": "p", "model_name_or_path": "a", "model_patch": DIFF},
        {"instance_id": "p", "model_name_or_path": "b", "model_patch": DIFF},
        {"instance_id": "q", "model_name_or_path": "a", "model_patch": DIFF},
    ]
    assert warnings == []


def test_repeats_get_their_trial_number_and_names_can_be_the_model() -> None:
    rows, _ = predictions([rec("p", "a", 1), rec("p", "a", 2), rec("p", "b", 1)], name_by="alias/model")
    assert [(r["instance_id"], r["model_name_or_path"]) for r in rows] == [
        ("p-r1", "a/org/a-model"),
        ("p-r2", "a/org/a-model"),
        ("p", "b/org/b-model"),
    ]
    rows, _ = predictions([rec("p", "a")], name_by="model")
    assert rows[0]["model_name_or_path"] == "org/a-model"


def test_two_records_of_one_trial_keep_the_newer() -> None:
    old = rec(n=1, timestamp="2026-01-01T00:00:00+00:00", patch={"diff": "old", "error": None})
    new = rec(n=2, timestamp="2026-02-01T00:00:00+00:00")
    for order in ([old, new], [new, old]):
        rows, warnings = predictions(order)
        assert [r["model_patch"] for r in rows] == [DIFF]
        assert len(warnings) == 1 and "kept the newer, dropped the one of 2026-01-01" in warnings[0]


def test_runs_without_a_prediction_are_left_out_and_named() -> None:
    records = [
        rec("infra", outcome="infrastructure", patch=None),
        {k: v for k, v in rec("old").items() if k != "patch"},
        rec("broken", patch={"diff": "", "error": "taking the diff ran past 120 s"}),
        rec("fine"),
    ]
    rows, warnings = predictions(records)
    assert [r["instance_id"] for r in rows] == ["fine"]
    text = "\n".join(warnings)
    assert "run infra-a-1-0 (infra on a): left out: the endpoint never answered" in text
    assert "(old on a): left out: it was written before patches were recorded" in text
    assert "(broken on a): left out: no patch could be taken (taking the diff ran past 120 s)" in text


def test_a_cut_patch_is_exported_whole_from_its_file(tmp_path: Path) -> None:
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "r1.diff").write_text(DIFF + DIFF.replace("x.py", "y.py"))
    cut = {"diff": DIFF, "truncated": True, "whole": "patches/r1.diff", "error": None, "note": "cut ..."}
    rows, warnings = predictions([rec(patch=cut)], tmp_path)
    assert rows[0]["model_patch"].count("diff --git") == 2 and warnings == []
    lost = dict(cut, whole=None, note="cut for the record at 60 of 120 bytes; the whole was not kept")
    rows, warnings = predictions([rec(patch=lost)], tmp_path)
    assert rows[0]["model_patch"] == DIFF and "exported cut: cut for the record at 60 of 120 bytes" in warnings[0]
    sneaky = dict(cut, whole="../../etc/passwd")
    rows, warnings = predictions([rec(patch=sneaky)], tmp_path)
    assert rows[0]["model_patch"] == DIFF and "is not in" in warnings[0]


def test_the_whole_patch_is_written_beside_the_results_redacted(tmp_path: Path) -> None:
    whole = (DIFF + "+token sk-secret-value-123456\n").encode()
    patch = Patch(diff=DIFF, bytes=len(whole), truncated=True, files_total=2, kept_files=1, whole=whole)
    run = SimpleNamespace(run_id="abc123", patch=patch)
    keep_whole_patch(run, tmp_path, Redactor(["sk-secret-value-123456"]))
    written = (tmp_path / "patches" / "abc123.diff").read_text()
    assert "sk-secret" not in written and "+token ***" in written
    assert patch.to_dict()["whole"] == "patches/abc123.diff" and "the whole is patches/abc123.diff" in patch.note()
    small = SimpleNamespace(run_id="def", patch=Patch(diff=DIFF, bytes=len(DIFF)))
    keep_whole_patch(small, tmp_path, Redactor())
    assert not (tmp_path / "patches" / "def.diff").exists()


# --------------------------------------------------------------------------- the command


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_command_writes_predictions_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = write(tmp_path / "run" / "results.jsonl", [rec("p", "a"), rec("p", "a", 2)])
    out = tmp_path / "preds" / "preds.jsonl"
    assert main(["export", "--format", "swebench", str(results.parent), "-o", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [sorted(line) for line in lines] == [["instance_id", "model_name_or_path", "model_patch"]] * 2
    assert [line["instance_id"] for line in lines] == ["p-r1", "p-r2"]
    assert "written: " in capsys.readouterr().err
    assert main(["export", "--format", "swebench", str(results)]) == 0  # to stdout
    assert [json.loads(line)["instance_id"] for line in capsys.readouterr().out.splitlines()] == ["p-r1", "p-r2"]


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        (lambda d: d / "missing.jsonl", "missing.jsonl: no such file: give a results.jsonl"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "a folder without results.jsonl"),
        (lambda d: (d / "x.jsonl").write_text("not json\n[1]\n") and d / "x.jsonl", "x.jsonl: no run records in it"),
        (lambda d: write(d / "r.jsonl", [rec(outcome="infrastructure")]), "no run with a patch to export"),
    ],
    ids=["missing", "empty-folder", "not-records", "nothing-to-export"],
)
def test_bad_input_is_a_usage_error_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: Any, said: str
) -> None:
    path = setup(tmp_path)
    assert main(["export", "--format", "swebench", str(path)]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("agentbench export: ") and said in last and "Traceback" not in err


def test_an_unwritable_output_and_a_bad_format_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write(tmp_path / "results.jsonl", [rec()])
    (tmp_path / "taken").mkdir()
    assert main(["export", "--format", "swebench", str(results), "-o", str(tmp_path / "taken")]) == 2
    assert "-o " in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--format", "nope", str(results)])
    assert exit_info.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_without_results_the_newest_run_is_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--format", "swebench"]) == 2
    assert "no RESULTS given and no run under" in capsys.readouterr().err
    import os

    older = write(tmp_path / ".agentbench" / "runs" / "1" / "results.jsonl", [rec("old")])
    write(tmp_path / ".agentbench" / "runs" / "2" / "results.jsonl", [rec("new")])
    os.utime(older.parent, (1, 1))
    assert main(["export", "--format", "swebench"]) == 0
    assert json.loads(capsys.readouterr().out)["instance_id"] == "new"


# --------------------------------------------------------------------------- from a real run


@pytest.fixture
def folder(pytester: pytest.Pytester, user_folder: Path) -> Path:
    for entry in user_folder.iterdir():
        shutil.move(str(entry), pytester.path / entry.name)
    return pytester.path


def test_a_run_exports_a_patch_that_solves_the_packet(pytester: pytest.Pytester, folder: Path, tmp_path: Path) -> None:
    sandbox = "local" if bwrap_status()[0] else "unsafe-local"
    result = pytester.runpytest(
        "--models-file", "models.yaml", "--models=a,b", "--packets", "packets", f"--sandbox={sandbox}",
        "--agentbench-results", "out", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    records = [json.loads(line) for line in (folder / "out" / "results.jsonl").read_text().splitlines()]
    assert all(r["patch"]["error"] is None and r["versions"]["server"]["engine"] == "scripted" for r in records)
    preds = folder / "preds.jsonl"
    assert main(["export", "--format", "swebench", str(folder / "out"), "-o", str(preds)]) == 0
    rows = {r["model_name_or_path"]: r for r in map(json.loads, preds.read_text().splitlines())}
    assert set(rows) == {"a", "b"} and rows["b"]["model_patch"] == ""  # noop changed nothing
    assert rows["a"]["instance_id"] == "bugfix-median" and "stats/core.py" in rows["a"]["model_patch"]
    work = tmp_path / "applied"
    shutil.copytree(BUGFIX / "repo", work)
    subprocess.run(["git", "apply", "-"], cwd=work, input=rows["a"]["model_patch"].encode(), check=True)
    shutil.copy(BUGFIX / "hidden" / "test_median_even.py", work / "tests" / "test_median_hidden.py")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=work)
    assert done.returncode == 0
