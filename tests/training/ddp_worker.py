"""Worker for the DDP tests: trains a small transformer with the real data pipeline and training loop.

Run as one process (``python ddp_worker.py ...``) or under ``torchrun --nproc_per_node=N``; every
rank saves its final parameters and the loss history to ``<out>/rank<r>_of<N>.pt`` so that the test
can compare ranks with each other and with the single process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from calo_calib.calibration import build_run_network, cell_and_cluster_features, make_dataset
from calo_calib.config import compose_run_config
from calo_calib.data.normalization import compute_norm_stats
from calo_calib.pipeline import seed_everything
from calo_calib.training.config import TrainerConfig
from calo_calib.training.distributed import setup, teardown
from calo_calib.training.loop import fit
from calo_calib.training.losses import build_loss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    env = setup("cpu")
    torch.set_num_threads(1)  # two ranks on two cores
    cfg = compose_run_config(
        [
            "model=transformer",
            "particle=electron",
            "model.net.embed_dim=16",
            "model.net.n_layers=1",
            "model.net.n_heads=2",
            "model.net.head_hidden=16",
            f"data.batch_size={args.global_batch}",
            "data.buffer_clusters=128",
        ]
    )
    train = make_dataset(cfg, [args.train], shuffle=True, batch_size=args.global_batch, rank=env.rank, world_size=env.world_size, training=True)
    val = make_dataset(cfg, [args.val], rank=env.rank, world_size=env.world_size, training=True)
    norm = compute_norm_stats(train)
    seed_everything(int(cfg.seed))
    cells, clusters = cell_and_cluster_features(cfg)
    model = build_run_network(cfg, len(cells), len(clusters), norm.as_tensors())
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = Path(args.out)
    state = fit(
        model,
        train_batches=train.batches,
        val_batches=lambda: val.batches(0),
        steps_per_epoch=train.steps_per_epoch(),
        loss_fn=build_loss("mse"),
        cfg=TrainerConfig(epochs=args.epochs, lr=3e-3, patience=10),
        run_dir=out / f"run_ws{env.world_size}",
        env=env,
    )
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"params": params, "initial": initial, "history": state.history, "steps": state.step}, out / f"rank{env.rank}_of{env.world_size}.pt")
    teardown()


if __name__ == "__main__":
    main()
