"""agentbench probe against the scripted server (a test double): the table says what works and how."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_agentbench.cli import main

from .conftest import REPO


def test_probe_all_pass_and_says_which_call_the_parser_recovered(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["probe", "scripted-probe", "--models-file", str(REPO / "models.yaml")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "6/6 checks passed" in out
    assert "PASS  one tool call" in out and "recovered from text by the parser" in out
    assert "native tool_calls, TTFT" in out
    assert "scripted test double, not a model" in out


def test_probe_failures_name_the_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.yaml").write_text("conversations:\n  - responses: [{status: 500, error: broken}]\n")
    (tmp_path / "models.yaml").write_text(
        "models:\n  bad:\n    model: m\n    retries: {server_error: 0}\n    serve: {engine: scripted, script: s.yaml}\n"
    )
    rc = main(["probe", "bad", "--models-file", str(tmp_path / "models.yaml")])
    out = capsys.readouterr().out
    assert rc == 1 and "0/6 checks passed" in out and "FAIL  plain answer" in out and "server_error" in out


def test_probe_unknown_alias(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "nope", "--models-file", str(REPO / "models.yaml")]) == 2
    assert "unknown alias(es) 'nope'" in capsys.readouterr().err
