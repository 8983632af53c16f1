#!/usr/bin/env python
"""Learning curve versus training-set size: is a network data-, step- or capacity-limited?

Launcher of ``python -m calo_calib.studies.learning_curve`` (same arguments; see that module).
"""

from calo_calib.studies.learning_curve import main

if __name__ == "__main__":
    main()
