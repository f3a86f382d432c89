"""The plugin from a user's point of view, through pytester."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import SCRIPTS, importorskip_extra

pytest_plugins = ["pytester"]


@pytest.fixture
def folder(pytester: pytest.Pytester, user_folder: Path) -> Path:
    for entry in user_folder.iterdir():
        shutil.move(str(entry), pytester.path / entry.name)
    return pytester.path


def test_help_lists_the_option_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*agentbench*",
            "*--models=ALIAS*",
            "*--models-file=PATH*",
            "*--packets=DIR*",
            "*--sandbox=*",
            "*--agent-timeout=SECONDS*",
            "*--repeats=N*",
            "*agentbench_models_file*",
        ]
    )


def test_collect_only_gives_one_item_per_packet_and_alias(pytester: pytest.Pytester, folder: Path) -> None:
    result = pytester.runpytest("--collect-only", "-q", "--models=a,b", "--packets", "packets")
    result.stdout.fnmatch_lines(
        [
            "packets/bugfix-median/packet.yaml::test_packet[bugfix-median-a]",
            "packets/bugfix-median/packet.yaml::test_packet[bugfix-median-b]",
            "2 tests collected*",
        ]
    )
    # the packet's own workspace tests and hidden tests are never collected
    assert "test_core" not in result.stdout.str() and "hidden" not in result.stdout.str()


def test_user_folder_good_passes_noop_fails_with_gate_id_and_exit(pytester: pytest.Pytester, folder: Path) -> None:
    result = pytester.runpytest(
        "--models-file",
        "models.yaml",
        "--models=a,b",
        "--packets",
        "packets",
        "--sandbox=local",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 of 2 gate(s) failed: regression*",
            "*gate 'regression': `python -m pytest -q -p no:cacheprovider tests/test_median_hidden.py` "
            "expected exit 0, got exit 1*",
            "*FAILED packets/bugfix-median/packet.yaml::test_packet?bugfix-median-b?*",
        ]
    )


def test_k_selects_by_alias(pytester: pytest.Pytester, folder: Path) -> None:
    result = pytester.runpytest("--models=a,b", "--packets", "packets", "--sandbox=local", "-k", "bugfix-median-a")
    result.assert_outcomes(passed=1, deselected=1)


@pytest.mark.slow
def test_ini_settings_are_used_and_cli_wins(pytester: pytest.Pytester, folder: Path) -> None:
    pytester.makeini("[pytest]\nagentbench_models = b\nagentbench_packets = packets\nagentbench_sandbox = local\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(failed=1)
    pytester.runpytest("--models=a", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_unknown_alias_is_a_usage_error_listing_known(pytester: pytest.Pytester, folder: Path) -> None:
    result = pytester.runpytest("--models=a,zz", "--packets", "packets")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown alias(es) 'zz'*defines: a, b*"])


def test_no_models_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--models=a")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs a models file*--models-file PATH*"])


def test_without_models_packets_are_skipped_with_the_fix(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)  # under CI=true this is a usage error (test_malformed_inputs.py)
    result = pytester.runpytest("--packets", "packets", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no model alias selected: pass --models=ALIAS*a, b*"])


def test_bad_packet_is_a_collection_error_naming_file_and_key(pytester: pytest.Pytester, folder: Path) -> None:
    yaml_path = folder / "packets" / "bugfix-median" / "packet.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("kind: bug-fix", "kind: bugfix"))
    result = pytester.runpytest("--models=a", "--packets", "packets")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*packet.yaml: kind: expected one of bug-fix*found 'bugfix'*"])


def test_dead_endpoint_is_an_error_naming_alias_and_url(pytester: pytest.Pytester, folder: Path) -> None:
    """Issue 15 changed this from a FAIL (model_error) to an ERROR: the model never answered
    (tests/test_infrastructure.py has the whole story: record, summary, reports)."""
    (folder / "models.yaml").write_text("models:\n  dead:\n    model: m\n    base_url: http://127.0.0.1:9/v1\n")
    result = pytester.runpytest("--models=dead", "--packets", "packets", "--sandbox=local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*EndpointUnreachable (infrastructure, not the model): alias 'dead': the endpoint http://127.0.0.1:9/v1*"]
    )


def test_api_key_never_appears_in_output_or_files(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-agentbench-SECRET-4242"
    monkeypatch.setenv("AB_SECRET_KEY", secret)
    (folder / "models.yaml").write_text(
        "models:\n  a:\n    model: scripted-good\n    api_key_env: AB_SECRET_KEY\n"
        "    serve: {engine: scripted, script: scripts/good}\n"
    )
    result = pytester.runpytest(
        "--models=a",
        "--packets",
        "packets",
        "--sandbox=local",
        "-rA",
        "-v",
        "--junitxml=out.xml",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    assert secret not in result.stdout.str() + result.stderr.str()
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_junit_properties(pytester: pytest.Pytester, folder: Path) -> None:
    pytester.runpytest("--models=a", "--packets", "packets", "--sandbox=local", "--junitxml=out.xml")
    xml = (folder / "out.xml").read_text()
    for prop in (
        'name="agentbench.outcome" value="finished"',
        'name="agentbench.passed" value="True"',
        'name="agentbench.alias" value="a"',
        'name="agentbench.sandbox" value="local"',
        'name="agentbench.gates_passed" value="2"',
    ):
        assert prop in xml


@pytest.mark.slow
def test_xdist_workers_share_the_controllers_server(pytester: pytest.Pytester, folder: Path) -> None:
    import re

    (folder / "packets" / "copy").mkdir()
    src = folder / "packets" / "bugfix-median"
    shutil.copytree(src, folder / "packets" / "copy" / "bugfix-median2")
    yaml_path = folder / "packets" / "copy" / "bugfix-median2" / "packet.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("id: bugfix-median", "id: bugfix-median2"))
    result = pytester.runpytest_subprocess(
        "--models=a,b",
        "--packets",
        "packets",
        "--sandbox=local",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "--junitxml=out.xml",
    )
    result.assert_outcomes(passed=2, failed=2)
    xml = (folder / "out.xml").read_text()
    urls = re.findall(r'name="agentbench.endpoint" value="([^"]+)"', xml)
    assert len(urls) == 4
    # one server per alias, started once by the controller: workers starting their own would give 4 URLs
    assert len(set(urls)) == 2


def test_repo_scripts_exist() -> None:
    assert (SCRIPTS / "good" / "bugfix-median.yaml").is_file()


def test_partial_trajectory_fails_exactly_the_regression_gate(pytester: pytest.Pytester, folder: Path) -> None:
    shutil.copytree(SCRIPTS / "partial", folder / "scripts" / "partial")
    (folder / "models.yaml").write_text(
        "models:\n  p:\n    model: scripted-partial\n    serve: {engine: scripted, script: scripts/partial}\n"
    )
    result = pytester.runpytest("--models=p", "--packets", "packets", "--sandbox=local", "--junitxml=out.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 of 2 gate(s) failed: regression*"])
    assert 'name="agentbench.gates_failed" value="regression"' in (folder / "out.xml").read_text()


@pytest.mark.slow
def test_results_jsonl_benchmark_html_summary_and_resume(pytester: pytest.Pytester, folder: Path) -> None:
    importorskip_extra("xdist", "xdist")
    import json

    args = ["--models=a,b", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(
        *args, "-n", "2", "--agentbench-results", "res", "--agentbench-html", "report.html"
    )
    result.assert_outcomes(passed=1, failed=1)
    records = [json.loads(line) for line in (folder / "res" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["alias"], r["passed"]) for r in records) == [("a", True), ("b", False)]
    assert len(list((folder / "res").glob("results-gw*.jsonl"))) >= 1  # per-worker files, merged
    bench = json.loads((folder / "res" / "benchmark.json").read_text())
    assert len(bench["benchmarks"]) == 2
    assert "<html" in (folder / "report.html").read_text().lower()
    result.stdout.fnmatch_lines(["*= agentbench =*", "*pass rate*", "*written: *results.jsonl"])
    # --resume skips the pairs already recorded
    again = pytester.runpytest(*args, "--resume", "res")
    again.assert_outcomes(deselected=2)


@pytest.mark.slow
def test_pytest_benchmark_gets_each_run_with_extra_info(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    importorskip_extra("pytest_benchmark", "benchmark")
    import json

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when this suite itself runs under xdist

    result = pytester.runpytest(
        "--models=a,b",
        "--packets",
        "packets",
        "--sandbox=local",
        "-p",
        "no:cacheprovider",
        "--benchmark-json=bench.json",
    )
    result.assert_outcomes(passed=1, failed=1)
    data = json.loads((folder / "bench.json").read_text())
    got = sorted((b["param"], b["extra_info"]["passed"], b["stats"]["rounds"]) for b in data["benchmarks"])
    assert got == [("bugfix-median-a", True, 1), ("bugfix-median-b", False, 1)]
    assert all(b["extra_info"]["gates_total"] == 2 for b in data["benchmarks"])


@pytest.mark.slow
def test_cli_report_and_merge_junit(pytester: pytest.Pytester, folder: Path) -> None:
    pytester.runpytest(
        "--models=a",
        "--packets",
        "packets",
        "--sandbox=local",
        "-p",
        "no:cacheprovider",
        "--agentbench-results",
        "ra",
        "--junitxml=a.xml",
    )
    pytester.runpytest(
        "--models=b",
        "--packets",
        "packets",
        "--sandbox=local",
        "-p",
        "no:cacheprovider",
        "--agentbench-results",
        "rb",
        "--junitxml=b.xml",
    )
    import sys

    agentbench = (sys.executable, "-m", "pytest_agentbench")
    report = pytester.run(*agentbench, "report", "ra", "--html", "r.html")
    assert report.ret == 0
    report.stdout.fnmatch_lines(["*pass rate*", "written: *r.html"])
    merged = pytester.run(*agentbench, "merge-junit", "a.xml", "b.xml", "-o", "all.xml")
    assert merged.ret == 0
    text = merged.stdout.str()
    assert "\na (test double)" in "\n" + text and "\nb (test double)" in text and (folder / "all.xml").is_file()
    missing = pytester.run(*agentbench, "report", "nope")
    assert missing.ret == 2 and "not found" in missing.stderr.str()


@pytest.mark.slow
@pytest.mark.docker
def test_docker_sandbox_full_run_leaves_no_container(
    pytester: pytest.Pytester, folder: Path, docker_engine: None
) -> None:
    docker = shutil.which("docker") or "docker"
    before = subprocess.run(
        [docker, "ps", "-aq", "--filter", "label=agentbench.run"], capture_output=True, text=True
    ).stdout.split()
    result = pytester.runpytest("--models=a,b", "--packets", "packets", "--sandbox=docker", "--junitxml=out.xml")
    result.assert_outcomes(passed=1, failed=1)
    assert 'name="agentbench.sandbox" value="docker"' in (folder / "out.xml").read_text()
    after = subprocess.run(
        [docker, "ps", "-aq", "--filter", "label=agentbench.run"], capture_output=True, text=True
    ).stdout.split()
    assert set(after) <= set(before)


def test_sandbox_docker_without_engine_is_a_usage_error(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{folder}/no-such-docker.sock")
    result = pytester.runpytest_subprocess("--models=a", "--packets", "packets", "--sandbox=docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sandbox=docker:*docker-up*"])
