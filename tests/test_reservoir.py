"""Reservoir sampling is Vitter's algorithm R: after n stream items every item is in a budget-k
memory with probability exactly k/n, whatever the batch sizes the stream arrives in."""
import torch
from scipy.stats import chisquare

from methods.reservoir import ReservoirConfig, ReservoirPlugin

RUNS, N, K = 6000, 6, 2


def inclusion_counts(batches: list[int]) -> torch.Tensor:
    """How often each of the N stream items ends in the memory, over RUNS seeded runs."""
    counts = torch.zeros(N)
    for seed in range(RUNS):
        plugin = ReservoirPlugin(ReservoirConfig(budget=K), seed=seed)
        start = 0
        for size in batches:
            plugin.update_memory(torch.arange(start, start + size, dtype=torch.float32)[:, None])
            start += size
        counts[plugin.replay_images()[:, 0].long()] += 1
    return counts


def test_every_item_is_kept_with_probability_budget_over_n():
    for batches in ([1] * N, [3, 3], [N]):
        counts = inclusion_counts(batches)
        assert counts.sum() == RUNS * K
        # uniform: K/N = 1/3 each. Keeping item n (0-based) with probability K/n instead of
        # K/(n + 1) would keep the last item 40% of the time instead of 33% (14 standard errors)
        assert chisquare(counts.numpy()).pvalue > 1e-3, (batches, counts / RUNS)
        assert abs(counts[-1] / RUNS - K / N) < 0.025, (batches, counts / RUNS)
