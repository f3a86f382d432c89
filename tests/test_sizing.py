"""GPU memory sizing, checked against examples worked by hand in the comments.

Constants used below (bytes):
    H100-80GB: nvidia-smi memory.total 81,559 MiB = 85,520,809,984 B; x 0.9 = 76,968,728,985.6 usable
    H200:      143,771 MiB = 150,754,820,096 B; x 0.9 = 135,679,338,086.4 usable
    L4:        23,034 MiB = 24,153,358,336 B; x 0.9 = 21,738,022,502.4 usable
Overhead is the default 15% of (weights + KV cache) unless a test says otherwise.
"""

from __future__ import annotations

import math

import pytest

from pytest_agentbench.capacity.gpus import GPU_PRESETS, PRECISION_BYTES, GpuSpec, mig_slice, parse_gpu, precision_bytes
from pytest_agentbench.capacity.layouts import LayoutPlan, plan_layouts, serve_block
from pytest_agentbench.capacity.sizing import ModelArchitecture, format_sizing, size_model
from pytest_agentbench.errors import ConfigError

H100_USABLE = 81559 * 2**20 * 0.9
H200_USABLE = 143771 * 2**20 * 0.9

# Llama-3-8B-like: 32 layers, 32 query heads, 8 KV heads (GQA), head_dim 128, 8.03e9 params
LLAMA_8B = ModelArchitecture(
    total_params=8.03e9, num_layers=32, num_attention_heads=32, num_kv_heads=8, head_dim=128, name="Llama-3-8B"
)
# Llama-3-70B-like: 80 layers, 64 query heads, 8 KV heads, head_dim 128, 70.6e9 params
LLAMA_70B = ModelArchitecture(
    total_params=70.6e9, num_layers=80, num_attention_heads=64, num_kv_heads=8, head_dim=128, name="Llama-3-70B"
)
# DeepSeek-V3: 671e9 params (37e9 active), 61 layers, 128 heads, MLA kv_lora_rank 512 + qk_rope_head_dim 64
DEEPSEEK_V3 = ModelArchitecture(
    total_params=671e9,
    active_params=37e9,
    num_layers=61,
    num_attention_heads=128,
    mla_latent_dim=512,
    mla_rope_dim=64,
    name="DeepSeek-V3",
)


# --------------------------------------------------------------------------- KV cache and weights


def test_llama_8b_kv_per_token_is_128_kib() -> None:
    # 2 (K and V) x 32 layers x 8 KV heads x 128 dims x 2 bytes (bf16) = 131,072 B = 128 KiB
    result = size_model(LLAMA_8B, context_length=8192)
    assert LLAMA_8B.kv_values_per_token() == 65_536
    assert result.kv_bytes_per_token == 131_072
    assert result.kv_bytes_per_token / 1024 == 128
    # fp8 KV halves it: 65,536 B
    assert size_model(LLAMA_8B, context_length=8192, kv_cache_precision="fp8").kv_bytes_per_token == 65_536
    assert LLAMA_8B.attention == "GQA"


def test_llama_8b_bf16_weights_are_about_16_gb() -> None:
    # 8.03e9 x 2 B = 16.06e9 B ~ 16 GB (14.96 GiB)
    result = size_model(LLAMA_8B, context_length=8192)
    assert result.weights_bytes == pytest.approx(16.06e9)
    assert result.active_weights_bytes is None


