"""Depth Anything V2 beyond parity (which is in test_midas_parity.py): any photo size and aspect,
the official position-embedding resampling, strict loading, depth kinds through the CLI, the API
and Blender (a metric model's geometry measures in metres), licence notices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import reference_checkpoint, reference_npz
from depth_addon.midas import get_spec, load_model

SMALL = "depth_anything_v2_vits"
METRIC_SMALL = "depth_anything_v2_metric_hypersim_vits"
DAV2_TYPES = ["depth_anything_v2_vits", "depth_anything_v2_vitb", "depth_anything_v2_vitl",
              "depth_anything_v2_metric_hypersim_vits", "depth_anything_v2_metric_hypersim_vitl",
              "depth_anything_v2_metric_vkitti_vitl"]


@pytest.mark.pure
@pytest.mark.parametrize(("height", "width", "net_hw"), [
    (240, 320, (518, 686)), (300, 451, (518, 784)), (297, 197, (784, 518)), (518, 518, (518, 518)),
    (1080, 1920, (518, 924)), (4000, 3000, (686, 518)),
])
def test_network_input_is_official_for_any_aspect(height, width, net_hw):
    """lower_bound: the short side becomes 518, the long one the nearest multiple of 14 (README examples)."""
    from depth_addon.midas.transforms import network_input_size

    net_w, net_h = network_input_size(width, height, get_spec(SMALL))
    assert (net_h, net_w) == net_hw


@pytest.mark.pure
@pytest.mark.parametrize("model_type", DAV2_TYPES)
def test_table_rows_match_the_reference_settings(dav2_reference, model_type):
    spec = get_spec(model_type)
    with np.load(reference_npz(model_type)) as ref:
        assert (spec.net_w, spec.net_h) == (int(ref["net_w"]), int(ref["net_h"]))
        assert spec.keep_aspect_ratio == bool(ref["keep_aspect_ratio"])
        assert spec.resize_method == str(ref["resize_method"])
        assert spec.ensure_multiple_of == int(ref["ensure_multiple_of"])
        np.testing.assert_array_equal(spec.mean, ref["norm_mean"])
        np.testing.assert_array_equal(spec.std, ref["norm_std"])
        assert str(ref["output_interpolation"]) == "torch bilinear align_corners=True"
        assert spec.output_resize == "bilinear_aligned"
        assert (spec.tensor_count, spec.value_count) == (int(ref["n_keys"]), int(ref["n_params"]))
        if "max_depth" in ref.files:
            assert spec.depth_kind == "metric" and spec.max_depth == float(ref["max_depth"])
        else:
            assert spec.depth_kind == "inverse" and spec.max_depth is None
        assert json.loads(str(ref["versions"]))["dav2_commit"].startswith("a561b84")


@pytest.mark.torch
def test_position_table_resampling_is_dinov2s_not_timms():
    """Square 518 input: the table as it is. Otherwise the scale-factor (+0.1) bicubic resampling,
    which differs from timm's size-based antialiased one (the pitfall the official code sets)."""
    import torch

    from depth_addon.midas.nets._timm import import_timm
    from depth_addon.midas.nets.dinov2 import official_pos_embed

    resample_abs_pos_embed = import_timm().layers.resample_abs_pos_embed

    table = torch.randn(1, 1 + 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    assert official_pos_embed(table, 37, 37) is table
    ours = official_pos_embed(table, 37, 49)
    assert tuple(ours.shape) == (1, 1 + 37 * 49, 8) and torch.equal(ours[:, 0], table[:, 0])
    timms = resample_abs_pos_embed(table, new_size=(37, 49), old_size=(37, 37), num_prefix_tokens=1)
    assert (ours - timms).abs().max() > 1e-2 * table.abs().max()
    # the side that stays at 37 patches is still resampled (scale 37.1 / 37), as DINOv2 does
    grid = ours[0, 1:].reshape(37, 49, 8)
    assert not torch.allclose(grid[:, 0], table[0, 1:].reshape(37, 37, 8)[:, 0])


@pytest.fixture(scope="module")
def small_model(dav2_reference):
    return load_model(SMALL, checkpoint=reference_checkpoint(SMALL), device="cpu")


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(297, 197), (37, 61), (40, 30)])
def test_predict_keeps_any_photo_size_portrait_too(small_model, shape):
    rgb = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    depth = small_model.predict(rgb)
    assert depth.shape == shape and depth.dtype == np.float32 and np.isfinite(depth).all()
    assert (depth > 0).all()  # relative: ReLU output, and det-init weights never give 0


