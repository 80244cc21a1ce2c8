"""The models and what the harness asks of them: the declared contract (contract.py), the paper's
Bernoulli MLP VAE (vae.py), IWAE likelihoods (likelihood.py) and the evaluator's native kernel
(native/). Independent of the plugin API."""
