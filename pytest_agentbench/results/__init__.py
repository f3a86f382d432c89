"""The run record and what keeps it.

record.py     RunRecord (JUnit properties), its JSON form, the run's cost
redact.py     secrets and URLs made safe to write
jsonl.py      per-worker fsynced JSONL, loading, merging, --resume
benchmark.py  pytest-benchmark-format JSON
junit.py      merging JUnit files into a per-alias table
jsonsafe.py   the one JSON-safe converter
"""
