"""Reasoning parsers: moving a model's thoughts out of its answer text.

``think_tags``: ``<think>...</think>`` at the start of the output becomes
``reasoning``; so does everything before a lone ``</think>`` (the chat template
opened the block, as GLM-4.7, Qwen3 and DeepSeek-R1 do); an unclosed
``<think>`` (output truncated mid-thought) is all reasoning. Only the first
``</think>`` counts, so a literal one later in a tool call's value is safe once
the model has reasoned; with no tags at all the text is content.
"""

from __future__ import annotations

from pytest_agentbench.models.parsers._common import WS

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def split_think_tags(text: str) -> tuple[str | None, str]:
    """(reasoning, content): ``<think>`` reasoning at the start of ``text``, or before a lone ``</think>``."""
    close = text.find(THINK_CLOSE)
    if close != -1:
        before, after = text[:close], text[close + len(THINK_CLOSE) :]
        opened = before.find(THINK_OPEN)
        if opened != -1:
            before, after = before[opened + len(THINK_OPEN) :], before[:opened] + after
        return before.strip() or None, after
    start = WS.match(text).end()
    if text.startswith(THINK_OPEN, start):  # truncated mid-thought
        return text[start + len(THINK_OPEN) :].strip() or None, ""
    return None, text
