"""vLLM, started and read by the harness.

spec.py       ServeSpec: what to launch, built from an alias (spec_from_alias)
rules.py      devices, tensor parallel, MIG and tool-flag rules
command.py    the interpreter, argv and environment of ``vllm serve``
diagnosis.py  known failure patterns in the log and the start error that quotes them
process.py    VLLMServer: start, readiness, stop (own process group, 127.0.0.1, log file)
metrics.py    /metrics parsing, snapshots, deltas, the per-run window
admin.py      administrative endpoints (prefix-cache reset)
"""
