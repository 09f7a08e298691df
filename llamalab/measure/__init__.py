"""Measuring: quality (perplexity, KL), sweeps of schemes and their tables (sweep, compare), load
tests of a served model, and random-weight GGUFs at real shapes (random_weights)."""
