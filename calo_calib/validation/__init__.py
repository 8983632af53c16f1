"""Validation of the fast simulation against the detector card's reference numbers.

* :mod:`calo_calib.validation.targets`: the card's published or estimated numbers as functions, each
  with its source tag ([S#] sourced, [R] recalled, [E] estimated) in the docstring;
* :mod:`calo_calib.validation.metrics`: resolution and calibration helpers (sigma_rel, bootstrap,
  linear calibration);
* :mod:`calo_calib.validation.report`: generates the dedicated samples, the plots and the
  ``README.md`` table ("quantity | simulated | target | source tag | verdict/comment"). Entry point:
  ``python -m calo_calib.validate`` (config ``conf/validate.yaml``).
"""

from calo_calib.validation.metrics import (
    bootstrap_error,
    fit_linear_calibration,
    median_response,
    sigma_rel,
)

__all__ = ["bootstrap_error", "fit_linear_calibration", "median_response", "sigma_rel"]
