"""A scripted model server: a *test double* that replays fixed responses or follows a plan.

It is not a model and is never presented as one: it lets the agent loop, external agent CLIs,
the gateway, the plugin and the fault handling be tested over real HTTP on 127.0.0.1. It speaks
OpenAI chat completions (``/v1/chat/completions``), OpenAI responses (``/v1/responses``, as
Codex CLI calls it) and Anthropic messages (``/v1/messages`` and ``/v1/messages/count_tokens``,
as Claude Code calls them), streamed or not, and keeps usage totals (``GET /scripted/usage``,
:meth:`ScriptedServer.usage_totals`) that a gateway's figures can be checked against.

Script format (YAML or a dict; a folder of YAML files is merged)::

    max_model_len: 4096                                # optional: reported in /v1/models, as vLLM does, and
                                                       # a longer request is refused with vLLM's HTTP 400
    conversations:
      - match: "substring of the first user message"   # optional; first match wins
        responses:                                     # the N-th assistant turn gets responses[N]
          - content: "text"                            # optional
            reasoning_content: "..."                   # optional
            tool_calls: [{name: read_file, arguments: {path: a.py}}]
          - tool_calls: [{name: apply_patch, input: "*** Begin Patch..."}]   # a freeform (custom) tool's call
          - {status: 429, headers: {Retry-After: "1"}, error: "slow down"}   # fault injection
          - {delay_s: 2, content: "late"}
          - {raw: "not json at all"}                   # body sent verbatim
          - {content: "...", finish_reason: length, usage: {prompt_tokens: 5, completion_tokens: 1}}
          - {content: "...", usage: {cached_tokens: 3}}    # usage: prompt_tokens, completion_tokens, cached_tokens
          - {no_usage: true, content: "a server that sends no usage"}
          - {content: "abc", stream_drop_after: 2}         # streaming: the connection drops after 2 events
          - {content: "abc", stream_stall_after: 1, stream_stall_s: 30}   # streaming: stalls after 1 event
          - {content: "abc", stream_keepalive: comment, stream_keepalive_every_s: 1}   # streaming: after
                # stream_keepalive_after (default 1) events, ": ping" SSE comments (or `empty_delta`:
                # the protocol's empty event - a chat chunk with an empty delta, an Anthropic ping,
                # a comment for responses) every second for stream_keepalive_for_s (default: until
                # the client hangs up)
          - {content: "abc", trickle_every_s: 0.5}     # not streamed: the body one byte every 0.5 s
          - {status: 401, error: "invalid api key"}    # as a provider answers a wrong key
          - {tool_calls: [...], streamed: {content: "<tool_call>..."}}   # a different answer when streamed
          - {tool_calls: [...], stream_leak: true}     # streamed, the calls leak into the content as qwen3
                # XML (as vLLM's qwen3_coder streaming parser did); not streamed they come native
          - attempts:                                  # successive requests for the same turn (retries)
              - {status: 503}
              - {content: "second try works"}
      - match: "Fix median"                            # a plan instead of responses: agent-agnostic
        workdir: /workspace                            # optional: relative write paths are joined onto it
        plan:                                          # turn N gets plan[N], mapped onto the request's tools
          - {shell: "cat stats.py", thinking: "look first"}
          - {write: {path: stats.py, content: "def median(xs): ...\\n"}, text: "Fixing it."}
          - {write: {path: NOTES.md, content: "done\\n"}, via: shell}   # a heredoc, not a write tool
          - {say: "plain text, no tool call"}
          - {finish: "The median is fixed."}           # a plain final answer: the agent stops

The response entries work in every protocol (``error_type`` is the error's ``type``; Anthropic
errors get their own types by status). A plan step is mapped onto the tools the request declares
by :mod:`.plan` (its docstring has the rules: a shell step onto the ``command``/``cmd``/``script``
parameter, an array ``command`` getting ``["bash", "-lc", CMD]``; a write step onto a write tool,
else a heredoc through the shell; without tools, a fenced ```` ```bash ```` block in the text). A
step the declared tools cannot carry is answered HTTP 400 naming the step and every tool seen; a
broken plan is a :class:`~pytest_agentbench.errors.ConfigError` when the server is made.

Turn N is counted per protocol - chat: the ``assistant`` messages; responses: the runs of output
items (a reasoning item, a message and calls sent back together are one turn); messages: the runs
of ``assistant`` messages - so a replay is stateless and several conversations (xdist workers,
agents) can run at once. ``match`` is looked for in chat's first user message, and in the text of
the user messages before the first assistant turn for responses and messages (where agents put
context before the prompt). When a script or plan is used up the server answers plain text
without tool calls (:data:`EXHAUSTED`).

Usage: the prompt is a deterministic count of the request's conversation text (about 4 characters
a token), the completion of the answer's text and call arguments; each protocol reports it in its
own shape and :mod:`.totals` keeps the running sums.
"""

from __future__ import annotations

from pytest_agentbench.serving.scripted.plan import Action, Call, PlanMismatch, Tool, act, declared_tools
from pytest_agentbench.serving.scripted.reply import count_tokens
from pytest_agentbench.serving.scripted.script import load_max_model_len, load_script
from pytest_agentbench.serving.scripted.server import EXHAUSTED, USAGE_PATH, ScriptedServer
from pytest_agentbench.serving.scripted.totals import Tally, UsageTotals

__all__ = [
    "EXHAUSTED",
    "USAGE_PATH",
    "Action",
    "Call",
    "PlanMismatch",
    "ScriptedServer",
    "Tally",
    "Tool",
    "UsageTotals",
    "act",
    "declared_tools",
    "count_tokens",
    "load_max_model_len",
    "load_script",
]
