"""What people read.

stats.py    the one percentile (and median)
summary.py  the per-alias comparison (terminal summary and its rows)
budget.py   solved within budget and tokens to solve, per alias (rows for the summary)
html.py     the self-contained HTML report
sweep.py    the sweep's text table and HTML page
svg.py      the one SVG/HTML chart toolkit every page draws with
"""