def test_llama_8b_totals_and_layout_on_one_h100() -> None:
    # KV: 131,072 B x 8,192 tokens x 8 sequences = 8,589,934,592 B (8 GiB)
    # overhead: 0.15 x (16.06e9 + 8,589,934,592) = 3,697,490,188.8
    # total: 16.06e9 + 8,589,934,592 + 3,697,490,188.8 = 28,347,424,780.8 < 76.97e9 -> TP 1
    result = size_model(LLAMA_8B, context_length=8192, concurrency=8, gpu="H100-80GB")
    assert result.kv_cache_bytes == 8 * 2**30
    assert result.overhead_bytes == pytest.approx(3_697_490_188.8)
    assert result.total_bytes == pytest.approx(28_347_424_780.8)
    assert result.usable_bytes_per_gpu == pytest.approx(H100_USABLE)
    assert result.min_gpus == 1
    assert result.tensor_parallel == 1
    assert result.fits is True
    assert result.bytes_per_gpu == pytest.approx(result.total_bytes)
    # full-context sequences that fit: (76,968,728,985.6 - 1.15 x 16.06e9) / (1.15 x 131,072 x 8,192)
    #   = 58,499,728,985.6 / 1,234,803,097.6 = 47.4 -> 47
    assert result.max_concurrency == 47
    assert result.notes == ()


def test_llama_70b_needs_tp4_on_h100_because_tp_is_a_power_of_two() -> None:
    # KV/token: 2 x 80 x 8 x 128 x 2 = 327,680 B (320 KiB); x 8,192 x 4 = 10,737,418,240 B (10 GiB)
    # weights 70.6e9 x 2 = 141.2e9 ; total 1.15 x 151,937,418,240 = 174,728,030,976
    # pooled: 174.73e9 / 76.97e9 = 2.27 -> 3 GPUs, but TP 3 is not allowed
    # TP 2: 1.15 x (70.6e9 + 10,737,418,240 / 2) = 87,364,015,488 > usable -> no
    # TP 4: 1.15 x (35.3e9 + 10,737,418,240 / 4) = 43,682,007,744 -> fits
    result = size_model(LLAMA_70B, context_length=8192, concurrency=4, gpu="H100-80GB")
    assert result.kv_bytes_per_token == 327_680
    assert result.total_bytes == pytest.approx(174_728_030_976)
    assert result.min_gpus == 3
    assert result.tensor_parallel == 4
    by_tp = {o.tensor_parallel: o for o in result.options}
    assert by_tp[2].bytes_per_gpu == pytest.approx(87_364_015_488)
    assert not by_tp[2].fits and by_tp[2].problem is None
    assert by_tp[4].bytes_per_gpu == pytest.approx(43_682_007_744)
    assert result.bytes_per_gpu == pytest.approx(43_682_007_744)
    assert any("needs 3 GPU(s)" in note and "TP 4" in note for note in result.notes)


def test_671b_fp8_needs_about_671_gb_for_weights_alone() -> None:
    # 671e9 params x 1 byte (FP8) = 671e9 B = 671 GB before any KV cache
    result = size_model(DEEPSEEK_V3, context_length=4096, weights_precision="fp8")
    assert result.weights_bytes == pytest.approx(671e9)
    # MoE: all experts are resident; the 37e9 active params are what each token reads
    assert result.active_weights_bytes == pytest.approx(37e9)


def test_deepseek_v3_mla_kv_per_token() -> None:
    # MLA caches one latent per token per layer: (512 + 64) x 61 layers x 2 B = 576 x 122 = 70,272 B
    # (68.6 KiB; a GQA model of this depth with 8 KV heads x 128 dims would need 2 x 61 x 8 x 128 x 2 = 249,856 B)
    result = size_model(DEEPSEEK_V3, context_length=4096, weights_precision="fp8")
    assert DEEPSEEK_V3.kv_values_per_token() == 35_136
    assert result.kv_bytes_per_token == 70_272
    assert DEEPSEEK_V3.attention == "MLA"


