"""One cell's evaluation: train a method over a stream and measure it (NLL, FID, forgetting,
budgets) on the chosen device; pure (cell spec -> record), run inside a worker. Imports planning."""
