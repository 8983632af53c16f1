#!/usr/bin/env python
"""Feature importance of a trained network calibration: permutation importance and layer ablation.

Launcher of ``python -m calo_calib.studies.feature_importance`` (same arguments; see that module).
"""

from calo_calib.studies.feature_importance import main

if __name__ == "__main__":
    main()