def test_deepseek_v3_fp8_fits_8x_h200_not_8x_h100() -> None:
    # KV: 70,272 B x 32,768 tokens x 8 sequences = 70,272 x 262,144 = 18,421,383,168 B
    # MLA: the latent is not split by TP, every GPU holds all of it.
    # TP 8 per GPU: 1.15 x (671e9 / 8 + 18,421,383,168) = 1.15 x 102,296,383,168 = 117,640,840,643.2
    #   H200 usable 135.68e9 -> fits ; H100 usable 76.97e9 -> does not (the published picture:
    #   one 8 x H200 node, or two 8 x H100 nodes with pipeline parallel)
    h200 = size_model(DEEPSEEK_V3, context_length=32768, concurrency=8, weights_precision="fp8", gpu="H200")
    assert h200.kv_cache_bytes == 18_421_383_168
    assert h200.tensor_parallel == 8
    assert h200.bytes_per_gpu == pytest.approx(117_640_840_643.2)
    assert h200.usable_bytes_per_gpu == pytest.approx(H200_USABLE)
    # pooled: 1.15 x (671e9 + 18,421,383,168) = 792,834,590,643.2 / 135.68e9 = 5.84 -> 6
    assert h200.min_gpus == 6
    # (135,679,338,086.4 - 1.15 x 83.875e9) / (1.15 x 70,272 x 32,768) = 39,223,088,086.4 / 2,648,073,830.4
    #   = 14.8 -> 14 full-context sequences
    assert h200.max_concurrency == 14
    assert any("MLA" in note for note in h200.notes)

    h100 = size_model(DEEPSEEK_V3, context_length=32768, concurrency=8, weights_precision="fp8", gpu="H100-80GB")
    assert h100.fits is False
    assert h100.tensor_parallel is None and h100.bytes_per_gpu is None and h100.max_concurrency is None
    assert h100.min_gpus == 11  # 792.83e9 / 76.97e9 = 10.3 -> 11: more than one 8-GPU node
    assert any("does not fit on up to 8 x H100-80GB" in note and "pipeline parallel" in note for note in h100.notes)


def test_overhead_fraction_is_a_parameter() -> None:
    # 20%: total = 1.2 x (16.06e9 + 131,072 x 1,000) = 1.2 x 16,191,072,000 = 19,429,286,400
    result = size_model(LLAMA_8B, context_length=1000, overhead_fraction=0.2)
    assert result.total_bytes == pytest.approx(19_429_286_400)
    none = size_model(LLAMA_8B, context_length=1000, overhead_fraction=0)
    assert none.total_bytes == pytest.approx(16_191_072_000)


def test_without_a_gpu_there_is_no_layout() -> None:
    result = size_model(LLAMA_8B, context_length=8192)
    assert result.fits is None
    assert result.gpu is None and result.min_gpus is None and result.tensor_parallel is None
    assert result.options == ()


# --------------------------------------------------------------------------- tensor parallel rules


def test_kv_heads_are_replicated_when_tp_exceeds_them() -> None:
    # 4 KV heads at TP 8: vLLM replicates each KV head on 2 GPUs, so the KV cache splits only 4 ways
    # KV/token = 2 x 48 x 4 x 128 x 2 B = 98,304 B; x 32,768 tokens x 16 sequences = 51,539,607,552 B
    # TP 8 per GPU: 1.15 x (60e9 / 8 + 51,539,607,552 / 4) = 1.15 x 20,384,901,888 = 23,442,637,171.2
    arch = ModelArchitecture(
        total_params=30e9, num_layers=48, num_attention_heads=32, num_kv_heads=4, head_dim=128, name="gqa-4kv"
    )
    result = size_model(arch, context_length=32768, concurrency=16, gpu="H100-80GB", tensor_parallel=8)
    assert result.kv_cache_bytes == 51_539_607_552
    assert result.bytes_per_gpu == pytest.approx(23_442_637_171.2)
    assert result.fits is True
    assert any("TP 8 > 4 KV heads: vLLM replicates KV heads" in note for note in result.notes)


