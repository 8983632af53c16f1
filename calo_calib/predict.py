"""Batch inference with an exported calibration (the code: :mod:`calo_calib.deploy.batch_predict`).

    python -m calo_calib.predict model=exported/transformer_photon_conv_batched.onnx input=data/my_clusters output=calibrated.parquet
    python -m calo_calib.predict model=exported/bdt_photon_conv input=... output=... threads=8

Writes ``output`` (Parquet: ``row_id``, ``cluster_e``, ``correction``, ``e_calib``, ``sigma`` with the
uncertainty head, ``truth_e`` when the input has truth); options in ``conf/apps/predict/predict.yaml``.
Errors end as one line ``calo_calib.predict: error: ...``, exit status 1.
"""

from __future__ import annotations

import signal
import sys

import hydra
from omegaconf import DictConfig

from calo_calib.deploy.batch_predict import predict
from calo_calib.paths import CONF_DIR

__all__ = ["main"]


def _one_line(err: BaseException) -> str:
    """The error message on one line (multi-line messages from libraries are joined)."""
    text = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text or type(err).__name__


@hydra.main(config_path=str(CONF_DIR / "apps" / "predict"), config_name="predict", version_base=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point (see module docstring)."""
    from calo_calib.calibration import ModelFileError

    # SIGTERM (a batch system's kill, a plain `kill`) unwinds like an error, so the temporary output is removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        overwrite = cfg.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise ValueError(f"overwrite must be true or false, got {overwrite!r}")
        flags = {k: cfg.get(k, False) for k in ("allow_particle_mismatch",)}
        for k, v in flags.items():
            if not isinstance(v, bool):
                raise ValueError(f"{k} must be true or false, got {v!r}")
        predict(str(cfg.model), str(cfg.input), str(cfg.output), int(cfg.batch_size), str(cfg.device), int(cfg.threads), cfg.truth,
                bool(cfg.progress), cfg.get("nonfinite"), overwrite, cfg.get("out_of_range"),
                flags["allow_particle_mismatch"])  # fmt: skip
    except (ModelFileError, ValueError, OSError, RuntimeError) as err:
        raise SystemExit(f"calo_calib.predict: error: {_one_line(err)}") from None


if __name__ == "__main__":
    main()
