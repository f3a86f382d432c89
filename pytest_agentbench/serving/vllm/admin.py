"""vLLM's administrative endpoints that measurements rely on.

``POST /reset_prefix_cache`` exists in vLLM 0.32 only when the server runs with
``VLLM_SERVER_DEV_MODE=1``; capacity sweeps start their servers that way so every
level begins with a cold prefix cache.
"""

from __future__ import annotations

import json
import time

from pytest_agentbench.serving.http import request

__all__ = ["DEV_MODE_ENV", "reset_prefix_cache"]

DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"


def reset_prefix_cache(root_url: str, *, attempts: int = 5, timeout: float = 10.0) -> str:
    """POST /reset_prefix_cache on ``root_url`` (no /v1); says what happened, never raises.

    ``"reset"`` on success; otherwise why not (not exposed, an HTTP error, no answer). vLLM
    answers ``success=false`` while a finishing request still holds blocks: that is retried.
    """
    url = f"{root_url.rstrip('/')}/reset_prefix_cache"
    for _ in range(attempts):
        try:
            answer = request(url, method="POST", data=b"", timeout=timeout)
        except OSError as exc:
            return f"failed: {exc}"
        if answer.status in (404, 405):
            return (
                f"not exposed ({answer.status}): start vLLM with {DEV_MODE_ENV}=1 to reset it; the prefix "
                "cache carries over from the previous level"
            )
        if answer.status >= 400:
            return f"failed: HTTP {answer.status}"
        body = answer.text()
        try:
            ok = bool(json.loads(body).get("success", True)) if body.strip() else True
        except (ValueError, AttributeError):
            ok = True
        if ok:
            return "reset"
        time.sleep(0.5)  # blocks still held by a finishing request
    return f"failed: the server answered success=false {attempts} times"
