"""Agents: the built-in tool-calling loop that works on a packet through a sandbox."""
