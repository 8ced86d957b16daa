"""A small JAX language model on byte streams: training, ToEdit token-level editing and the iterative
retraining experiments that mirror the linear-regression regimes (replace, accumulate, edit)."""
