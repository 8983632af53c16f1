"""Studies: each is ``python -m calo_calib.studies.<study>`` with its options in ``conf/<study>.yaml``.

Command lines are ``key=value`` Hydra overrides (:mod:`calo_calib.studies.cli`); the study's own
options are composed in struct mode (an unknown key is an error naming it), and the studies that
train or simulate hand every other argument on as a ``conf/run.yaml`` / ``conf/simulate.yaml``
override. ``experiments/<study>.py`` are launchers of the same commands.

* :mod:`~calo_calib.studies.feature_importance`: permutation importance of a network calibration's
  inputs and calorimeter-layer ablation (computation :mod:`~calo_calib.studies.importance` and its ``importance_*`` helpers, outputs
  :mod:`~calo_calib.studies.importance_report`; ``docs/studies.md``).
* :mod:`~calo_calib.studies.detector_variants`: the data-like detector variants' measured shifts
  versus nominal (``docs/simulation.md``).
* :mod:`~calo_calib.studies.domain_adaptation`: domain-adversarial training against the variants
  (``docs/training.md``).
* :mod:`~calo_calib.studies.uncertainty_study`: pulls and coverage of a per-cluster sigma (``docs/models.md``).
* :mod:`~calo_calib.studies.learning_curve`: test σ_rel versus training-set size (``docs/training.md``).
* :mod:`~calo_calib.studies.zee_candle`: the Z -> ee standard candle (logic :mod:`calo_calib.zee`, ``docs/zee.md``).
* :mod:`~calo_calib.studies.information_content`: see its module docstring.
"""
