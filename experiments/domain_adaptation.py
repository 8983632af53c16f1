#!/usr/bin/env python
"""Domain-adversarial training against detector variants: does it make an MC-trained calibration transfer?

Launcher of ``python -m calo_calib.studies.domain_adaptation`` (same arguments; see that module).
"""

from calo_calib.studies.domain_adaptation import main

if __name__ == "__main__":
    main()
