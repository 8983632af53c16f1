"""A file that is not an ONNX model (text, truncated, empty) is one clear error naming it."""

from __future__ import annotations

import pytest

from calo_calib.calibration import ModelFileError, load_exported
from tests.reliability.conftest import assert_one_error_line, listing, run_cli, snapshot


def _bad_model(kind: str, exported_model, tmp_path):
    path = tmp_path / "models" / f"{kind}.onnx"
    path.parent.mkdir()
    if kind == "text":
        path.write_text("this is a README, not a model\n")
    elif kind == "truncated":
        data = exported_model.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("kind", ["text", "truncated", "empty"])
def test_predict_with_a_file_that_is_not_an_onnx_model(exported_model, user_data, tmp_path, kind):
    model = _bad_model(kind, exported_model, tmp_path)
    output = tmp_path / "out.parquet"
    before, entries = snapshot(user_data, model), listing(tmp_path)
    with pytest.raises(ModelFileError, match="is not a valid ONNX model"):
        load_exported(model)
    proc = run_cli("predict", f"model={model}", f"input={user_data}", f"output={output}", "progress=false")
    assert_one_error_line(proc, "predict", str(model), "is not a valid ONNX model")
    assert "DecodeError" not in proc.stderr
    assert snapshot(user_data, model) == before and listing(tmp_path) == entries  # no output, no temporary
