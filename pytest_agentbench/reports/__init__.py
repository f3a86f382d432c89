"""What people read.

stats.py    the one percentile (and median)
summary.py  the per-alias comparison (terminal summary and its rows)
html.py     the self-contained HTML report
trajectory.py  the report's trajectory viewer (grid -> run -> patch and turns)
provenance.py  the report's provenance section, per alias
sweep.py    the sweep's text table and HTML page
svg.py      the one SVG/HTML chart toolkit every page draws with
"""
