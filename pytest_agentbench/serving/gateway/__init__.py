"""The measuring gateway: an HTTP proxy between an agent and its alias's endpoint that records every call.

One per session (the process that owns the model servers starts it; xdist workers get a
handle), bound to 127.0.0.1 and to two Unix sockets. An agent gets a per-run *token* instead of
the alias's key; the gateway injects the real key host-side, forwards chat completions,
responses and Anthropic messages to the run's alias only, and records per call what the
built-in adapter records (TTFT and per-event timings of streams, usage with cached tokens, the
failure class, the HTTP status, whether tool calls came native or leaked). Per alias it can
destream (``destream: true``) and repair leaked tool calls with the alias's tool parser; per run
it enforces the token budget. A run's calls turn into the record's Turn/AgentResult figures.

    server.py     the Gateway: listeners (TCP, agent socket, admin socket), client limits, admin API
    proxy.py      one call: refuse it (protocol, budget) or forward it, pass a stream / repair / destream
    upstream.py   an alias's route, the real key, the HTTP clients (serving.http), failure classes
    protocols.py  chat / responses / messages: routes, error shapes, usage, output caps, tool results
    sse.py        what one stream measured, event by event
    repair.py     native vs leaked tool calls in a whole answer; leaked ones turned into calls
    destream.py   a whole answer re-emitted as its protocol's SSE events
    runs.py       per-run tokens, budgets and CallRecords; per-alias totals
    client.py     the handle, run tickets and the admin client for other processes
    turns.py      CallRecords -> Turns, AgentResult, BudgetUse
    forwarder.py  the forwarder a sandbox runs on its loopback to reach the agent socket

No protocol translation: an Anthropic-protocol agent on an OpenAI-only endpoint is refused with
a message naming the alias (LiteLLM could translate; it would be a new dependency).
"""

from __future__ import annotations

from pytest_agentbench.serving.gateway.client import GatewayClient, GatewayHandle, RunCalls, RunTicket
from pytest_agentbench.serving.gateway.forwarder import GATEWAY_PORT, forwarder_argv
from pytest_agentbench.serving.gateway.proxy import Limits
from pytest_agentbench.serving.gateway.runs import CallRecord
from pytest_agentbench.serving.gateway.server import Gateway
from pytest_agentbench.serving.gateway.turns import agent_result, budget_use, outcome_of, turns_from_calls
from pytest_agentbench.serving.gateway.upstream import Route, route_for, served_protocols

__all__ = [
    "GATEWAY_PORT",
    "CallRecord",
    "Gateway",
    "GatewayClient",
    "GatewayHandle",
    "Limits",
    "Route",
    "RunCalls",
    "RunTicket",
    "agent_result",
    "budget_use",
    "forwarder_argv",
    "outcome_of",
    "route_for",
    "served_protocols",
    "turns_from_calls",
]
