"""The project's clusters (Parquet, GeV/mm/rad, ``docs/data_format.md``) as the athena tool reads them (MeV/mm/rad).

Only the cells, the cluster's η, φ, E and, for converted photons, the conversion quantities are
taken: every feature is then recomputed by :class:`calo_calib.deploy.athena_player.TransformerCalibPlayer`
from the cells, as the tool does. The conversion quantities are the egammaMVAFunctions values the
simulation stores (convR, convEtOverPt, convPtRatio, conversionType); the tool's clip of
convEtOverPt to [0, 2] is applied again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from calo_calib.data.loader import expand_paths
from calo_calib.deploy import athena_spec as spec
from calo_calib.deploy.athena_player import AtlasCluster

_CELLS = ("cell_e", "cell_eta", "cell_phi", "cell_x", "cell_y", "cell_z", "cell_layer")
_SCALARS = ("cluster_e", "cluster_eta", "cluster_phi")
_CONV = ("conv_r", "conv_et_over_pt", "conv_pt_ratio", "conversion_type")


def _table(paths: Sequence[Path], columns: Sequence[str]) -> pa.Table:
    """All rows of ``paths`` in order: row ``k`` of the result is the loader's ``row_id`` k."""
    return pa.concat_tables([pq.read_table(p, columns=list(columns)) for p in paths])


def atlas_clusters(src, row_ids: Sequence[int], converted: bool) -> Iterator[AtlasCluster]:
    """The clusters ``row_ids`` (the loader's/predict's ``row_id``) of dataset ``src`` in ATLAS units.

    Args:
        src: a dataset directory, a Parquet file or several (the loader's order defines row_id).
        row_ids: rows to convert, in the order wanted.
        converted: also read the conversion quantities (converted photons).
    """
    files = expand_paths(src)  # the loader's own file order, which defines row_id
    table = _table(files, [*_SCALARS, *_CELLS, *(_CONV if converted else ())])
    cols = {c: table.column(c) for c in table.column_names}
    for r in row_ids:
        r = int(r)
        cells = {c: np.asarray(cols[c][r].values.to_numpy(zero_copy_only=False)) for c in _CELLS}
        conv = None
        if converted:
            cr, etpt, ptr, ctype = (float(cols[c][r].as_py()) for c in _CONV)
            conv = (cr, min(max(etpt, 0.0), 2.0), ptr, ctype)
        yield AtlasCluster(
            cell_e=(cells["cell_e"].astype(np.float64) * spec.MEV_PER_GEV).astype(np.float32),
            cell_eta=cells["cell_eta"].astype(np.float32),
            cell_phi=cells["cell_phi"].astype(np.float32),
            cell_x=cells["cell_x"].astype(np.float32),
            cell_y=cells["cell_y"].astype(np.float32),
            cell_z=cells["cell_z"].astype(np.float32),
            cell_layer=cells["cell_layer"].astype(np.int64),
            eta=float(cols["cluster_eta"][r].as_py()),
            phi=float(cols["cluster_phi"][r].as_py()),
            e=float(cols["cluster_e"][r].as_py()) * spec.MEV_PER_GEV,
            conv=conv,
        )
