"""load_model / MidasModel behaviour beyond parity: cache, devices, precision, input checks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import reference_checkpoint, reference_data, run_python
from depth_addon.errors import ModelUnavailableError
from depth_addon.midas import get_spec, load_model

pytestmark = pytest.mark.torch

SMALL = "midas_v21_small_256"


@pytest.fixture(scope="module")
def small_checkpoint(midas_reference):
    return reference_checkpoint(SMALL)


@pytest.fixture(scope="module")
def small_model(small_checkpoint):
    return load_model(SMALL, checkpoint=small_checkpoint, device="cpu")


def test_cache_returns_the_same_object(small_model, small_checkpoint):
    from depth_addon.midas.model import resolve_device

    assert load_model(SMALL, checkpoint=str(small_checkpoint), device="cpu") is small_model
    if resolve_device("auto") == "cpu":
        assert load_model(SMALL, checkpoint=small_checkpoint) is small_model


def test_cache_distinguishes_files(small_model, small_checkpoint, tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copyfile(small_checkpoint, copy)
    other_file = load_model(SMALL, checkpoint=copy, device="cpu")
    assert other_file is not small_model
    assert other_file.checkpoint == copy.resolve()


def test_cache_is_bounded(small_checkpoint, tmp_path):
    from depth_addon.midas import model as model_module

    loaded = []
    for index in range(model_module.CACHE_SIZE + 1):
        copy = tmp_path / f"copy{index}.pt"
        shutil.copyfile(small_checkpoint, copy)
        loaded.append(load_model(SMALL, checkpoint=copy, device="cpu"))
    assert len(model_module._cache) == model_module.CACHE_SIZE
    assert load_model(SMALL, checkpoint=tmp_path / "copy0.pt", device="cpu") is not loaded[0]  # evicted
    assert load_model(SMALL, checkpoint=loaded[-1].checkpoint, device="cpu") is loaded[-1]


def test_auto_device_prefers_accelerators():
    import torch

    from depth_addon.midas.model import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"


def test_unavailable_or_unknown_device_is_refused():
    import torch

    from depth_addon.midas.model import resolve_device

    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelUnavailableError, match="'cuda' is not available"):
            resolve_device("cuda")


def test_model_reports_spec_and_device(small_model):
    assert small_model.spec is get_spec(SMALL)
    assert small_model.device == "cpu"
    assert small_model.precision == "fp32"
    assert next(small_model.net.parameters()).device.type == "cpu"


def test_bf16_on_cpu_runs_and_is_close(small_checkpoint):
    ref = reference_data(SMALL)
    model = load_model(SMALL, checkpoint=small_checkpoint, device="cpu", precision="bf16")
    import torch

    assert next(model.net.parameters()).dtype == torch.bfloat16
    pred = model.predict(ref["image"])
    assert pred.dtype == np.float32 and pred.shape == ref["pred"].shape
    # bf16 keeps 8 bits of mantissa: about 1% here, versus 1e-6 in fp32
    assert np.abs(pred - ref["pred"]).max() <= 5e-2 * np.abs(ref["pred"]).max()


def test_unknown_model_type_and_precision_are_refused(small_checkpoint):
    with pytest.raises(ValueError, match="unknown model type"):
        load_model("midas_v4", checkpoint=small_checkpoint)
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        load_model(SMALL, checkpoint=small_checkpoint, precision="fp8")


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((32, 48), np.uint8), r"\(H, W, 3\) RGB image, got an array of shape \(32, 48\)"),
        (np.zeros((32, 48, 4), np.uint8), r"shape \(32, 48, 4\)"),
        (np.zeros((0, 48, 3), np.uint8), r"shape \(0, 48, 3\)"),
        (np.zeros((32, 48, 3), np.float32), "uint8 RGB image .* got dtype float32"),
        ([[0, 0, 0]], "numpy array, got list"),
    ],
)
def test_predict_validates_rgb(small_model, bad, message):
    with pytest.raises(ValueError, match=message):
        small_model.predict(bad)


def test_predict_keeps_photo_size_for_any_shape(small_model):
    rgb = np.random.default_rng(0).integers(0, 256, (37, 101, 3), dtype=np.uint8)
    depth = small_model.predict(rgb)
    assert depth.shape == (37, 101) and depth.dtype == np.float32 and np.isfinite(depth).all()


def test_extremely_thin_photo_still_runs(small_model):
    # upper_bound would round the short side to 0 (the official code crashes there)
    from depth_addon.midas.transforms import network_input_size

    assert network_input_size(1000, 1, small_model.spec) == (256, 32)
    assert small_model.predict(np.zeros((1, 1000, 3), np.uint8)).shape == (1, 1000)


def test_checkpoint_none_uses_weights_cache(small_checkpoint, tmp_path):
    """checkpoint=None finds the file in the weights folder (no network: it is already there)."""
    spec = get_spec(SMALL)
    if spec.size_bytes is not None:
        pytest.skip("the table pins the official file size; the reference checkpoint differs")
    shutil.copyfile(small_checkpoint, tmp_path / spec.filename)
    model = load_model(SMALL, device="cpu", weights_dir=tmp_path)
    assert model.checkpoint == (tmp_path / spec.filename).resolve()


def test_missing_builder_is_a_clear_error():
    from dataclasses import replace

    from depth_addon.midas import model as model_module

    spec = get_spec(SMALL)
    spec = replace(spec, arch=replace(spec.arch, network="no_such_module"))
    with pytest.raises(ModelUnavailableError, match="not available in this version"):
        model_module.build_network(spec)


def test_architecture_missing_from_timm_is_a_clear_error():
    from depth_addon.midas.nets._timm import create_timm_model

    with pytest.raises(ModelUnavailableError, match="has no 'vit_from_the_future'"):
        create_timm_model("vit_from_the_future")


@pytest.mark.parametrize("model_type", ["dpt_swin2_tiny_256", "dpt_levit_224", "dpt_beit_base_384"])
def test_fast_build_computes_the_buffers_checkpoints_lack(model_type):
    """The meta-device build skips random init but must recompute non-persistent buffers exactly."""
    import torch

    from depth_addon.midas import model as model_module

    spec = get_spec(model_type)
    fast = model_module.build_network_for_loading(spec)
    ordinary = model_module.build_network(spec)
    persistent = set(ordinary.state_dict())
    computed = {name: buf for name, buf in ordinary.named_buffers() if name not in persistent}
    assert computed, f"{model_type} was expected to have buffers that checkpoints do not hold"
    fast_buffers = dict(fast.named_buffers())
    for name, buf in computed.items():
        assert torch.equal(fast_buffers[name], buf), name
    assert all(p.device.type == "cpu" for p in fast.parameters())


def test_fast_build_falls_back_when_a_buffer_cannot_be_recomputed(monkeypatch):
    import torch

    from depth_addon.midas import model as model_module

    class Net(torch.nn.Module):  # a computed buffer without init_non_persistent_buffers()
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)
            self.register_buffer("index", torch.arange(5), persistent=False)

    monkeypatch.setattr(model_module, "build_network", lambda spec: Net())
    net = model_module.build_network_for_loading(get_spec(SMALL))
    assert net.index.device.type == "cpu" and torch.equal(net.index, torch.arange(5))


@pytest.mark.pure
@pytest.mark.parametrize(
    ("fake_torch", "shown"),
    [
        (None, "ModuleNotFoundError"),  # not installed
        ("raise OSError('[WinError 126] Error loading fbgemm.dll')", "OSError: [WinError 126]"),  # broken DLLs
    ],
)
def test_missing_or_broken_torch_is_a_clear_error(tmp_path, fake_torch, shown):


    if fake_torch is None:
        setup = "sys.modules['torch'] = None"
    else:
        (tmp_path / "torch").mkdir()
        (tmp_path / "torch" / "__init__.py").write_text(fake_torch + "\n")
        setup = f"sys.path.insert(0, {str(tmp_path)!r})"
    code = (
        f"import sys; {setup}\n"
        "from depth_addon import midas\n"
        "from depth_addon.errors import DependencyMissingError\n"
        "try:\n"
        f"    midas.load_model({SMALL!r}, checkpoint='missing.pt')\n"
        "except DependencyMissingError as exc:\n"
        "    print(exc)\n"
    )
    result = run_python(code=code, check=True)
    assert shown in result.stdout and "pip install --force-reinstall torch timm" in result.stdout


def test_a_new_model_type_is_one_table_row(monkeypatch, tmp_path):
    """A type the add-on does not ship (ViT-S/16 under the DPT decoder) from nothing but a table row:
    it builds, its checkpoint loads strictly through load_model, and predict runs."""
    import torch

    from depth_addon.midas import registry
    from depth_addon.midas.model import build_network
    from depth_addon.midas.registry import HALF_MEAN, HALF_STD, MIT, Architecture, ModelSpec

    row = ModelSpec(
        name="dpt_vit_small_test", label="DPT ViT-S (test)", family=registry.MIDAS, description="ViT-S/16",
        arch=Architecture(network="vit", timm_name="vit_small_patch16_384", hooks=(2, 5, 8, 11),
                          features=(48, 96, 192, 384), backbone_args=dict(readout="project"),
                          decoder=dict(features=64, non_negative=True)),
        url="http://127.0.0.1:9/dpt_vit_small_test.pt", net_w=128, net_h=128, keep_aspect_ratio=True,
        resize_method="minimal", mean=HALF_MEAN, std=HALF_STD, licence=MIT, size_mb=90, speed="fast",
    )
    monkeypatch.setitem(registry.MODELS, row.name, row)
    torch.manual_seed(0)
    checkpoint = tmp_path / row.filename
    torch.save(build_network(row).state_dict(), checkpoint)

    model = load_model(row.name, checkpoint=checkpoint, device="cpu")
    rgb = np.random.default_rng(1).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    depth = model.predict(rgb)
    assert model.spec is row and depth.shape == (45, 70) and np.isfinite(depth).all()
    assert [tuple(layer.shape[1:2]) for layer in model.net.pretrained(torch.zeros(1, 3, 128, 128))] == [
        (48,), (96,), (192,), (384,)]


def test_table_feature_dims_are_checked_against_the_backbone():
    from dataclasses import replace

    from depth_addon.midas.model import build_network

    spec = get_spec("dpt_swin2_tiny_256")
    wrong = replace(spec, arch=replace(spec.arch, features=(96, 192, 384, 384)))
    with pytest.raises(ValueError, match=r"backbone gives \(96, 192, 384, 768\) channels"):
        build_network(wrong)


_PRIVATE_TIMM_RUN = r"""
import json, sys
import torch
from depth_addon.midas import load_model
from depth_addon.midas.nets import _timm_loader
model = load_model(sys.argv[1], checkpoint=sys.argv[2], device="cpu")
model.predict(__import__("numpy").zeros((40, 60, 3), "uint8"))
print(json.dumps({
    "global": sorted(m for m in sys.modules if m.partition(".")[0] in ("timm", "torchvision")),
    "dynamo": "torch._dynamo" in sys.modules,
    "private": sorted(m for m in sys.modules if m.startswith(_timm_loader.PRIVATE + ".timm.models.")),
    "timm_files": all(m.__file__.startswith(str(_timm_loader._root("timm")))
                      for n, m in sys.modules.items() if n.startswith(_timm_loader.PRIVATE + ".timm.")),
}))
"""


def test_timm_is_imported_privately_without_torchvision(small_checkpoint):
    """A run imports only the timm modules the network uses, under a private name: the global
    ``timm`` / ``torchvision`` (other Blender add-ons') stay unimported, and so does torch._dynamo."""
    import json

    result = run_python(SMALL, small_checkpoint, code=_PRIVATE_TIMM_RUN, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["global"] == [] and not report["dynamo"]
    assert "depth_addon_private_timm.timm.models.efficientnet" in report["private"]
    assert len(report["private"]) < 30, report["private"]  # not timm's ~100 model modules
    assert report["timm_files"]  # timm's own installed code, not a copy


def test_every_timm_backbone_of_the_table_is_found():
    from depth_addon.midas import MODEL_TYPES
    from depth_addon.midas.nets import _timm_loader

    names = {get_spec(t).arch.timm_name for t in MODEL_TYPES} - {None, ""}
    assert names and all(_timm_loader.model_module_of(n) for n in names), names


@pytest.mark.parametrize("absent", ["timm", "torchvision"])
def test_missing_timm_or_torchvision_is_a_clear_error(absent):
    code = (f"import sys; sys.modules[{absent!r}] = None\n"
            "from depth_addon.errors import DependencyMissingError\n"
            "from depth_addon.midas.nets._timm import import_timm\n"
            "try:\n    import_timm()\nexcept DependencyMissingError as exc:\n    print(exc)\n")
    result = run_python(code=code, check=True)
    assert f"{absent} is not installed" in result.stdout and "pip install timm" in result.stdout
