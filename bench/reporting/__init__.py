"""Reporting: records -> tables and figures. Selection and aggregation (frames.py), one renderer
(render.py), one caption source (captions.py), the layouts (tables.py), sweeps and figures.
Reads records only: imports planning (profile labels), never evaluation or execution."""

# Every output format and the file suffixes that name it, once. The one renderer (render.py) draws
# all but csv (the summary frame's numbers, written by pandas); bench.report's --format writes all
# but html (its page is --html). Here, where importing them costs nothing: the command line's
# --format choices and --out's suffixes read them.
SUFFIXES = {"text": (".txt",), "markdown": (".md", ".markdown"), "csv": (".csv",), "latex": (".tex",),
            "html": (".html",)}
FORMATS = tuple(f for f in SUFFIXES if f != "csv")
REPORT_FORMATS = tuple(f for f in SUFFIXES if f != "html")