def test_heads_that_tp_cannot_divide_block_the_layout() -> None:
    # 6 heads (MHA), 24 layers, 20e9 params bf16 on L4 (21.74e9 usable), 4,096 tokens x 1:
    # KV = 2 x 24 x 6 x 128 x 2 x 4,096 = 301,989,888 B
    # TP 2: 1.15 x (20e9 + 150,994,944) = 23.17e9 > usable -> no
    # TP 4: 1.15 x (10e9 + 75,497,472) = 11.59e9 would fit, but 4 does not divide 6 heads; same for 8
    arch = ModelArchitecture(
        total_params=20e9, num_layers=24, num_attention_heads=6, num_kv_heads=6, head_dim=128, name="six-heads"
    )
    result = size_model(arch, context_length=4096, gpu="L4")
    assert arch.attention == "MHA"
    assert result.fits is False
    by_tp = {o.tensor_parallel: o for o in result.options}
    assert by_tp[2].problem is None and not by_tp[2].fits
    assert by_tp[4].problem == "4 does not divide the 6 attention heads"
    assert by_tp[4].bytes_per_gpu == pytest.approx(1.15 * (10e9 + 75_497_472))
    assert any(
        note.startswith("no TP degree works: TP 4 would fit but 4 does not divide the 6 attention heads")
        for note in result.notes
    )


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (3, r"tensor_parallel: expected one of 1, 2, 4, 8"),
        (16, r"tensor_parallel: expected one of 1, 2, 4, 8 \(a power of two within one node\), found 16"),
        (4, r"cannot shard kv6 4 ways: 4 does not divide the 6 KV heads"),
        (8, r"cannot shard kv6 8 ways: the 6 KV heads cannot be replicated evenly over 8 GPUs"),
    ],
)
def test_requested_tp_must_be_one_vllm_accepts(tp: int, message: str) -> None:
    arch = ModelArchitecture(
        total_params=7e9, num_layers=32, num_attention_heads=48, num_kv_heads=6, head_dim=128, name="kv6"
    )
    with pytest.raises(ConfigError, match=message):
        size_model(arch, context_length=4096, gpu="H100-80GB", tensor_parallel=tp)


def test_requested_tp_that_does_not_fit_is_a_finding_not_an_error() -> None:
    result = size_model(LLAMA_70B, context_length=8192, concurrency=4, gpu="H100-80GB", tensor_parallel=2)
    assert result.fits is False
    assert [o.tensor_parallel for o in result.options] == [2]
    assert any(note.startswith("TP 2 does not fit: 87.36 GB per GPU, 76.97 GB usable") for note in result.notes)


def test_requested_tp_that_fits() -> None:
    result = size_model(LLAMA_70B, context_length=8192, concurrency=4, gpu="H100-80GB", tensor_parallel=8)
    assert result.tensor_parallel == 8 and result.fits is True


def test_tp_needs_a_gpu() -> None:
    with pytest.raises(ConfigError, match="tensor_parallel: needs a gpu"):
        size_model(LLAMA_8B, context_length=8192, tensor_parallel=2)


# --------------------------------------------------------------------------- MIG


def test_small_model_fits_one_mig_slice() -> None:
    # int4 8B: 8.03e9 x 0.5 = 4.015e9 B ; fp8 KV 65,536 B x 4,096 = 268,435,456 B
    # total 1.15 x 4,283,435,456 = 4,925,950,774.4 ; slice 1g.10gb = 10e9 B x 0.9 = 9e9 usable -> TP 1
    result = size_model(
        LLAMA_8B, context_length=4096, weights_precision="int4", kv_cache_precision="fp8", gpu="MIG 1g.10gb"
    )
    assert result.gpu is not None and result.gpu.mig
    assert result.usable_bytes_per_gpu == pytest.approx(9e9)
    assert result.total_bytes == pytest.approx(4_925_950_774.4)
    assert result.tensor_parallel == 1
    assert [o.tensor_parallel for o in result.options] == [1]  # no TP across slices is even considered


def test_model_too_big_for_a_mig_slice_is_refused() -> None:
    # bf16 8B needs ~18.5e9 B before KV; 1g.10gb offers 9e9 -> it would need TP across slices
    with pytest.raises(ConfigError, match=r"tensor parallel across MIG slices is refused.*Fix: a larger slice"):
        size_model(LLAMA_8B, context_length=8192, gpu="H100-80GB MIG 1g.10gb")


def test_tp_over_mig_slices_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"tensor_parallel: 2 on MIG 3g.40gb is refused"):
        size_model(LLAMA_8B, context_length=8192, gpu=mig_slice("3g.40gb"), tensor_parallel=2)


