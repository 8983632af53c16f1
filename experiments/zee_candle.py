#!/usr/bin/env python
"""Z -> ee standard candle: in-situ energy scale of a calibration on a data-like detector variant.

Launcher of ``python -m calo_calib.studies.zee_candle`` (same arguments; see that module).
"""

from calo_calib.studies.zee_candle import main

if __name__ == "__main__":
    main()
