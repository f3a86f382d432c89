"""Capacity: how many developers a server holds within an SLO, and at what cost.

slo.py        the SLO (level medians, per-request goodput thresholds); the knee
slo_sources.py where the SLO is written: command line > models.yaml slo: > ini agentbench_slo
metering.py   in-flight metering of model calls; the /metrics sampler
server.py     the server side of a measurement: /metrics probe, prefix-cache reset, window
levels.py     per-level statistics, costs and results
sweep.py      the sweep engine and its config: N concurrent developers, level by level, one server
latency.py    per-request numbers as vllm bench reports them: TTFT/TPOT/ITL/E2E, throughput, goodput
arrivals.py   request-rate arrivals: Poisson, or gamma with a burstiness factor
prompts.py    random prompts of N tokens (server /tokenize, else a calibrated filler), datasets
load.py       the request-rate load engine (agentbench load)
trace.py      what a run records for replay (RequestRecorder), and reading it back
replay.py     agent-trace replay at N concurrent developers (agentbench replay)
ranking.py    several sweeps compared per N: the cheapest that holds the SLO wins
reconcile.py  client vs server numbers (the one copy of those rules)
cost.py       commercial vs self-hosted cost, break-even, $/dev-month
gpus.py       GPU presets, MIG slices, precisions
sizing.py     GPU memory sizing from a model's architecture
"""
