"""The run record and what keeps it.

record.py     RunRecord (JUnit properties), its JSON form, the run's cost
trajectory.py the record's bounded per-turn trajectory
cells.py      the agent a record names, the trial key, agent x alias cells and their labels
provenance.py what produced a run: server, model, sandbox, agent, packet (``versions``)
export.py     exports for other tools (SWE-bench predictions), whole patches beside the records
redact.py     secrets and URLs made safe to write
jsonl.py      per-worker fsynced JSONL, loading, merging, --resume
benchmark.py  pytest-benchmark-format JSON
junit.py      merging JUnit files into a per-alias table
jsonsafe.py   the one JSON-safe converter
"""