def test_mig_uuid_does_not_say_its_size() -> None:
    with pytest.raises(ConfigError, match=r"MIG device UUID.*'MIG 3g.40gb'"):
        parse_gpu("MIG-c788539f-c1ea-5a36-8b4d-9b07d024b1bb")


def test_mig_slice_sizes() -> None:
    # nominal GB read as decimal: 40e9 B = 37.25 GiB (nvidia-smi shows 39.5 GiB on an H100: safe side)
    assert mig_slice("3g.40gb").memory_gib == pytest.approx(40e9 / 2**30)
    assert mig_slice("3g.40gb", memory_gib=39.5).memory_gib == 39.5
    assert parse_gpu("MIG 1c.3g.40gb").mig
    with pytest.raises(ConfigError, match="is not a MIG profile"):
        mig_slice("3g")


# --------------------------------------------------------------------------- GPUs and precisions


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("H100-80GB", "H100-80GB"),
        ("h100", "H100-80GB"),
        ("NVIDIA H100 80GB HBM3", "H100-80GB"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("A100 80GB PCIe", "A100-80GB"),
        ("h200", "H200"),
        ("NVIDIA L40S", "L40S"),
        ("l4", "L4"),
    ],
)
def test_parse_gpu_presets(text: str, name: str) -> None:
    spec = parse_gpu(text)
    assert spec is GPU_PRESETS[name]
    assert not spec.mig


def test_gpu_presets_are_nvidia_smi_totals() -> None:
    assert GPU_PRESETS["H100-80GB"].memory_bytes == 81559 * 2**20
    assert GPU_PRESETS["H200"].memory_bytes == 143771 * 2**20


@pytest.mark.parametrize("text", ["", "H300", "A100"])
def test_parse_gpu_unknown(text: str) -> None:
    with pytest.raises(ConfigError, match="gpu: "):
        parse_gpu(text)


def test_custom_gpu() -> None:
    result = size_model(LLAMA_8B, context_length=8192, gpu=GpuSpec("RTX-4090", 24.0))
    assert result.usable_bytes_per_gpu == pytest.approx(24 * 2**30 * 0.9)
    with pytest.raises(ConfigError, match="gpu.memory_gib"):
        GpuSpec("broken", 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bf16", 2.0),
        ("BF16", 2.0),
        ("fp16", 2.0),
        ("fp8", 1.0),
        ("int8", 1.0),
        ("int4", 0.5),
        ("awq", 0.5),
        ("fp32", 4.0),
        ("mxfp4", 0.53125),
        (0.5, 0.5),
        (2, 2.0),
    ],
)
def test_precision_bytes(value: str | float, expected: float) -> None:
    assert precision_bytes(value) == expected


@pytest.mark.parametrize("value", ["fp6", "auto", 0, -1, math.nan, True])
def test_precision_bytes_rejects(value: str | float) -> None:
    with pytest.raises(ConfigError, match=r"weights_precision: "):
        precision_bytes(value, "weights_precision")


def test_every_named_precision_is_positive() -> None:
    assert all(v > 0 for v in PRECISION_BYTES.values())


# --------------------------------------------------------------------------- architecture input


def test_from_hf_config_gqa() -> None:
    config = {
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "model_type": "llama",
    }
    arch = ModelArchitecture.from_hf_config(config, total_params=8.03e9, name="Llama-3-8B")
    assert arch == LLAMA_8B  # head_dim = 4096 / 32 = 128


def test_from_hf_config_mha_and_explicit_head_dim() -> None:
    config = {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64, "head_dim": 32}
    arch = ModelArchitecture.from_hf_config(config, total_params=1e6)
    assert (arch.num_kv_heads, arch.head_dim, arch.attention) == (4, 32, "MHA")


