"""Fast simulation of e/gamma clusters in an ATLAS-like Pb/LAr sampling calorimeter.

Public API:

* :func:`compose_config` composes ``conf/simulate.yaml`` with Hydra overrides and validates it;
* :func:`simulate_table` generates ``n_clusters`` clusters into a :class:`pyarrow.Table` following
  :mod:`calo_calib.io.schema`.
"""

from calo_calib.simulation.api import compose_config, simulate_table

__all__ = ["compose_config", "simulate_table"]
