#!/usr/bin/env python
"""Per-cluster uncertainty study: pulls and coverage per (E, |η|) bin of a ``loss=gaussian_nll`` network.

Launcher of ``python -m calo_calib.studies.uncertainty_study`` (same arguments; see that module).
"""

from calo_calib.studies.uncertainty_study import main

if __name__ == "__main__":
    main()
