"""The athena export's own check: the contract player on the file versus PyTorch on the same real clusters.

The player (:mod:`calo_calib.deploy.athena_player`) loads the written file as SaltModel does and
computes the tool's features from each cluster's cells in MeV; PyTorch evaluates the network on the
project's own features (GeV) of the same cluster (matched by ``row_id``). A difference beyond the
tolerance in any output means the file would calibrate differently inside athena: the export fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from calo_calib.deploy import athena_spec as spec
from calo_calib.deploy.athena_player import TransformerCalibPlayer
from calo_calib.deploy.atlas_units import atlas_clusters
from calo_calib.deploy.parity import Batch, ParityError, reference_outputs


def check_athena_parity(model: torch.nn.Module, folder: Path, file_name: str, particle: str, data: Sequence[Path],
                        batches: Sequence[Batch], tolerance: float, n_pick: int = 32) -> dict:  # fmt: skip
    """Compare the athena-flavour file with ``model`` on ``n_pick`` clusters spanning the cell counts.

    Returns:
        ``{"max_abs_diff", "n_checked", "cell_counts", "outputs"}``.

    Raises:
        ParityError: beyond ``tolerance`` (|Δ| of the correction, and of sigma for the uncertainty head).
        AthenaContractError: the file breaks the SaltModel / tool contract.
    """
    player = TransformerCalibPlayer(folder, particle, model_file=file_name)
    items = []  # (n_cells, row_id, batch, index)
    for b in batches:
        counts = b["valid"].sum(1)
        items += [(int(counts[i]), int(b["row_id"][i]), b, i) for i in range(b["cells"].shape[0])]
    items.sort(key=lambda t: t[0])
    pick = [items[k] for k in np.unique(np.linspace(0, len(items) - 1, min(n_pick, len(items))).round().astype(int))]
    clusters = atlas_clusters(data, [t[1] for t in pick], converted=particle == "photon_conv")
    name = player.model.model_name
    worst, counts = 0.0, []
    model.eval()
    with torch.no_grad():
        for (n, row, b, i), cluster in zip(pick, clusters):
            pair = b["pair"][i : i + 1, :n] if "pair" in b else None
            ref = reference_outputs(model, b["cells"][i : i + 1, :n], torch.ones(1, n, dtype=torch.bool), b["cluster"][i : i + 1], pair)
            got, _ = player.outputs(cluster)
            for key, value in ref.items():
                out = f"{name}_{key}"
                if out not in got:
                    raise ParityError(f"{folder / file_name}: no output {out!r} (outputs {sorted(got)})")
                d = abs(float(got[out][0]) - float(value[0]))
                if not np.isfinite(d) or d > tolerance:
                    raise ParityError(f"{folder / file_name}: athena contract player and PyTorch differ by {d:.3g} "
                                      f"> tolerance {tolerance:g} in {out} (row_id {row}, {n} cells)")  # fmt: skip
                worst = max(worst, d)
            counts.append(n)
    return {"max_abs_diff": worst, "n_checked": len(counts), "cell_counts": sorted(set(counts)), "outputs": sorted(got),
            "mirrors": spec.MIRRORED_FILES}  # fmt: skip
