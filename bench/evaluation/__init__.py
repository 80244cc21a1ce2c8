"""One cell's evaluation: train a method over a stream and measure it (NLL, FID, forgetting,
budgets) on the chosen device; pure (cell spec -> record), run inside a worker. Imports planning."""

from bench.metrics.fid import FEATURE_EXTRACTORS

# The feature dimension of each FID extractor (features.py builds them; the metric registry names
# them), here so that the command line checks `fid_samples` against it before importing torch.
FEATURE_DIMS = FEATURE_EXTRACTORS
