"""Sample building: the sample list, the job split and its seeds, the merge of the parts."""

from __future__ import annotations

import numpy as np

from calo_calib.validation import samples as S


def test_fixed_overrides():
    ov = S.fixed_overrides("photon", 50.0, 0.1, 0.05, 32.0)
    assert ov[:3] == ["particle=photon", "gun.spectrum=fixed", "gun.e_min=50"] and "gun.e_max=500" in ov
    assert "gun.abs_eta_min=0.05" in ov and "gun.abs_eta_max=0.15" in ov and "mu=32" in ov
    assert "gun.abs_eta_max=2.47" in S.fixed_overrides("electron", 600.0, 2.45, 0.05, 0.0)


def test_chunks_split_seed_and_order():
    smp = [S.Sample("a", "g", ["x"], 7000, {"e": 10.0}), S.Sample("b", "g", ["y"], 10, {"e": 500.0}),
           S.Sample("c", "g", ["z"], 0)]  # fmt: skip
    jobs = S.chunks(smp, 5)
    assert sorted((j["key"], j["part"], j["n"]) for j in jobs) == [("a", 0, 2334), ("a", 1, 2333), ("a", 2, 2333),
                                                                    ("b", 0, 10)]  # fmt: skip
    assert [j["cost"] for j in jobs] == sorted((j["cost"] for j in jobs), reverse=True)
    seeds = {(j["sample"], j["part"]): j["seed"] for j in jobs}
    assert seeds[(0, 1)] == int(np.random.SeedSequence([5, 0, 1]).generate_state(1)[0])
    assert len(set(seeds.values())) == 4 and S.chunks(smp, 5) == jobs


def test_merge_keeps_part_order():
    p0 = {"part": 0, "data": {"x": np.array([1, 2]), "_cells": {"cell_e": np.array([0.1])}}}
    p1 = {"part": 1, "data": {"x": np.array([3]), "_cells": {"cell_e": np.array([0.2, 0.3])}}}
    m = S.merge([p1, p0])
    assert m["x"].tolist() == [1, 2, 3] and m["_cells"]["cell_e"].tolist() == [0.1, 0.2, 0.3]


def test_collect_follows_the_sample_order_not_the_finishing_order():
    smp = [S.Sample("a", "g", ["x"], 3), S.Sample("b", "g", ["y"], 3), S.Sample("c", "g", ["z"], 3)]

    def part(i, part_no, values):
        return {"sample": i, "part": part_no, "cfg": {"key": smp[i].key}, "data": {"x": np.array(values)}}

    finished = {2: [part(2, 0, [7])], 0: [part(0, 1, [2]), part(0, 0, [1])], 1: [part(1, 0, [5])]}  # any order
    data, cfgs = S.collect(smp, finished)
    assert list(data) == ["a", "b", "c"] and list(cfgs) == ["a", "b", "c"]
    assert data["a"]["x"].tolist() == [1, 2] and cfgs["c"] == {"key": "c"}


def test_build_samples_quick():
    from calo_calib.validate import compose_validate_config

    cfg = compose_validate_config(["quick=true", "shower_shapes.enabled=false", "pileup_scan.enabled=false"])
    keys = [s.key for s in S.build_samples(cfg)]
    assert keys[:2] == ["res/electron/mu0/eta0.1/E10", "res/electron/mu0/eta0.1/E100"]
    assert {"scan/electron", "scan/photon", "etamod/electron", "corr/photon/eta0.1", "default/photon_conv"} <= set(keys)
    probes = ["rescause/electron/material1.5/eta1.2/E100", "rescause/electron/material1.5/eta1.6/E100",
              "rescause/electron/variant-material_phi/eta1.6/E100", "rescause/electron/variant-material_phi/eta1.6/E50"]
    assert keys[-4:] == probes  # the material and variant probes of calo_calib/validation/resolution_causes.py
    assert len(keys) == 2 * 2 * 2 + 2 + 1 + 1 + 3 + 4 and len(set(keys)) == len(keys)
    variant = next(s for s in S.build_samples(cfg) if s.key == probes[-1])
    assert "detector=material_phi" in variant.overrides and variant.meta["variant"] == "material_phi"
