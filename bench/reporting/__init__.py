"""Reporting: records -> tables and figures. Selection and aggregation (frames.py), one renderer
(render.py), one caption source (captions.py), the layouts (tables.py), sweeps and figures.
Reads records only: imports planning (profile labels), never evaluation or execution."""
