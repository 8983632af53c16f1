#!/usr/bin/env python
"""Simulate nominal and every data-like detector variant with the same seed; tabulate the shifts.

Launcher of ``python -m calo_calib.studies.detector_variants`` (same arguments; see that module).
"""

from calo_calib.studies.detector_variants import main

if __name__ == "__main__":
    main()
