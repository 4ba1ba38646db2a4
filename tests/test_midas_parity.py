"""Parity with the official code for every model type in the table: MiDaS ``run.py``
(optimize=False, timm 0.6.13) and Depth Anything V2 ``infer_image`` (commit a561b84).

Each reference .npz holds what the official code computed on a test image with a deterministic
checkpoint; ``reference_checkpoint`` rebuilds that checkpoint file, which we load through the
normal ``load_model`` path. One forward pass per model: ``predict`` is ``prepare`` ->
``forward`` -> ``postprocess``, each compared with the official intermediate. The tolerance is
relative to the official values: ``max|ours - official| <= 1e-5 * max|official|`` (measured:
0 to 6.5e-6 on MiDaS).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import reference_checkpoint, reference_data
from depth_addon.errors import CheckpointMismatchError
from depth_addon.midas import MODEL_TYPES, get_spec, load_model

pytestmark = pytest.mark.torch

REL_TOL = 1e-5
SLOW_ABOVE_VALUES = 150_000_000


def _param(model_type: str):
    spec = get_spec(model_type)
    big = spec.value_count is None or spec.value_count > SLOW_ABOVE_VALUES
    return pytest.param(model_type, marks=[pytest.mark.slow] if big else [], id=model_type)


def _max_rel_error(ours: np.ndarray, official: np.ndarray) -> float:
    assert ours.shape == official.shape, f"shape {ours.shape} != official {official.shape}"
    return float(np.abs(ours.astype(np.float64) - official).max() / np.abs(official).max())


@pytest.fixture
def fresh_cache():
    """Each parity test loads its own model and frees it afterwards (13 models do not fit at once)."""
    from depth_addon.midas.model import clear_cache

    clear_cache()
    yield
    clear_cache()


@pytest.mark.parametrize("model_type", [_param(t) for t in MODEL_TYPES])
def test_matches_official(model_type, fresh_cache, midas_reference):
    ref = reference_data(model_type)
    model = load_model(model_type, checkpoint=reference_checkpoint(model_type), device="cpu")
    assert model.spec.name == model_type and model.device == "cpu"

    net_input = model.prepare(ref["image"])
    assert _max_rel_error(net_input, ref["net_input"]) <= REL_TOL
    raw = model.forward(net_input)   # the one forward pass; predict() = postprocess(forward(prepare))
    errors = {"net_output": _max_rel_error(raw.cpu().numpy(), ref["net_output"])}
    pred = model.postprocess(raw, ref["image"].shape[:2])
    assert pred.dtype == np.float32
    errors["pred"] = _max_rel_error(pred, ref["pred"])
    print(f"{model_type}: max relative error {errors}")
    assert max(errors.values()) <= REL_TOL, errors


def test_wrapped_checkpoint_loads(fresh_cache, midas_reference):
    model_type = "midas_v21_small_256"
    ref = reference_data(model_type)
    model = load_model(model_type, checkpoint=reference_checkpoint(model_type, wrap=True), device="cpu")
    assert _max_rel_error(model.predict(ref["image"]), ref["pred"]) <= REL_TOL


def test_checkpoint_of_another_type_is_refused(fresh_cache, midas_reference):
    small = reference_checkpoint("midas_v21_small_256")
    with pytest.raises(CheckpointMismatchError) as info:
        load_model("midas_v21_384", checkpoint=small, device="cpu")
    message = str(info.value)
    assert "'midas_v21_384'" in message
    assert "missing keys" in message and "unexpected keys" in message
    assert "looks like a 'midas_v21_small_256' checkpoint" in message


def test_truncated_checkpoint_gives_clear_error(tmp_path, fresh_cache, midas_reference):
    data = reference_checkpoint("midas_v21_small_256").read_bytes()
    truncated = tmp_path / "midas_v21_small_256.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointMismatchError, match="cut short") as info:
        load_model("midas_v21_small_256", checkpoint=truncated, device="cpu")
    assert "besides tensors" not in str(info.value)


def test_non_checkpoint_file_gives_clear_error(tmp_path, fresh_cache):
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    with pytest.raises(CheckpointMismatchError, match="bytes of text, not a checkpoint"):
        load_model("midas_v21_small_256", checkpoint=text, device="cpu")


@pytest.mark.parametrize("junk", ["random", "pickle_cut_short"])
def test_corrupt_checkpoints_are_not_called_code_carrying(tmp_path, fresh_cache, junk):
    """Only a pickle naming a GLOBAL carries code; junk or a cut-short pickle is corrupt."""
    import io

    import torch

    legacy = io.BytesIO()
    torch.save({"w": torch.ones(64)}, legacy, _use_new_zipfile_serialization=False)
    data = {"random": bytes(range(256)) * 40, "pickle_cut_short": legacy.getvalue()[:200]}[junk]
    path = tmp_path / "bad.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointMismatchError) as info:
        load_model("midas_v21_small_256", checkpoint=path, device="cpu")
    message = str(info.value)
    assert "besides tensors" not in message and "\n" not in message
    assert ("not a PyTorch checkpoint" if junk == "random" else "damaged PyTorch checkpoint") in message


def test_state_dict_of_wrong_kind_is_refused(tmp_path, fresh_cache):
    import torch

    odd = tmp_path / "odd.pt"
    torch.save({"epoch": 3, "lr": 0.1}, odd)
    with pytest.raises(CheckpointMismatchError, match="not a model state_dict"):
        load_model("midas_v21_small_256", checkpoint=odd, device="cpu")


class _MakesDirectoryWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def test_checkpoint_with_code_is_refused_not_run(tmp_path, fresh_cache):
    """weights_only=True: a pickle that would call a function is refused, and nothing runs."""
    import torch

    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _MakesDirectoryWhenUnpickled(marker), "optimizer": {}}, evil)
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        load_model("midas_v21_small_256", checkpoint=evil, device="cpu")
    assert not marker.exists()
