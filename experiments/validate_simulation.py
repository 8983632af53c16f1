#!/usr/bin/env python
"""Validate the fast simulation (same as ``python -m calo_calib.validate``).

Usage: ``python experiments/validate_simulation.py [hydra overrides...]``, e.g.
``python experiments/validate_simulation.py out=/tmp/val quick=true``.
The arguments are Hydra overrides of ``conf/validate.yaml``.
"""

from __future__ import annotations

import sys

from calo_calib.validate import compose_validate_config, run

if __name__ == "__main__":
    run(compose_validate_config(sys.argv[1:]))
