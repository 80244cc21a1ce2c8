"""Reporting: records -> tables and figures. Selection and aggregation (frames.py), one renderer
(render.py), one caption source (captions.py), the layouts (tables.py), sweeps and figures.
Reads records only: imports planning (profile labels), never evaluation or execution."""

# The formats the one renderer draws (render.py), and those bench.report writes: the renderer's text
# formats and csv (the summary frame's numbers). Here, where importing them costs nothing: the
# command line's --format choices read them.
FORMATS = ("text", "markdown", "latex", "html")
REPORT_FORMATS = ("text", "markdown", "csv", "latex")
