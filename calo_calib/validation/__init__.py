"""Validation of the fast simulation against the detector card's reference numbers.

* :mod:`calo_calib.validation.targets`: the card's published or estimated numbers as functions, each
  with its source tag ([S#] sourced, [R] recalled, [E] estimated) in the docstring;
* :mod:`calo_calib.validation.metrics`: resolution and calibration helpers (sigma_rel, bootstrap,
  linear calibration);
* :mod:`calo_calib.validation.report`: :func:`~calo_calib.validation.report.run_validation` (entry point
  ``python -m calo_calib.validate``, config ``conf/validate.yaml``): the samples
  (:mod:`~calo_calib.validation.samples`), one module per check family (``conversions``,
  ``longitudinal``, ``response``, ``resolution``, ``modulation``, ``multiplicity``, ``correlations``,
  ``noise``, then the sections of :mod:`~calo_calib.validation.sections`) and the ``README.md`` table
  "quantity | simulated | target | source tag | verdict/comment" (:mod:`~calo_calib.validation.readme`).
"""

from calo_calib.validation.metrics import (
    bootstrap_error,
    fit_linear_calibration,
    median_response,
    sigma_rel,
)

__all__ = ["bootstrap_error", "fit_linear_calibration", "median_response", "sigma_rel"]
