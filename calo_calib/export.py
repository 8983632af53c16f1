"""Export a trained calibration for C++ reconstruction and fast batch inference.

    python -m calo_calib.export runs/photon_conv/transformer-pull_huber/20261123-101500
    python -m calo_calib.export runs/.../checkpoints/best.pt --out exported/ --tolerance 1e-5
    python -m calo_calib.export runs/photon_conv/bdt-mse/20261123-100000          # the BDT
    python -m calo_calib.export <run> --flavour athena   # also the file athena's egammaTransformerCalibTool loads

Networks -> ONNX files (per cluster and batched, parity-checked against PyTorch; nothing is written
beyond ``--tolerance``); the BDT -> XGBoost JSON boosters plus MVAUtils trees. ``export.json``
describes the export. The code is in :mod:`calo_calib.deploy.run_export` (see ``docs/deployment.md``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from calo_calib.deploy.run_export import DEFAULT_TOLERANCE, FLAVOURS, ExportError, export_run

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calo_calib.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run directory (or a checkpoint file inside it)")
    parser.add_argument("--out", help="output directory (default: <run>/export)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="largest allowed |ONNX - PyTorch| correction")
    parser.add_argument("--data", help="dataset for the parity check (default: the run's test split)")
    parser.add_argument("--allow-particle-mismatch", action="store_true",
                        help="use parity data whose particle column differs from the model's particle type")  # fmt: skip
    parser.add_argument("--flavour", choices=FLAVOURS, default="calo_calib",
                        help="athena: also write the ONNX file athena's egammaTransformerCalibTool loads (MeV inputs, gnn_config)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("torch").setLevel(logging.ERROR)
    from calo_calib.data.checks import DataError
    from calo_calib.deploy.athena_player import AthenaContractError
    from calo_calib.deploy.parity import ParityError

    try:
        export_run(args.run, args.out, args.tolerance, args.data, args.allow_particle_mismatch, args.flavour)
    except (ExportError, FileNotFoundError, DataError) as err:
        print(f"calo_calib.export: error: {err}", file=sys.stderr)
        return 1
    except AthenaContractError as err:
        print(f"calo_calib.export: error: the athena file breaks the SaltModel contract, nothing written: {err}", file=sys.stderr)
        return 1
    except ParityError as err:
        print(f"calo_calib.export: error: parity check failed, nothing written: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
