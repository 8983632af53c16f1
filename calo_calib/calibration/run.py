"""A trained run's calibration: the common part of the network and BDT runs.

A run directory holds ``config.yaml`` (the resolved run config); the class of its ``model.kind``
(:func:`calo_calib.calibration.loading.run_calibration_class`) says what the run can do, so the
pipeline, export and the studies ask it instead of comparing ``model.kind`` strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from omegaconf import DictConfig

from calo_calib.calibration.protocol import Calibration, PathLike
from calo_calib.calibration.run_config import make_dataset
from calo_calib.data.loader import ClusterDataset


class RunCalibration(Calibration):
    """A calibration trained in a run directory, applied with the run's features and selection.

    Class attributes describe the kind of model (``model.kind``) before anything is trained:

    * :attr:`kind`: the ``model.kind`` it implements;
    * :attr:`is_network`: a PyTorch network, trained by :mod:`calo_calib.training` (``trainer.*``,
      ``checkpoints/`` and ``resume``), exported to ONNX, with inputs a study can perturb.
    """

    kind: ClassVar[str]
    is_network: ClassVar[bool]

    def __init__(self, run_dir: PathLike, cfg: DictConfig, *, device: str = "cpu") -> None:
        self.run_dir = Path(run_dir)
        self.cfg = cfg

    @classmethod
    def config_error(cls, cfg: DictConfig, adversary: str) -> str | None:
        """Why ``cfg`` (with the resolved ``adversary`` name) cannot be trained with this kind of model, or None."""
        return None

    @property
    def name(self) -> str:
        return str(self.cfg.model.name)

    @property
    def particle(self) -> str:
        return str(self.cfg.particle.name)

    def dataset(
        self, paths: PathLike | Sequence[PathLike], *, batch_size: int | None = None, with_truth: bool = True,
        nonfinite: str | None = None, out_of_range: str | None = None,
    ) -> ClusterDataset:  # fmt: skip
        """:func:`~calo_calib.calibration.run_config.make_dataset` with the run's config (evaluation data: no truth cut)."""
        return make_dataset(self.cfg, paths, batch_size=batch_size, with_truth=with_truth, nonfinite=nonfinite,
                            out_of_range=out_of_range)  # fmt: skip
