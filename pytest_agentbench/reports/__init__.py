"""What people read.

stats.py    the one percentile (and median)
summary.py  the per-alias comparison (terminal summary and its rows)
compare.py  the paired comparison of two aliases (agentbench compare); compare_html.py its HTML section
gate.py     the regression gate's rule (--agentbench-gate); planning.py the repeats a comparison needs
html.py     the self-contained HTML report
sweep.py    the sweep's text table and HTML page
svg.py      the one SVG/HTML chart toolkit every page draws with
"""
