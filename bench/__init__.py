"""The benchmark harness: grid, profiles, evaluation protocol, metrics, result store, tables, CLI."""
# Part of every cell's key. Bumped whenever the same cell gives different numbers, so that old
# and new records are never mixed or mistaken for each other. 0.2.0: batches no longer pass
# through a DataLoader, which drew a seed from the global RNG and so shifted the noise stream.
HARNESS_VERSION = "0.2.0"