def test_from_hf_config_mla() -> None:
    config = {
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "kv_lora_rank": 512,
        "qk_rope_head_dim": 64,
        "hidden_size": 7168,
    }
    arch = ModelArchitecture.from_hf_config(config, total_params=671e9, active_params=37e9, name="DeepSeek-V3")
    assert arch == DEEPSEEK_V3


def test_from_hf_config_missing_key() -> None:
    with pytest.raises(ConfigError, match="config.json: missing 'num_hidden_layers'"):
        ModelArchitecture.from_hf_config({"num_attention_heads": 8}, total_params=1e9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total_params": 8}, r"total_params: 8 parameters is not a model; .*did you mean 8e9\?"),
        ({"total_params": -1}, r"total_params: expected a parameter count > 0"),
        ({"total_params": "8B"}, r"total_params: expected a parameter count"),
        ({"active_params": 9e9}, r"active_params \(9e\+09\) cannot exceed total_params"),
        ({"num_layers": 0}, r"num_layers: expected a whole number >= 1, found 0"),
        ({"num_attention_heads": 32.0}, r"num_attention_heads: expected a whole number"),
        ({"num_kv_heads": 5}, r"num_kv_heads: 5 must divide num_attention_heads \(32\)"),
        ({"head_dim": None}, r"head_dim: expected a whole number >= 1, found None"),
        ({"mla_latent_dim": 512, "mla_rope_dim": 64}, r"attention: give either .* not both"),
        ({"num_kv_heads": None, "head_dim": None}, r"attention: missing"),
        (
            {"num_kv_heads": None, "head_dim": None, "mla_latent_dim": 512},
            r"mla_rope_dim: expected a whole number >= 0, found None",
        ),
    ],
)
def test_architecture_rejects(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "total_params": 8e9,
        "num_layers": 32,
        "num_attention_heads": 32,
        "num_kv_heads": 8,
        "head_dim": 128,
    }
    with pytest.raises(ConfigError, match=message):
        ModelArchitecture(**{**base, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"context_length": 0}, r"context_length: expected a whole number >= 1"),
        ({"concurrency": 0}, r"concurrency: expected a whole number >= 1"),
        ({"overhead_fraction": 1.0}, r"overhead_fraction: expected a fraction 0 <= f < 1"),
        ({"overhead_fraction": -0.1}, r"overhead_fraction"),
        ({"gpu_memory_utilization": 0}, r"gpu_memory_utilization: expected a fraction 0 < u <= 1"),
        ({"gpu_memory_utilization": 1.5}, r"gpu_memory_utilization"),
        ({"kv_cache_precision": "fp4x"}, r"kv_cache_precision: unknown precision 'fp4x'"),
        ({"gpu": "TPU"}, r"gpu: unknown GPU 'TPU'"),
    ],
)
def test_size_model_rejects(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"context_length": 8192}
    with pytest.raises(ConfigError, match=message):
        size_model(LLAMA_8B, **{**args, **kwargs})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the table


def test_format_sizing_fits() -> None:
    text = format_sizing(size_model(LLAMA_8B, context_length=8192, concurrency=8, gpu="H100-80GB"))
    assert text.splitlines()[0] == (
        "Memory sizing: Llama-3-8B (GQA: 32 layers x 8 KV heads x 128 head dim, 32 attention heads)"
    )
    for fragment in [
        "16.06 GB",
        "131,072 B",
        "128.0 KiB",
        "8,192 tokens x 8 sequences",
        "15% of weights + KV cache",
        "28.35 GB",
        "GPU: H100-80GB, 79.65 GiB, 90% usable = 76.97 GB",
        "TP 1                  28.35 GB     26.40 GiB  per GPU: fits  <- chosen",
        "Layout: tensor parallel 1 on 1 x H100-80GB; room for 47 concurrent 8,192-token sequences",
    ]:
        assert fragment in text, fragment


def test_format_sizing_does_not_fit_and_moe() -> None:
    text = format_sizing(
        size_model(DEEPSEEK_V3, context_length=32768, concurrency=8, weights_precision="fp8", gpu="H100-80GB")
    )
    for fragment in [
        "671.00 GB",
        "671.00B params (37.00B active) x 1 B (fp8)",
        "active weights",
        "70,272 B",
        "Layout: none fits",
        "Note: does not fit on up to 8 x H100-80GB",
    ]:
        assert fragment in text, fragment


