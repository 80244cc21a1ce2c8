"""The benchmark harness: grid, profiles, evaluation protocol, metrics, result store, tables, CLI."""
# Part of every cell's key. Bumped whenever the same cell gives different numbers, so that old
# and new records are never mixed or mistaken for each other. 0.2.0: batches no longer pass
# through a DataLoader, which drew a seed from the global RNG and so shifted the noise stream.
# 0.3.0: fused Adam on CPUs; a pass over at most one minibatch is not shuffled; CPU inference
# evaluates the decoder's likelihood by a rewrite equal to float32 rounding (all from bench.perf).
# 0.4.0: on a CPU with a C compiler, the decoder's likelihood in evaluation comes from a C kernel
# (methods/models/native/bernoulli_log_likelihood.c), equal to the torch form to float32 rounding; records say
# which form ran (`nll_decoder_form`).
# 0.5.0: profiles gain `steps_per_batch` (the matched-compute schedule), so every key changed;
# records gain budgets (peak memory, gradient steps, images trained) and timelines. The numbers of
# existing cells are unchanged (the default schedule draws the same random numbers).
HARNESS_VERSION = "0.5.0"
