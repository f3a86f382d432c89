"""Secrets kept out of what the harness writes: an alias's API key redacted, URLs stripped of credentials.

The value of an alias's ``api_key_env`` (when at least four characters long)
is replaced by ``***`` anywhere in a record, keys and values alike (a
transcript may have echoed the environment); :func:`public_url` keeps only
``scheme://host:port/path`` of a URL, dropping a ``user:password@`` or a
``?key=`` that could carry a secret. pytest-free.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["REDACTED", "public_url", "redact", "spec_secrets"]

#: What a secret is replaced by.
REDACTED = "***"
_MIN_SECRET_LEN = 4


def spec_secrets(spec: Any) -> list[str]:
    """The secrets of an alias: the value of its ``api_key_env`` variable, if set and not trivially short."""
    name = getattr(spec, "api_key_env", None)
    value = os.environ.get(name, "") if name else ""
    return [value] if len(value) >= _MIN_SECRET_LEN else []


def redact(obj: Any, secrets: Sequence[str]) -> Any:
    """``obj`` (JSON-like: dicts, lists, strings) with every occurrence of each secret replaced by ``***``."""
    if not secrets:
        return obj
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, REDACTED)
        return obj
    if isinstance(obj, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, secrets) for v in obj]
    return obj


def public_url(url: str) -> str:
    """scheme://host:port/path only: no user:password@ or ?key= that could carry a secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
