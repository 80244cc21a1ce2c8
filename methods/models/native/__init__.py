"""The CPU evaluator's decoder likelihood: a rewrite of the decoder's last layer (decoder.py) and
its C kernel (bernoulli_log_likelihood.c, built and loaded by kernel.py). The torch form in
methods/models/vae.py stays the reference both are tested against (tests/test_nll.py,
tests/test_native_kernel.py)."""
