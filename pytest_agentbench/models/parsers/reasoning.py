"""Reasoning parsers: moving a model's thoughts out of its answer text.

``think_tags``: ``<think>...</think>`` at the start of the output becomes
``reasoning``; so does everything before a lone ``</think>`` (the chat template
opened the block, as GLM-4.7, Qwen3 and DeepSeek-R1 do); an unclosed
``<think>`` (output truncated mid-thought) is all reasoning. Only the first
``</think>`` counts, so a literal one later in a tool call's value is safe once
the model has reasoned; with no tags at all the text is content.

``qwen3``: the same split, as Qwen3's (and MiniMax-M2's) own parser reads it,
with two differences that matter to an agent: a tool call opened while the
model is still thinking ends the thought (``<think>plan<tool_call>...`` keeps
the call; ``think_tags`` would swallow it as reasoning), and repeated markers
are absorbed (``<think><think>``, ``</think></think>``). A ``</think>`` that
comes after the first tool call belongs to the call, never to the reasoning.
"""

from __future__ import annotations

import re

from pytest_agentbench.models.parsers._common import WS

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_TOOL_START = re.compile(r"<tool_call>|<function=")
_REPEATED_OPEN = re.compile(r"(?:\s*<think>)+")
_REPEATED_CLOSE = re.compile(r"(?:\s*</think>)+")


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


def split_qwen3(text: str) -> tuple[str | None, str]:
    """(reasoning, content) as Qwen3 emits it: a tool call also ends the thought; repeats are absorbed."""
    tool = _TOOL_START.search(text)
    bound = len(text) if tool is None else tool.start()
    close = text.find(THINK_CLOSE, 0, bound)
    if close != -1:
        before, prefix = text[:close], ""
        opened = before.find(THINK_OPEN)
        if opened != -1:
            prefix, before = before[:opened], before[opened:]
            repeated = _REPEATED_OPEN.match(before)
            before = before[repeated.end() if repeated else len(THINK_OPEN) :]
        closes = _REPEATED_CLOSE.match(text, close)
        after = closes.end() if closes else close + len(THINK_CLOSE)
        return before.strip() or None, prefix + text[after:]
    opened_at = _REPEATED_OPEN.match(text)
    if opened_at is None:
        return None, text  # no thinking, or a </think> inside a tool call's value
    return text[opened_at.end() : bound].strip() or None, text[bound:]  # ended by a tool call, or truncated
