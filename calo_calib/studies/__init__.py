"""Studies of trained calibrations (what a model relies on), built on the evaluation tools.

* :mod:`calo_calib.studies.importance`: permutation importance of the inputs of a network
  calibration and calorimeter-layer ablation; :mod:`calo_calib.studies.importance_report` writes
  its JSON, markdown and plots. Entry point: ``experiments/feature_importance.py`` (``docs/studies.md``).
"""
