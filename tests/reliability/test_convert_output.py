"""convert never writes over an input (file, via ``..`` or a symlink; the HDF5 norm dict included),
even with --overwrite, and replaces an existing destination only with --overwrite."""

from __future__ import annotations

import os

import pytest

from calo_calib.io.conversion import convert
from calo_calib.io.outputs import OutputError
from tests.reliability.conftest import assert_one_error_line, listing, run_cli, snapshot


@pytest.mark.parametrize(
    "case",
    ["dst_is_input_shard", "dst_via_dotdot", "dst_symlink_to_input", "norm_is_input_shard", "norm_is_dataset_json"],
)
def test_convert_refuses_a_destination_that_is_an_input(user_data, tmp_path, case):
    shard = user_data / "shard_00000.parquet"
    link = tmp_path / "clusters.root"
    os.symlink(shard, link)
    args, victim = {
        "dst_is_input_shard": ([shard, shard, "--to", "root"], shard),
        "dst_via_dotdot": ([user_data, user_data / ".." / user_data.name / shard.name, "--to", "salt_h5"], shard),
        "dst_symlink_to_input": ([user_data, link], shard),
        "norm_is_input_shard": ([user_data, tmp_path / "c.h5", "--norm", shard], shard),
        "norm_is_dataset_json": (
            [user_data, tmp_path / "c.h5", "--norm", user_data / "dataset.json"],
            user_data / "dataset.json",
        ),
    }[case]
    before, entries = snapshot(user_data), listing(user_data, tmp_path)
    proc = run_cli("convert", *args, "--overwrite", "--no-progress")
    assert proc.returncode == 2
    assert_one_error_line(proc, "convert", "is the input file", str(victim), "refusing to write over it")
    assert snapshot(user_data) == before and listing(user_data, tmp_path) == entries  # nothing written, no temporaries


def test_convert_refuses_to_replace_an_existing_destination_without_overwrite(user_data, tmp_path, monkeypatch):
    dst = tmp_path / "clusters.h5"
    dst.write_bytes(b"an older conversion")
    before, entries = snapshot(user_data, dst), listing(user_data, tmp_path)
    proc = run_cli("convert", user_data, dst, "--no-progress")
    assert_one_error_line(proc, "convert", str(dst), "exists", "overwrite")
    assert snapshot(user_data, dst) == before and listing(user_data, tmp_path) == entries

    # HDF5 -> ROOT goes through a temporary Parquet dataset: the destination is now checked before it.
    h5 = tmp_path / "h5" / "clusters.h5"
    convert([user_data], h5, progress=False)
    root = tmp_path / "h5" / "clusters.root"
    root.write_bytes(b"an older ntuple")
    before, entries = snapshot(tmp_path), listing(tmp_path)

    def no_work(*args, **kwargs):
        raise AssertionError("the HDF5 file was read before the destination was checked")

    monkeypatch.setattr("calo_calib.io.salt_h5.salt_h5_to_parquet", no_work)
    with pytest.raises(FileExistsError, match="clusters.root"):
        convert([h5], root, progress=False)
    assert snapshot(tmp_path) == before and listing(tmp_path) == entries


def test_convert_api_refuses_the_input_before_any_work(user_data, tmp_path):
    shard = user_data / "shard_00001.parquet"
    before = snapshot(user_data)
    with pytest.raises(OutputError, match="shard_00001.parquet"):
        convert([shard], shard, "salt_h5", overwrite=True, progress=False)
    with pytest.raises(OutputError, match="mapping.yaml"):  # the ROOT column mapping is an input too
        mapping = tmp_path / "mapping.yaml"
        mapping.write_text("columns: {}\n")
        convert([user_data], mapping, "root", mapping=mapping, overwrite=True, progress=False)
    assert snapshot(user_data) == before
