"""A local model folder as screening evidence: its config, model card, licence files and weights.

Everything here reads files only (nothing is imported or downloaded): ``config.json``
(the architecture, the maximum context, the dtype or quantization), the README's
YAML front matter (``license:``, ``license_name:``, ``license_link:``, as the Hugging
Face model card has it), the licence and terms files and the title of each, and the
parameter count from the safetensors headers (exact: the shapes of every tensor), or
from ``config.json``'s figures when the folder has no weights (``load_format:
dummy``), marked as an estimate.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

__all__ = ["LICENSE_FILE", "ModelFolder", "ParamCount", "front_matter", "licence_from_text"]

LICENSE_FILE = re.compile(r"^(license|licence|copying|notice|.*terms|use[_-]policy)", re.IGNORECASE)
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
_HEADER_LIMIT = 100 * 1024 * 1024  # a safetensors header beyond this is not one
#: Title phrases of licence texts -> the model-card id (first match wins; checked on the first 4 KB).
_TITLES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), spdx)
    for pattern, spdx in (
        (r"apache license,?\s+version 2\.0", "apache-2.0"),
        (r"modified mit license", "modified-mit"),
        (r"\bmit license\b|permission is hereby granted, free of charge", "mit"),
        (r"gemma terms of use", "gemma"),
        (r"llama 4 community license", "llama4"),
        (r"llama 3\.3 community license", "llama3.3"),
        (r"llama 3\.2 community license", "llama3.2"),
        (r"llama 3\.1 community license", "llama3.1"),
        (r"meta llama 3 community license", "llama3"),
        (r"deepseek license agreement", "deepseek"),
        (r"attribution-noncommercial", "cc-by-nc-4.0"),
        (r"tongyi qianwen license", "tongyi-qianwen"),
        (r"bsd 3-clause|redistribution and use in source and binary forms", "bsd-3-clause"),
    )
)


def front_matter(text: str) -> Mapping[str, Any]:
    """A Markdown file's YAML front matter as a mapping (empty when there is none or it does not parse)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def licence_from_text(text: str) -> str | None:
    """The licence id a licence text's title names, or None."""
    head = text[:4096]
    return next((spdx for pattern, spdx in _TITLES if pattern.search(head)), None)


@dataclass(frozen=True)
class ParamCount:
    count: float
    source: str  # "safetensors headers" | "estimated from config.json (no weight files)"
    exact: bool


class ModelFolder:
    """The files of one local model folder (``serve.model_path``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def exists(self) -> bool:
        return self.path.is_dir()

    @cached_property
    def config(self) -> Mapping[str, Any] | None:
        """``config.json``, with a multimodal model's ``text_config`` figures lifted (None if unreadable)."""
        try:
            data = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        text = data.get("text_config")
        if isinstance(text, dict) and "num_hidden_layers" not in data:
            data = {**text, **{k: v for k, v in data.items() if k != "text_config"}}
        return data

    @cached_property
    def readme(self) -> Mapping[str, Any]:
        for name in ("README.md", "readme.md", "README.MD"):
            try:
                return front_matter((self.path / name).read_text(encoding="utf-8", errors="replace")[:65536])
            except OSError:
                continue
        return {}

    def license_files(self) -> list[tuple[str, str | None]]:
        """(file name, the licence its title names or None) for each licence-like file."""
        if not self.exists:
            return []
        out = []
        for entry in sorted(self.path.iterdir()):
            if entry.is_file() and LICENSE_FILE.match(entry.name):
                try:
                    head = entry.read_text(encoding="utf-8", errors="replace")[:4096]
                except OSError:
                    head = ""
                out.append((entry.name, licence_from_text(head)))
        return out

    @property
    def max_context(self) -> int | None:
        """The model's maximum context as its config states it (``max_position_embeddings``)."""
        value = (self.config or {}).get("max_position_embeddings")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def architectures(self) -> tuple[str, ...]:
        value = (self.config or {}).get("architectures")
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

    def parameters(self) -> ParamCount | None:
        """Parameters from the safetensors headers, else estimated from the config; None if neither."""
        shards = sorted(self.path.glob("*.safetensors")) if self.exists else []
        total = 0
        for shard in shards:
            count = _safetensors_params(shard)
            if count is None:
                total = 0
                break
            total += count
        if total:
            return ParamCount(float(total), f"safetensors headers ({len(shards)} file(s))", True)
        estimate = _estimate_params(self.config or {})
        if estimate:
            return ParamCount(estimate, "estimated from config.json (no weight files: load_format dummy?)", False)
        return None


def _safetensors_params(path: Path) -> int | None:
    """Sum of the tensor sizes in one safetensors file's header (reads the header only)."""
    try:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if not 0 < length <= _HEADER_LIMIT:
                return None
            header = json.loads(fh.read(length))
    except (OSError, struct.error, ValueError):
        return None
    if not isinstance(header, dict):
        return None
    count = 0
    for name, meta in header.items():
        if name == "__metadata__" or not isinstance(meta, dict) or not isinstance(meta.get("shape"), list):
            continue
        count += math.prod(int(d) for d in meta["shape"])
    return count


def _estimate_params(config: Mapping[str, Any]) -> float | None:
    """A dense transformer's parameters from its config: embeddings, attention and MLP per layer."""
    try:
        hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        vocab, inter = int(config["vocab_size"]), int(config.get("intermediate_size") or 4 * hidden)
        heads = int(config["num_attention_heads"])
        kv = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or hidden // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    attention = hidden * head_dim * (2 * heads + 2 * kv)
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return float(embeddings + layers * (attention + 3 * hidden * inter))
