"""Plotting helpers: a common style, experiment-style labels and atomic figure saving."""
