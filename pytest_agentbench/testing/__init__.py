"""Test doubles for pytest-agentbench's own tests and examples. Not models."""
