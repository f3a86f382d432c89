"""``agentbench size``: flags and config.json -> sizing.size_model -> format_sizing; errors name the flag."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pytest_agentbench.capacity.sizing import ModelArchitecture, format_sizing, size_model
from pytest_agentbench.cli import size as sizing_cli

LLAMA8B = ["--params", "8.03e9", "--layers", "32", "--heads", "32", "--kv-heads", "8", "--head-dim", "128"]
LLAMA8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "torch_dtype": "bfloat16",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = sizing_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_flags_print_format_sizing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *LLAMA8B, "--context", "32768", "--concurrency", "8", "--gpu", "H100-80GB")
    arch = ModelArchitecture(total_params=8.03e9, num_layers=32, num_attention_heads=32, num_kv_heads=8, head_dim=128)
    expected = format_sizing(size_model(arch, context_length=32768, concurrency=8, gpu="H100-80GB"))
    assert (code, err) == (0, "")
    assert out.rstrip("\n") == expected
    assert "Layout: tensor parallel 1 on 1 x H100-80GB" in out


def test_hf_config_gives_the_same_estimate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA8B_CONFIG))
    args = ["--context", "8192", "--concurrency", "4", "--gpu", "L4"]
    code_flags, out_flags, _ = run(capsys, *LLAMA8B, *args, "--name", "llama")
    code_file, out_file, _ = run(capsys, "--hf-config", str(tmp_path), "--params", "8.03B", *args, "--name", "llama")
    assert code_flags == code_file
    assert out_flags == out_file
    assert "GQA: 32 layers x 8 KV heads x 128 head dim" in out_file


def test_flags_override_the_config_and_dtype_sets_the_default_precision(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({**LLAMA8B_CONFIG, "torch_dtype": "float32"}))
    _, out, _ = run(capsys, "--hf-config", str(cfg), "--params", "8e9", "--context", "4096", "--layers", "16")
    assert "16 layers" in out and "x 4 B (fp32)" in out
    _, out, _ = run(capsys, "--hf-config", str(cfg), "--params", "8e9", "--context", "4096", "--precision", "fp8")
    assert "x 1 B (fp8)" in out


def test_multimodal_config_reads_text_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "model_type": "gemma3",
                "text_config": {
                    "num_hidden_layers": 26,
                    "num_attention_heads": 8,
                    "num_key_value_heads": 4,
                    "head_dim": 256,
                    "hidden_size": 1152,
                },
            }
        )
    )
    code, out, _ = run(capsys, "--hf-config", str(cfg), "--params", "1B", "--context", "4096")
    assert code == 0
    assert "26 layers x 4 KV heads x 256 head dim" in out


def test_mla_and_moe(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--params",
        "16B",
        "--active-params",
        "2.4B",
        "--layers",
        "27",
        "--heads",
        "16",
        "--mla-latent",
        "512",
        "--mla-rope",
        "64",
        "--context",
        "32768",
        "--gpu",
        "H100-80GB",
    )
    assert code == 0
    assert "MLA: 27 layers x (latent 512 + rope 64)" in out
    assert "2.40B active" in out


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (
            [
                "--params",
                "8",
                "--layers",
                "32",
                "--heads",
                "32",
                "--kv-heads",
                "8",
                "--head-dim",
                "128",
                "--context",
                "1024",
            ],
            "--params",
        ),
        ([*LLAMA8B[:2], "--layers", "0", *LLAMA8B[4:], "--context", "1024"], "--layers"),
        ([*LLAMA8B[:6], "--kv-heads", "5", "--head-dim", "128", "--context", "1024"], "--kv-heads"),
        ([*LLAMA8B, "--context", "0"], "--context"),
        ([*LLAMA8B], "--context"),
        ([*LLAMA8B, "--context", "1024", "--concurrency", "0"], "--concurrency"),
        ([*LLAMA8B, "--context", "1024", "--precision", "fp7"], "--precision"),
        ([*LLAMA8B, "--context", "1024", "--kv-precision", "int3"], "--kv-precision"),
        ([*LLAMA8B, "--context", "1024", "--gpu", "Z80"], "--gpu"),
        ([*LLAMA8B, "--context", "1024", "--gpu", "H100-80GB", "--tp", "3"], "--tp"),
        ([*LLAMA8B, "--context", "1024", "--tp", "2"], "--tp"),
        ([*LLAMA8B, "--context", "1024", "--overhead", "1.5"], "--overhead"),
        ([*LLAMA8B, "--context", "1024", "--gpu-memory-utilization", "0"], "--gpu-memory-utilization"),
        (["--layers", "32", "--heads", "32", "--kv-heads", "8", "--head-dim", "128", "--context", "1024"], "--params"),
        (["--params", "8e9", "--layers", "32", "--kv-heads", "8", "--head-dim", "128", "--context", "1024"], "--heads"),
        ([*LLAMA8B, "--mla-latent", "512", "--mla-rope", "64", "--context", "1024"], "--kv-heads/--head-dim"),
        (["--params", "8e9", "--layers", "32", "--heads", "32", "--context", "1024"], "--kv-heads/--head-dim"),
    ],
)
def test_errors_are_usage_errors_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith(f"agentbench size: error: {flag}"), err


def test_tensor_parallel_across_mig_slices_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *LLAMA8B, "--context", "8192", "--gpu", "MIG 3g.40gb", "--tp", "2")
    assert code == 2
    assert "--tp: 2 on MIG 3g.40gb is refused" in err
    assert "across MIG slices" in err
    code, out, _ = run(capsys, *LLAMA8B, "--context", "8192", "--gpu", "MIG 3g.40gb")
    assert code == 0 and "(MIG slice)" in out and "TP 2" not in out


def test_too_big_for_a_mig_slice_names_the_gpu_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        "--params",
        "70e9",
        "--layers",
        "80",
        "--heads",
        "64",
        "--kv-heads",
        "8",
        "--head-dim",
        "128",
        "--context",
        "8192",
        "--gpu",
        "MIG 1g.10gb",
    )
    assert code == 2
    assert err.startswith("agentbench size: error: --gpu: ") and "MIG" in err


def test_does_not_fit_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--params",
        "671B",
        "--active-params",
        "37B",
        "--layers",
        "61",
        "--heads",
        "128",
        "--mla-latent",
        "512",
        "--mla-rope",
        "64",
        "--context",
        "131072",
        "--concurrency",
        "16",
        "--gpu",
        "H200",
    )
    assert code == 1
    assert "Layout: none fits" in out


def test_memory_only_without_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *LLAMA8B, "--context", "8192")
    assert code == 0
    assert "GPU:" not in out and "total" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *LLAMA8B, "--context", "32768", "--concurrency", "8", "--gpu", "H100-80GB", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["fits"] is True and data["tensor_parallel"] == 1
    assert data["kv_bytes_per_token"] == 2 * 32 * 8 * 128 * 2
    assert data["arch"]["attention"] == "GQA"


def test_hf_config_problems(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "--hf-config", str(tmp_path / "nope.json"), "--params", "8e9", "--context", "1")
    assert code == 2 and "--hf-config:" in err and "not found" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "--hf-config", str(bad), "--params", "8e9", "--context", "1")
    assert code == 2 and "--hf-config: cannot read" in err
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128}))
    code, _, err = run(capsys, "--hf-config", str(partial), "--params", "8e9", "--context", "1024")
    assert code == 2 and "has no 'num_hidden_layers'; give --layers" in err
    code, out, _ = run(capsys, "--hf-config", str(partial), "--params", "8e9", "--context", "1024", "--layers", "32")
    assert code == 0 and "32 layers" in out


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8e9", 8e9),
        ("8030000000", 8.03e9),
        ("8B", 8e9),
        ("8.03b", 8.03e9),
        ("560M", 560e6),
        ("1.5T", 1.5e12),
        ("7_000_000_000", 7e9),
    ],
)
def test_parse_count(text: str, value: float) -> None:
    assert sizing_cli.parse_count(text) == pytest.approx(value)


def test_bad_count_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        sizing_cli.main(["--params", "lots", "--context", "1"])
    assert exc.value.code == 2
    assert "--params" in capsys.readouterr().err


def test_add_parser_registers_size() -> None:
    parser = argparse.ArgumentParser(prog="agentbench")
    sub = parser.add_subparsers(dest="command", required=True)
    sizing_cli.add_parser(sub)
    args = parser.parse_args(["size", *LLAMA8B, "--context", "4096"])
    assert args.func is sizing_cli.run_cli
    assert args.func(args) == 0
