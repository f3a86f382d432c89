"""Agents: the built-in tool-calling loop that works on a packet through a sandbox.

config.py      the budgets (turns, wall time, output tokens per call, command timeout)
loop.py        the loop: model proposes tool calls, the sandbox executes them
tools.py       the six tools' schemas and their execution
transcript.py  what a run leaves: turns, tool outcomes, the Outcome, the readable transcript
"""