def test_format_sizing_without_gpu_and_blocked_heads() -> None:
    text = format_sizing(size_model(LLAMA_8B, context_length=8192))
    assert "GPU:" not in text and "Layout" not in text
    arch = ModelArchitecture(
        total_params=20e9, num_layers=24, num_attention_heads=6, num_kv_heads=6, head_dim=128, name="six-heads"
    )
    text = format_sizing(size_model(arch, context_length=4096, gpu="L4"))
    assert "TP 4" in text and "4 does not divide the 6 attention heads" in text


# --------------------------------------------------------------------------- layouts across nodes (TP x PP)

# Llama-3.1-405B-like: 126 layers, 128 query heads, 8 KV heads, head_dim 128, 405e9 params
LLAMA_405B = ModelArchitecture(
    total_params=405e9, num_layers=126, num_attention_heads=128, num_kv_heads=8, head_dim=128, name="Llama-405B"
)


def _plan(arch: ModelArchitecture, gpu: str = "H100-80GB", **kw: int) -> LayoutPlan:
    result = size_model(arch, context_length=32768, concurrency=8, gpu=gpu)
    return plan_layouts(result, **kw)


def test_405b_goes_tp8_inside_a_node_and_pp2_across_two() -> None:
    # weights 810e9 B, KV 516,096 B/token x 32,768 x 8 = 135.29e9 B; PP 2 -> each stage holds 63 of 126 layers:
    # (1.15) x (810e9 x 0.5 / 8 + 135.29e9 x 0.5 / 8) = 67.94e9 B per GPU <= 76.97e9 usable on an H100
    result = size_model(LLAMA_405B, context_length=32768, concurrency=8, gpu="H100-80GB")
    assert result.fits is False  # one node (TP 8) cannot hold it: 135.9 GB per GPU
    plan = plan_layouts(result, gpus_per_node=8, max_nodes=4)
    chosen = plan.chosen
    assert chosen is not None and (chosen.tensor_parallel, chosen.pipeline_parallel, chosen.nodes) == (8, 2, 2)
    assert chosen.bytes_per_gpu == pytest.approx(1.15 * (810e9 + 516_096 * 32768 * 8) * 0.5 / 8)
    assert chosen.bytes_per_gpu <= H100_USABLE
    # every degree gets its smallest fitting PP; all need 16 GPUs, the larger TP wins (fewer stages)
    assert [(lay.tensor_parallel, lay.pipeline_parallel) for lay in plan.layouts] == [(1, 16), (2, 8), (4, 4), (8, 2)]
    assert "serve it with distributed_executor_backend: ray" in plan.notes[-1]
    assert serve_block(chosen) == (
        "serve: {tensor_parallel_size: 8, pipeline_parallel_size: 2, distributed_executor_backend: ray}"
    )


def test_the_largest_stage_decides_when_layers_do_not_split_evenly() -> None:
    # 126 layers over PP 4: the largest stage holds ceil(126 / 4) = 32 layers, 32/126 of the model
    plan = _plan(LLAMA_405B, gpus_per_node=4, max_nodes=8)  # 4-GPU nodes: TP 8 would straddle two nodes
    assert {lay.tensor_parallel for lay in plan.layouts} == {1, 2, 4}
    tp4 = next(lay for lay in plan.layouts if lay.tensor_parallel == 4)
    assert tp4.pipeline_parallel == 4 and tp4.nodes == 4
    assert tp4.bytes_per_gpu == pytest.approx(1.15 * (810e9 + 516_096 * 32768 * 8) * (32 / 126) / 4)