@pytest.mark.torch
def test_absurdly_elongated_photo_is_refused_before_any_work(small_model):
    """lower_bound keeps the short side: a 1x300 strip would become a 518x155400 input."""
    with pytest.raises(ValueError, match=r"1x300 photo is too elongated .*input 518x155400"):
        small_model.predict(np.zeros((300, 1, 3), np.uint8))


@pytest.mark.torch
def test_strict_load_drops_only_the_named_unused_key(tmp_path, dav2_reference):
    """mask_token is accepted (training only); any other extra key is refused."""
    import torch

    from depth_addon.errors import CheckpointMismatchError

    assert get_spec(SMALL).arch.unused_keys == ("mask_token",)
    state = torch.load(reference_checkpoint(SMALL), map_location="cpu", weights_only=True)
    assert "pretrained.mask_token" in state
    extra = dict(state, **{"pretrained.register_tokens": torch.zeros(1, 4, 384)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(CheckpointMismatchError, match="1 unexpected keys .*register_tokens"):
        load_model(SMALL, checkpoint=tmp_path / "extra.pth", device="cpu")
    without = {k: v for k, v in state.items() if k != "pretrained.mask_token"}
    torch.save(without, tmp_path / "without.pth")
    assert load_model(SMALL, checkpoint=tmp_path / "without.pth", device="cpu").spec.name == SMALL


@pytest.mark.torch
def test_checkpoint_of_another_size_names_it(dav2_reference):
    from depth_addon.errors import CheckpointMismatchError

    with pytest.raises(CheckpointMismatchError, match="looks like a 'depth_anything_v2_vits' checkpoint"):
        load_model("depth_anything_v2_vitb", checkpoint=reference_checkpoint(SMALL), device="cpu")


@pytest.mark.slow
@pytest.mark.torch
def test_depth_cli_writes_metres_for_a_metric_model(tmp_path, sample_photo, dav2_reference):
    from depth_addon.cli import main
    from depth_addon.imageio import read_image

    checkpoint = reference_checkpoint(METRIC_SMALL)
    assert main(["depth", str(sample_photo), "-o", str(tmp_path / "d.npy"), "--model", METRIC_SMALL,
                 "--weights", str(checkpoint), "--device", "cpu", "-q"]) == 0
    expected = load_model(METRIC_SMALL, checkpoint=checkpoint, device="cpu").predict(read_image(sample_photo))
    got = np.load(tmp_path / "d.npy")
    np.testing.assert_array_equal(got, expected)
    assert 1.0 < got.min() and got.max() <= 20.0  # metres, inside the indoor model's range
    assert main(["depth", str(sample_photo), "-o", str(tmp_path / "d.png"), "--model", METRIC_SMALL,
                 "--weights", str(checkpoint), "--device", "cpu", "-q"]) == 0
    import cv2

    from depth_addon.imageio import read_depth

    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)  # lighter = nearer, as every depth picture
    near, far = np.unravel_index(got.argmin(), got.shape), np.unravel_index(got.argmax(), got.shape)
    assert raw[near] == 65535 and raw[far] == 0
    step = (got.max() - got.min()) / 65535  # its recorded range gives the metres back, within one step
    np.testing.assert_allclose(read_depth(tmp_path / "d.png"), got, rtol=0, atol=step)


@pytest.mark.pure
@pytest.mark.parametrize(("command", "output"), [("depth", "d.png"), ("mesh", "m.blend")])
def test_non_commercial_model_is_announced_before_the_download(tmp_path, sample_photo, capsys, command, output):
    from depth_addon.cli import main

    # The tests' weights URLs point at a closed loopback port: the download fails after the note.
    assert main([command, str(sample_photo), "-o", str(tmp_path / output), "--model",
                 "depth_anything_v2_vitb", "-q"]) == 2
    err = capsys.readouterr().err
    note, error = err.index("note: the Depth Anything V2 Base weights are licensed CC-BY-NC-4.0"), err.index("error:")
    assert note < error and "non-commercial use only" in err
    assert main([command, str(sample_photo), "-o", str(tmp_path / output), "--model", SMALL, "-q"]) == 2
    assert "note:" not in capsys.readouterr().err  # Apache-2.0: nothing to say


@pytest.mark.pure
def test_cli_help_groups_models_by_family_with_licences(capsys):
    from depth_addon.cli import main

    with pytest.raises(SystemExit):
        main(["depth", "--help"])
    out = capsys.readouterr().out
    midas, dav2 = out.index("  MiDaS\n"), out.index("  Depth Anything V2\n")
    assert midas < out.index("midas_v21_small_256", midas) < dav2 < out.index("depth_anything_v2_vits", midas)
    line = next(line for line in out.splitlines() if "depth_anything_v2_metric_vkitti_vitl" in line)
    assert "metres" in line and "CC-BY-NC-4.0, NC" in line and "~1,340 MB" in line
    assert "[default]" in next(line for line in out.splitlines() if line.strip().startswith("midas_v21_small_256"))


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.blender
def test_metric_model_geometry_measures_in_metres(sample_photo, dav2_reference):
    """The API runs a metric model and the mesh's vertices lie at the predicted distances in metres
    (camera-axis depth), not at a normalised near..far range."""
    import bpy

    from depth_addon import api
    from depth_addon.imageio import read_image

    checkpoint = reference_checkpoint(METRIC_SMALL)
    expected = load_model(METRIC_SMALL, checkpoint=checkpoint, device="cpu").predict(read_image(sample_photo))
    result = api.image_to_object(str(sample_photo), model=METRIC_SMALL, weights=str(checkpoint), device="cpu",
                                 stride=5, tear=False, fill=False)  # no rim: one vertex per pixel
    obj, camera = result.object, result.camera
    assert json.loads(obj["depth_addon_settings"])["depth_kind"] == "metric"
    positions = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.attributes["position"].data.foreach_get("vector", positions)
    to_camera = np.array(camera.matrix_world.inverted() @ obj.matrix_world)
    homogeneous = np.c_[positions.reshape(-1, 3).astype(np.float64), np.ones(len(positions) // 3)]
    distance = -(homogeneous @ to_camera.T)[:, 2]
    sampled = expected[::5, ::5]
    assert bpy.context.scene.unit_settings.scale_length == 1.0  # 1 Blender unit = 1 m
    np.testing.assert_allclose(np.sort(distance), np.sort(sampled.ravel()), rtol=1e-5)
    assert 0.0 < distance.min() and distance.max() <= 20.0  # the indoor model's range, in metres


@pytest.mark.pure
def test_docs_list_every_model_with_its_licence():
    from conftest import REPO_ROOT
    from depth_addon.midas import MODEL_SPECS

    rows = {line.split("|")[1].strip().split()[0].strip("`"): line
            for line in (REPO_ROOT / "docs" / "cli.md").read_text().splitlines() if line.startswith("| `")}
    for spec in MODEL_SPECS:
        assert spec.licence in rows[spec.name] and spec.url in rows[spec.name], spec.name
        assert ("non-commercial" in rows[spec.name]) == spec.non_commercial
