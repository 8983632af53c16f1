#!/usr/bin/env python
"""Learning curve versus training-set size: ``calo_calib.studies.learning_curve`` (same arguments)."""

import sys

from calo_calib.studies.learning_curve import main

if __name__ == "__main__":
    main(sys.argv[1:])
