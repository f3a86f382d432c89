"""Capacity: how many developers a server holds within an SLO, and at what cost.

slo.py        the SLO and sweep configuration; the knee
metering.py   in-flight metering of model calls; the /metrics sampler
levels.py     per-level statistics, costs and results
sweep.py      the sweep engine: N concurrent developers, level by level, one server
reconcile.py  client vs server numbers (the one copy of those rules)
cost.py       commercial vs self-hosted cost, break-even, $/dev-month
gpus.py       GPU presets, MIG slices, precisions
sizing.py     GPU memory sizing from a model's architecture
"""
