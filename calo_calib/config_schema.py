"""The typed schema of each config group of ``conf/run.yaml``, registered in Hydra's ConfigStore.

Each group option (``conf/<group>/<option>.yaml``) starts with ``defaults: [<group>_schema, _self_]``
(``transformer_schema``, ``gnn_edge_schema`` and ``bdt_schema`` for the models, one per kind), and
``conf/run.yaml`` with ``run_schema``. The dataclass gives every key its type; the composed config
is then closed: a misspelt key in a yaml file, or a plain override of a key the schema lacks
(``trainer.epochz=3``), fails at compose time naming the key, and a value of the wrong type
(``trainer.epochs=abc``) fails naming ``trainer.epochs``. ``+key=`` / ``++key=`` still add a key on
purpose (Hydra opens the node for them): the run's checks name the unknown ``trainer.*`` keys.

One place per default: a field is either ``MISSING`` here and set by every yaml option of its group
(the yaml is where its value is read), or it has its default here and no yaml option sets it
(``tests/test_config.py`` checks both directions). Only the trainer takes the second form: its
defaults are those of :class:`~calo_calib.training.loop.TrainerConfig`, which a script builds
without any config, and its yaml keeps the documentation of each key as comments.

Registered by importing :mod:`calo_calib.config` (every entry point does before Hydra composes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

# OmegaConf reads the annotations at run time: ``Optional[float]``, not ``float | None`` (py3.10 union
# objects are not supported by omegaconf 2.3 structured configs).
# ruff: noqa: UP007, UP045


@dataclass
class TrainerSchema:
    """``trainer``: optimisation of the network calibrations (ignored by ``model=bdt``); the one place
    of its defaults (``conf/trainer/default.yaml`` documents each key)."""

    epochs: int = 10
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-4
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0
    patience: int = 3
    min_delta: float = 0.0
    precision: str = "auto"
    max_steps_per_epoch: int = 0
    prefetch: int = 2
    compile: bool = False
    compile_cache_limit: int = 64
    device: str = "auto"  # chosen by the entry point (DistEnv), not a TrainerConfig field


@dataclass
class LossSchema:
    """``loss``: the regression loss (``conf/loss/*.yaml``)."""

    name: str = MISSING
    delta: Optional[float] = MISSING


@dataclass
class ParticleSchema:
    """``particle`` (of ``conf/run.yaml`` and ``conf/simulate.yaml``)."""

    name: str = MISSING
    generate: str = MISSING
    select: str = MISSING


@dataclass
class DataSchema:
    """``data``: where the clusters are and how they become batches (``conf/data/default.yaml``).

    ``Any``: a path or a list of paths (the splits, the unlabelled sets), a preset name or a list of
    feature names (``cluster_features``), ``auto`` or a number (``workers``).
    """

    root: str = MISSING
    train: Any = MISSING
    val: Any = MISSING
    test: Any = MISSING
    unlabelled: Any = MISSING
    unlabelled_test: Any = MISSING
    make_splits: dict[str, int] = MISSING
    cell_features: list[str] = MISSING
    cluster_features: Any = MISSING
    exclude_crack: bool = MISSING
    nonfinite: str = MISSING
    out_of_range: str = MISSING
    allow_particle_mismatch: bool = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    buffer_clusters: int = MISSING
    workers: Any = MISSING
    pad_multiple: int = MISSING
    max_train_clusters: Optional[int] = MISSING
    norm_max_clusters: int = MISSING
    min_cluster_et: float = MISSING
    max_train_target: Optional[float] = MISSING


@dataclass
class LoggerSchema:
    """``logger``: Weights & Biases (``conf/logger/*.yaml``)."""

    mode: str = MISSING
    project: str = MISSING
    entity: Optional[str] = MISSING
    group: str = MISSING
    tags: list[str] = MISSING


@dataclass
class AdversaryNoneSchema:
    """``adversary=none``."""

    name: str = MISSING


@dataclass
class AdversaryGRLSchema:
    """``adversary=grl``: domain-adversarial training (``conf/adversary/grl.yaml``)."""

    name: str = MISSING
    weight: float = MISSING
    lambda_max: float = MISSING
    gamma: float = MISSING
    hidden: int = MISSING
    n_layers: int = MISSING
    dropout: float = MISSING
    lr_mult: float = MISSING
    checkpoint: str = MISSING


@dataclass
class TransformerNetSchema:
    """``model.net`` of ``model=transformer``: the arguments of
    :class:`~calo_calib.models.transformer.CellTransformer` that the config chooses."""

    _target_: str = MISSING
    _partial_: bool = MISSING
    embed_dim: int = MISSING
    n_layers: int = MISSING
    n_heads: int = MISSING
    ff_mult: int = MISSING
    dropout: float = MISSING
    head_hidden: int = MISSING


@dataclass
class EdgeNetSchema(TransformerNetSchema):
    """``model.net`` of ``model=gnn_edge`` (:class:`~calo_calib.models.gnn_edge.EdgeTransformer`)."""

    pair_hidden: int = MISSING


@dataclass
class TransformerModelSchema:
    """``model=transformer``."""

    name: str = MISSING
    kind: str = MISSING
    net: TransformerNetSchema = MISSING


@dataclass
class EdgeModelSchema:
    """``model=gnn_edge``."""

    name: str = MISSING
    kind: str = MISSING
    net: EdgeNetSchema = MISSING


@dataclass
class BDTModelSchema:
    """``model=bdt`` / ``bdt_shapes``: the arguments of :class:`~calo_calib.models.bdt.BDTModel` that
    the config chooses (``_target_``; the run adds particle, loss and seed, see
    :func:`calo_calib.models.bdt.build_bdt`).

    ``net`` is the one key no yaml sets: ``scale=full`` and sweeps over networks and the BDT resize
    ``model.net`` in the same command (``++model.net.n_layers=1``); the BDT ignores it.
    """

    _target_: str = MISSING
    name: str = MISSING
    kind: str = MISSING
    binned: bool = MISSING
    num_boost_round: int = MISSING
    early_stopping_rounds: int = MISSING
    min_bin_clusters: int = MISSING
    max_train_target: Optional[float] = MISSING
    nthread: int = MISSING
    features: str = MISSING
    params: dict[str, Any] = MISSING
    net: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluationSchema:
    """``evaluation`` of ``conf/run.yaml``."""

    n_boot: int = MISSING
    min_count: int = MISSING
    plots: bool = MISSING


@dataclass
class RunSchema:
    """``conf/run.yaml``: the top-level keys of a run (the groups bring their own schemas)."""

    model: Any = MISSING
    loss: LossSchema = MISSING
    particle: ParticleSchema = MISSING
    data: DataSchema = MISSING
    trainer: TrainerSchema = MISSING
    adversary: Any = MISSING
    logger: LoggerSchema = MISSING
    seed: int = MISSING
    sweep_name: str = MISSING
    resume: Optional[str] = MISSING
    resume_allow_data_change: bool = MISSING
    compare_to: Optional[str] = MISSING
    progress: bool = MISSING
    evaluation: EvaluationSchema = MISSING


GROUP_SCHEMAS: dict[tuple[str | None, str], type] = {
    (None, "run_schema"): RunSchema,
    ("trainer", "trainer_schema"): TrainerSchema,
    ("loss", "loss_schema"): LossSchema,
    ("particle", "particle_schema"): ParticleSchema,
    ("data", "data_schema"): DataSchema,
    ("logger", "logger_schema"): LoggerSchema,
    ("adversary", "adversary_none_schema"): AdversaryNoneSchema,
    ("adversary", "adversary_grl_schema"): AdversaryGRLSchema,
    ("model", "transformer_schema"): TransformerModelSchema,
    ("model", "gnn_edge_schema"): EdgeModelSchema,
    ("model", "bdt_schema"): BDTModelSchema,
}
"""(group, schema name) -> dataclass; a group option names its schema first in its defaults list."""


def register_schemas() -> None:
    """Store every schema of :data:`GROUP_SCHEMAS` in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for (group, name), schema in GROUP_SCHEMAS.items():
        store.store(group=group, name=name, node=schema)
