"""The one JSON-safe converter: what ``json.dumps(..., allow_nan=False)`` accepts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["json_safe"]


def json_safe(obj: Any) -> Any:
    """Non-finite floats become ``None`` (JSON has no NaN), tuples lists, mapping keys strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
