"""The benchmark harness: grid, profiles, evaluation protocol, metrics, result store, tables, CLI."""
HARNESS_VERSION = "0.1.0"
