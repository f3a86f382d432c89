"""Goodput and where the SLO is written: the Slo type, models.yaml ``slo:``, the ini, the flags, and the
sweep's output (the load's is in test_load.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from pytest_agentbench.capacity.latency import RequestTiming, goodput, request_stats
from pytest_agentbench.capacity.slo import Slo, parse_goodput, slo_from_mapping
from pytest_agentbench.capacity.slo_sources import find_ini, ini_slo, resolve_slo
from pytest_agentbench.errors import ConfigError, ModelsFileError
from pytest_agentbench.models.registry import load_models

pytest_plugins = ["pytester"]


def timing(ttft: float | None, tpot: float | None, e2e: float | None = 1.0, ok: bool = True) -> RequestTiming:
    return RequestTiming(
        ok=ok, ttft_s=ttft, tpot_s=tpot, e2e_s=e2e, completion_tokens=10, error=None if ok else "timeout"
    )


def test_a_request_is_good_when_it_meets_every_threshold_as_vllm_bench_counts() -> None:
    slo = Slo(ttft_s=0.5, tpot_s=0.05)
    assert slo.meets(0.5, 0.05, 99.0)  # at the threshold is within it (vllm bench: slo >= value)
    assert not slo.meets(0.51, 0.01, 1.0) and not slo.meets(0.1, 0.051, 1.0)
    assert slo.meets(0.1, None, 1.0)  # one output token: no TPOT, counted as meeting it (vllm bench: tpot 0)
    assert not slo.meets(None, 0.01, 1.0)  # not streamed: no TTFT, never good for a TTFT threshold
    assert Slo(e2e_s=2.0).meets(None, None, 2.0) and not Slo(e2e_s=2.0).meets(None, None, 2.1)


def test_goodput_share_and_rate_by_hand() -> None:
    slo = Slo(ttft_s=0.2, tpot_s=0.02)
    timings = [
        timing(0.1, 0.01),  # good
        timing(0.3, 0.01),  # TTFT too slow
        timing(0.1, 0.03),  # TPOT too slow
        timing(0.2, None),  # good: single token
        timing(None, None, ok=False),  # failed: not completed, not good
    ]
    g = goodput(timings, slo, wall_s=4.0)
    assert g == {"good": 2, "completed": 4, "share": 0.5, "rate_per_s": 0.5, "slo": slo.describe_goodput()}
    assert goodput(timings, Slo(ttft_p50_s=1.0), 4.0) is None  # no per-request half: no goodput
    stats = request_stats(timings, wall_s=4.0, slo=slo)
    assert stats["goodput"] == g and stats["completed"] == 4 and stats["failures_by_class"] == {"timeout": 1}
    assert stats["ttft_s"]["p50"] == pytest.approx(0.15) and stats["ttft_s"]["n"] == 4
    assert stats["request_throughput"] == 1.0


def test_slo_forms_and_their_errors() -> None:
    assert slo_from_mapping({"ttft_p50_s": 2, "tpot_s": 0.05}, "x") == Slo(ttft_p50_s=2.0, tpot_s=0.05)
    assert parse_goodput(["ttft:500", "tpot:50"]) == Slo(ttft_s=0.5, tpot_s=0.05)
    assert parse_goodput("e2el:4000") == Slo(e2e_s=4.0)
    for raw, message in (
        ({"ttft": 1}, "unknown key(s) ttft; allowed: ttft_p50_s"),
        ({"ttft_s": 0}, "x.ttft_s: expected a number > 0"),
        ({"ttft_s": "fast"}, "x.ttft_s: expected a number > 0"),
        ({"tpot_s": True}, "x.tpot_s: expected a number > 0"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            slo_from_mapping(raw, "x")
    for text in ("ttft=5", "itl:5", "ttft:-1", "ttft:", ""):
        with pytest.raises(ConfigError, match="--goodput"):
            parse_goodput(text)
    assert Slo(ttft_p50_s=1).over(Slo(ttft_p50_s=9, tps_p50=3)) == Slo(ttft_p50_s=1, tps_p50=3)
    assert "goodput: TTFT <= 500 ms" in Slo(ttft_p50_s=2, ttft_s=0.5).describe()


def test_models_yaml_slo_key_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"

    def write(slo: object) -> None:
        path.write_text(
            yaml.safe_dump({"models": {"a": {"model": "m", "base_url": "http://127.0.0.1:1/v1", "slo": slo}}})
        )

    write({"ttft_p50_s": 2, "tps_p50": 20, "ttft_s": 4, "tpot_s": 0.1, "e2e_s": 60})
    assert load_models(path)["a"].slo == Slo(2.0, 20.0, 4.0, 0.1, 60.0)
    write(None)
    assert load_models(path)["a"].slo is None
    for bad, message in (({"p50": 1}, "models.a.slo: unknown key(s) p50"), ([1], "models.a.slo: expected a mapping")):
        write(bad)
        with pytest.raises(ModelsFileError, match=re.escape(message)) as exc:
            load_models(path)
        assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pytest.ini", "[pytest]\nagentbench_slo = ttft_p50_s=2 tpot_s=0.1\n"),
        ("pyproject.toml", '[tool.pytest.ini_options]\nagentbench_slo = "ttft_p50_s=2 tpot_s=0.1"\n'),
        ("tox.ini", "[tox]\nenvlist = py\n[pytest]\nagentbench_slo = ttft_p50_s=2, tpot_s=0.1\n"),
        ("setup.cfg", "[tool:pytest]\nagentbench_slo =\n    ttft_p50_s=2\n    tpot_s=0.1\n"),
    ],
)
def test_the_ini_slo_is_read_where_pytest_reads_its_ini(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)
    slo, where = ini_slo(below)  # found from a folder below, as pytest finds it
    assert slo == Slo(ttft_p50_s=2.0, tpot_s=0.1) and where == str(tmp_path / name)


def test_ini_precedence_and_errors(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text("[tool:pytest]\nagentbench_slo = ttft_s=9\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # not pytest's: skipped
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -q\n")  # pytest's, without the key: it wins, empty
    assert find_ini(tmp_path)[0] == tmp_path / "pytest.ini"
    assert ini_slo(tmp_path) == (Slo(), None)
    (tmp_path / "pytest.ini").write_text("[pytest]\nagentbench_slo = ttft_s\n")
    with pytest.raises(ConfigError, match=r"pytest.ini: agentbench_slo: 'ttft_s' is not key=value"):
        ini_slo(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\nagentbench_slo = ttft=1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        ini_slo(tmp_path)


def test_command_line_over_models_yaml_over_ini() -> None:
    slo, sources = resolve_slo(
        Slo(ttft_p50_s=1.0),
        Slo(ttft_p50_s=5.0, tpot_s=0.2),
        "m.yaml: models.a",
        Slo(tpot_s=0.9, e2e_s=30.0),
        "/p/pytest.ini",
    )
    assert slo == Slo(ttft_p50_s=1.0, tpot_s=0.2, e2e_s=30.0)
    assert sources == (
        "ttft_p50_s from the command line",
        "tpot_s from m.yaml: models.a.slo",
        "e2e_s from /p/pytest.ini: agentbench_slo",
    )


def test_the_plugin_knows_the_capacity_ini_keys(pytester: pytest.Pytester) -> None:
    """agentbench_slo and agentbench_keep_requests in a project's ini: no unknown-option warning."""
    pytester.makeini("[pytest]\nagentbench_slo = ttft_p50_s=2\nagentbench_keep_requests = true\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("-W", "error::pytest.PytestConfigWarning", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "Unknown config option" not in result.stdout.str()


def test_the_sweep_shows_goodput_beside_the_medians(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_agentbench.cli import sweep as sweep_cli
    from pytest_agentbench.serving.scripted import ScriptedServer

    from .test_sweep import SCRIPT, make_packet, models_file

    monkeypatch.chdir(tmp_path)
    make_packet(tmp_path / "packets", "touch-pass", "[sweep-pass]")
    with ScriptedServer(SCRIPT, model_names=["sweep-double"]) as srv:
        models = models_file(tmp_path, srv.base_url, slo={"ttft_p50_s": 5.0, "tpot_s": 1.0})
        argv = [
            "--models-file",
            str(models),
            "--models",
            "local",
            "--devs",
            "1,2",
            "--packets",
            str(tmp_path / "packets"),
        ]
        code = sweep_cli.main([*argv, "--sandbox", "local", "--out", str(tmp_path / "out"), "--goodput", "ttft:5000"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert data["slo"]["ttft_s"] == 5.0 and data["slo"]["tpot_s"] == 1.0 and data["slo"]["ttft_p50_s"] == 5.0
    assert "ttft_s from the command line" in data["slo"]["sources"]
    for lv in data["levels"]:
        g = lv["client"]["goodput"]
        assert g["completed"] == lv["client"]["calls"] == 3 * lv["devs"] and g["good"] == g["completed"]
    assert "goodput (TTFT <= 5 s and TPOT <= 1 s per request): N=1 3/3" in out
    page = (tmp_path / "out" / "sweep.html").read_text()
    assert "<th>goodput</th>" in page and "goodput vs developers" in page and page.count("<svg") == 3
