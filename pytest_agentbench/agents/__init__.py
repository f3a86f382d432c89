"""Agents: the built-in tool-calling loop that works on a packet through a sandbox.

config.py      the budgets (turns, tokens, wall time or its safety net, output tokens per call, command timeout)
budget.py      the token ledger of a run and the account of which budget ended it
loop.py        the loop: model proposes tool calls, the sandbox executes them
phases.py      a multi-phase packet's sessions in order on one workspace, budgets carried over, one result
tools.py       the six tools' schemas and their execution
transcript.py  what a run leaves: turns, tool outcomes, the Outcome, the readable transcript
"""
