"""``python -m calo_calib.compare``: compare runs and sweeps (ranking, ratio to the BDT, plots, CSV).

The code is in :mod:`calo_calib.comparison`; this module keeps the command's name and only runs
:func:`calo_calib.comparison.cli.main` (see ``docs/comparing.md``).
"""

import sys

from calo_calib.comparison.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
