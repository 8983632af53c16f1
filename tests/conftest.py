"""Test-wide settings: W&B offline, headless matplotlib, passive OpenMP waiting.

Set at import, before any test module imports wandb, matplotlib or xgboost.
"""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