def test_a_model_that_fits_one_node_stays_there_with_its_devices() -> None:
    plan = _plan(LLAMA_70B)  # 70B bf16 at 32k x 8: TP 4 on one node of H100s
    assert plan.chosen is not None and plan.chosen.nodes == 1 and plan.chosen.pipeline_parallel == 1
    assert serve_block(plan.chosen) == "serve: {devices: '0,1,2,3', tensor_parallel_size: 4}"
    assert not any("distributed_executor_backend" in note for note in plan.notes)


def test_the_chosen_serve_keys_build_a_valid_vllm_command() -> None:
    import yaml

    from pytest_agentbench.serving.vllm.command import build_command
    from pytest_agentbench.serving.vllm.spec import ServeSpec

    for plan in (_plan(LLAMA_405B), _plan(LLAMA_70B)):
        assert plan.chosen is not None
        keys = yaml.safe_load(serve_block(plan.chosen).removeprefix("serve: "))
        argv, _ = build_command(ServeSpec(model="/models/m", python="/py", **keys), 8000, base_env={})
        tp = argv[argv.index("--tensor-parallel-size") + 1]
        assert int(tp) == plan.chosen.tensor_parallel
        if plan.chosen.nodes > 1:
            assert argv[argv.index("--pipeline-parallel-size") + 1] == str(plan.chosen.pipeline_parallel)


def test_heads_that_block_a_degree_are_named_and_nothing_fits_is_said() -> None:
    odd = ModelArchitecture(total_params=30e9, num_layers=40, num_attention_heads=12, num_kv_heads=4, head_dim=128)
    plan = _plan(odd)
    assert 8 not in {lay.tensor_parallel for lay in plan.layouts}
    assert any(note.startswith("TP 8: 8 does not divide the 12 attention heads") for note in plan.notes)
    tiny = plan_layouts(size_model(LLAMA_405B, context_length=32768, concurrency=8, gpu="L4"), max_nodes=1)
    assert tiny.chosen is None and "no layout fits on up to 1 node(s) of 8 x L4" in tiny.notes[-1]
    assert all(not lay.fits for lay in tiny.layouts)


def test_layouts_need_whole_gpus_and_sane_counts() -> None:
    with pytest.raises(ConfigError, match="MIG slice, which serves alone"):
        plan_layouts(size_model(LLAMA_8B, context_length=8192, gpu="MIG 3g.40gb"))
    with pytest.raises(ConfigError, match="need a GPU"):
        plan_layouts(size_model(LLAMA_8B, context_length=8192))
    with pytest.raises(ConfigError, match=r"max_nodes: expected a whole number >= 1, found 0"):
        _plan(LLAMA_8B, max_nodes=0)


def test_the_cli_proposes_layouts_and_exits_by_them(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pytest_agentbench.cli import size as sizing_cli

    args = ["--params", "405B", "--layers", "126", "--heads", "128", "--kv-heads", "8", "--head-dim", "128"]
    args += ["--context", "32768", "--concurrency", "8", "--gpu", "H100-80GB"]
    assert sizing_cli.main(args) == 1  # one node: no fit
    assert sizing_cli.main([*args, "--nodes", "4"]) == 0
    out = capsys.readouterr().out
    assert "TP 8 x PP 2    =  16 GPUs on  2 node(s)" in out and "<- chosen" in out
    assert "Layout: TP 8 x PP 2 on 2 node(s); serve: {tensor_parallel_size: 8" in out
    assert sizing_cli.main([*args, "--nodes", "1"]) == 1
    capsys.readouterr()
    assert sizing_cli.main([*args, "--nodes", "4", "--json"]) == 0
    layouts = json.loads(capsys.readouterr().out)["layouts"]
    assert layouts["fits"] and layouts["chosen"]["tensor_parallel"] == 8 and layouts["chosen"]["pipeline_parallel"] == 2
    assert sizing_cli.main([*args[:-2], "--nodes", "4"]) == 2
    assert "--nodes: needs --gpu" in capsys.readouterr().err
    assert sizing_cli.main([*args, "--nodes", "0"]) == 2
    assert "--nodes: expected a whole number >= 1, found 0" in capsys.readouterr().err
