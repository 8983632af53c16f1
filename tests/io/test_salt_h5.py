"""SALT HDF5 layout: exact Parquet round trips, the layout SALT expects, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from numpy.lib import recfunctions as rfn

from calo_calib.convert import build_parser
from calo_calib.convert import main as convert_main
from calo_calib.io.parquet import read_clusters
from calo_calib.io.salt_h5 import default_norm_path, parquet_to_salt_h5, read_norm_dict, salt_h5_to_parquet
from calo_calib.io.schema import CELL_COLUMNS, COLUMNS

N = 200


@pytest.fixture(scope="module")
def converted(tiny_data, tmp_path_factory):
    """particle -> (source dataset dir, h5 file, converted-back dataset dir)."""
    base = tmp_path_factory.mktemp("salt_h5")
    out = {}
    for particle in ("electron", "photon_conv"):
        src = tiny_data(particle, "train", n=N)
        h5 = parquet_to_salt_h5(src, base / f"{particle}.h5")
        back = salt_h5_to_parquet(h5, base / f"{particle}_back")
        out[particle] = (src, h5, back)
    return out


@pytest.mark.parametrize("particle", ["electron", "photon_conv"])
def test_round_trip_preserves_every_value_of_every_column(converted, identical, particle):
    src, _, back = converted[particle]
    original, restored = read_clusters(src), read_clusters(back)
    assert original.column_names == [c.name for c in COLUMNS]
    identical(original, restored)
    summary = json.loads((back / "dataset.json").read_text())
    assert summary["n_clusters"] == N and summary["particle"] == particle and summary["source_format"] == "salt_h5"
    # the simulation's provenance travels through the HDF5 attributes
    assert summary["source_metadata"]["particle"] == particle


def test_layout_is_what_salt_expects(converted):
    src, h5_path, _ = converted["photon_conv"]
    table = read_clusters(src)
    n_cells = table["n_cells"].to_numpy()
    with h5py.File(h5_path, "r") as f:
        clusters, cells = f["clusters"], f["cells"]
        assert clusters.ndim == 1 and clusters.shape == (N,) and clusters.dtype.names is not None
        assert cells.ndim == 2 and cells.shape == (N, int(n_cells.max())) and cells.dtype.names is not None
        assert set(cells.dtype.names) == set(CELL_COLUMNS) | {"valid"}
        assert cells.dtype["valid"] == np.bool_
        assert clusters.dtype["cluster_e"] == np.float32 and clusters.dtype["n_cells"] == np.int32
        assert clusters.dtype["conversion_type"] == np.int8 and cells.dtype["cell_layer"] == np.int8
        c, ce = clusters[:], cells[:]
        valid = ce["valid"]
        assert np.array_equal(valid.sum(axis=1), n_cells)
        # real cells first, padding after: valid is a prefix of every row, padding is all zero
        assert np.array_equal(valid, np.arange(cells.shape[1])[None, :] < n_cells[:, None])
        for name in CELL_COLUMNS:
            assert not ce[name][~valid].any(), name
        assert np.array_equal(ce["cell_e"][valid], table["cell_e"].combine_chunks().flatten().to_numpy())
        assert c["particle"][0] == b"photon_conv"
        assert f.attrs["format_version"] == 1 and f.attrs["mask_field"] == "valid"
        assert json.loads(cells.attrs["units"])["cell_e"] == "GeV"
        assert json.loads(clusters.attrs["units"])["conv_r"] == "mm"
        e_valid = ce["cell_e"][valid].astype(np.float64)
        cluster_e = c["cluster_e"].astype(np.float64)

    norm = read_norm_dict(default_norm_path(h5_path))
    assert default_norm_path(h5_path).name == "photon_conv.norm.yaml"
    assert set(norm) == {"clusters", "cells"}
    assert set(norm["cells"]) == set(CELL_COLUMNS)
    assert "particle" not in norm["clusters"] and "cluster_e" in norm["clusters"]
    for per in norm.values():
        for ms in per.values():
            assert set(ms) == {"mean", "std"} and ms["std"] > 0
    assert norm["cells"]["cell_e"]["mean"] == pytest.approx(e_valid.mean(), rel=1e-9)  # valid cells only
    assert norm["cells"]["cell_e"]["std"] == pytest.approx(e_valid.std(), rel=1e-9)
    assert norm["clusters"]["cluster_e"]["mean"] == pytest.approx(cluster_e.mean(), rel=1e-9)
    assert norm["clusters"]["cluster_e_tg3"] == {"mean": 0.0, "std": 1.0}  # constant: std 1, not 0


def test_data_read_back_gives_the_same_training_batches(converted, same_batches):
    src, _, back = converted["photon_conv"]
    same_batches(src, back, "photon_conv")


def test_too_many_cells_is_an_error_naming_the_row(converted, tmp_path):
    src, _, _ = converted["electron"]
    n_cells = read_clusters(src, columns=["n_cells"])["n_cells"].to_numpy()
    limit = int(np.sort(n_cells)[len(n_cells) // 2])
    first = int(np.flatnonzero(n_cells > limit)[0])
    dst = tmp_path / "x.h5"
    with pytest.raises(
        ValueError, match=rf"row \d+ \(cluster {first} of the input\): {n_cells[first]} cells > max_cells = {limit}"
    ):
        parquet_to_salt_h5(src, dst, max_cells=limit)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left behind


def test_truncate_keeps_the_most_energetic_cells(converted, tmp_path):
    src, _, _ = converted["electron"]
    table = read_clusters(src)
    n_cells = table["n_cells"].to_numpy()
    limit = int(np.median(n_cells))
    dst = parquet_to_salt_h5(src, tmp_path / "t.h5", max_cells=limit, truncate=True)
    with h5py.File(dst) as f:
        c, ce = f["clusters"][:], f["cells"][:]
        assert f["cells"].shape == (N, limit)
        assert f.attrs["truncated_clusters"] == int((n_cells > limit).sum())
        assert f.attrs["dropped_cells"] == int(np.maximum(n_cells - limit, 0).sum())
    assert np.array_equal(c["n_cells"], np.minimum(n_cells, limit))
    i = int(np.flatnonzero(n_cells > limit)[0])
    e = np.asarray(table["cell_e"][i].values.to_numpy())
    kept = ce["cell_e"][i][ce["valid"][i]]
    # the kept cells are the `limit` largest energies, in their original order
    top = np.sort(np.argsort(-e, kind="stable")[:limit])
    assert np.array_equal(kept, e[top])
    back = read_clusters(salt_h5_to_parquet(dst, tmp_path / "back"))
    assert np.array_equal(back["n_cells"].to_numpy(), np.minimum(n_cells, limit))


def _rewrite(src, dst, drop_clusters=(), drop_cells=(), cast=None):
    """Copy an h5 file without some fields (and optionally cast fields to another dtype)."""
    with h5py.File(src) as f:
        c = rfn.drop_fields(f["clusters"][:], list(drop_clusters), usemask=False)
        ce = rfn.drop_fields(f["cells"][:], list(drop_cells), usemask=False)
    if cast:
        c = c.astype([(n, cast.get(n, c.dtype[n])) for n in c.dtype.names])
    with h5py.File(dst, "w") as f:
        f["clusters"] = c
        f["cells"] = ce
    return dst


def test_missing_fields_are_listed_with_the_file(converted, tmp_path):
    _, h5, _ = converted["electron"]
    bad = _rewrite(h5, tmp_path / "bad.h5", drop_clusters=["cluster_e", "truth_e"], drop_cells=["cell_noise", "valid"])
    with pytest.raises(ValueError, match="missing field") as err:
        salt_h5_to_parquet(bad, tmp_path / "out")
    msg = str(err.value)
    assert str(bad) in msg
    for name in ("cluster_e", "truth_e", "cell_noise", "cells.valid"):
        assert name in msg
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"no dataset 'jets'.*'cells', 'clusters'"):
        salt_h5_to_parquet(h5, tmp_path / "out", clusters_name="jets")


def test_foreign_file_without_n_cells_and_with_float64_fields(converted, identical, tmp_path):
    """A SALT file made elsewhere: no n_cells, no column-order attribute, float64 cluster fields."""
    src, h5, _ = converted["electron"]
    foreign = _rewrite(h5, tmp_path / "foreign.h5", drop_clusters=["n_cells"], cast={"cluster_e": np.float64})
    back = salt_h5_to_parquet(foreign, tmp_path / "back")
    identical(read_clusters(src), read_clusters(back))  # n_cells derived from valid, cluster_e cast back to float32


def test_n_cells_disagreeing_with_valid_names_the_row(converted, tmp_path):
    _, h5, _ = converted["electron"]
    bad = _rewrite(h5, tmp_path / "bad.h5")
    with h5py.File(bad, "r+") as f:
        c = f["clusters"][:]
        c["n_cells"][7] += 1
        f["clusters"][:] = c
    with pytest.raises(ValueError, match=r"row 7: clusters.n_cells = \d+ but cells has \d+ valid cells"):
        salt_h5_to_parquet(bad, tmp_path / "out")


def test_existing_outputs_are_not_overwritten(converted, tmp_path):
    src, h5, back = converted["electron"]
    with pytest.raises(FileExistsError):
        parquet_to_salt_h5(src, h5)
    with pytest.raises(FileExistsError):
        salt_h5_to_parquet(h5, back)
    with pytest.raises(ValueError, match="refusing to overwrite"):
        (tmp_path / "notes.txt").write_text("keep me")
        salt_h5_to_parquet(h5, tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").exists()


def test_cli_round_trip_and_error_exit(converted, identical, tmp_path, capsys):
    src, _, _ = converted["electron"]
    h5 = tmp_path / "cli.h5"
    assert convert_main([str(src), str(h5), "--no-progress", "--norm", str(tmp_path / "n.yaml")]) == 0
    assert yaml.safe_load((tmp_path / "n.yaml").read_text())["clusters"]["cluster_e"]["std"] > 0
    assert convert_main([str(h5), str(tmp_path / "back"), "--no-progress"]) == 0
    identical(read_clusters(src), read_clusters(tmp_path / "back"))
    assert convert_main([str(src), str(tmp_path / "small.h5"), "--max-cells", "3", "--no-progress"]) == 2
    assert "max_cells = 3" in capsys.readouterr().err


def test_formats_doc_lists_every_cli_option():
    text = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text()
    options = [s for a in build_parser()._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
    assert options
    for opt in options:
        assert f"`{opt}`" in text, f"docs/formats.md does not document {opt}"
