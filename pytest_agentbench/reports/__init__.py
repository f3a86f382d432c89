"""What people read.

stats.py      the one percentile (and median)
intervals.py  Wilson / exact intervals, pass@k, pass^k, the seeded bootstrap
paired.py     paired tests of two aliases over the same trials
budget.py     solved within budget and tokens to solve, per alias (rows for the summary)
estimates.py  per alias and per (packet, alias): intervals, pass@k, flaky packets, $ per solved run
summary.py    the per-alias comparison (terminal summary and its rows)
compare.py    the paired comparison of two aliases (agentbench compare); compare_html.py its HTML section
gate.py       the regression gate's rule (--agentbench-gate); planning.py the repeats a comparison needs
texttable.py  plain-text tables that wrap names instead of cutting them
html.py       the self-contained HTML report
trajectory.py the report's trajectory viewer (grid -> run -> patch and turns)
provenance.py the report's provenance section, per alias
sweep.py      the sweep's text table and HTML page
svg.py        the one SVG/HTML chart toolkit every page draws with
"""
