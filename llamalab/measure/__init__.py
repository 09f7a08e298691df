"""Measuring: quality (perplexity, KL), sweeps of schemes and their tables (sweep, compare), load
tests of a served model, and random weights at real shapes: GGUFs (random_weights) and
transformers checkpoints (random_checkpoint)."""
