"""Swin/SwinV2 backbone on today's timm: official (timm 0.6.13) key remap and feature layout.

End-to-end parity of every Swin type with the official outputs is in test_midas_parity.py;
these tests use the small SwinV2-T model only.
"""

from __future__ import annotations

import pytest

from conftest import reference_checkpoint

pytestmark = pytest.mark.torch

MODEL_TYPE = "dpt_swin2_tiny_256"
PREFIX = "pretrained."


@pytest.fixture(scope="module")
def net():
    from depth_addon.midas import get_spec
    from depth_addon.midas.model import build_network

    return build_network(get_spec(MODEL_TYPE)).eval()


@pytest.fixture(scope="module")
def backbone(net):
    return net.pretrained


@pytest.fixture(scope="module")
def remap(net):
    """The table-driven key remap for this type, on a (partial) official state dict."""
    from depth_addon.midas import get_spec
    from depth_addon.midas.nets._timm import remap_official_keys

    return lambda state_dict: remap_official_keys(state_dict, net, get_spec(MODEL_TYPE))


@pytest.fixture(scope="module")
def official_backbone_keys():
    """The backbone part of the official-format checkpoint, keys still ``pretrained.model.*``."""
    import torch

    sd = torch.load(reference_checkpoint(MODEL_TYPE), map_location="cpu", weights_only=True)
    return {k: v for k, v in sd.items() if k.startswith(PREFIX)}


def _strip(state_dict):
    return {k[len(PREFIX):]: v for k, v in state_dict.items()}


def test_official_checkpoint_loads_strictly_after_remap(backbone, remap, official_backbone_keys):
    import torch

    remapped = remap(official_backbone_keys)
    result = backbone.load_state_dict(_strip(remapped), strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    gone = set(official_backbone_keys) - set(remapped)
    added = set(remapped) - set(official_backbone_keys)
    merging = ("reduction.weight", "norm.weight", "norm.bias")
    masks = {"pretrained.model.layers.0.blocks.1.attn_mask", "pretrained.model.layers.1.blocks.1.attn_mask"}
    # The shifted-window masks were checked against the model's own and dropped.
    assert gone == {f"pretrained.model.layers.0.downsample.{p}" for p in merging} | masks | {
        "pretrained.model.head.weight", "pretrained.model.head.bias"}
    assert added == {f"pretrained.model.layers.3.downsample.{p}" for p in merging} | {
        "pretrained.model.head.fc.weight", "pretrained.model.head.fc.bias"}
    # timm 0.6.13 stage i's PatchMerging is timm 1.0 stage i + 1's; the tensors move unchanged.
    for stage in (0, 1, 2):
        for p in merging:
            assert torch.equal(
                remapped[f"pretrained.model.layers.{stage + 1}.downsample.{p}"],
                official_backbone_keys[f"pretrained.model.layers.{stage}.downsample.{p}"],
            )


def test_keys_outside_the_backbone_pass_through(remap):
    import torch

    other = {"scratch.layer1_rn.weight": torch.zeros(1)}
    assert remap(other) == other


def test_native_timm_layout_is_left_alone(backbone, remap):
    native = {PREFIX + k: v for k, v in backbone.state_dict().items()}
    assert list(remap(native)) == list(native)


def test_forward_intermediates_gives_the_hooked_block_outputs(backbone):
    """timm's forward_intermediates = the official hooks (each stage's last block, before the norm)."""
    import torch

    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = backbone(x)
        model = backbone.model
        tokens, hooked = model.patch_embed(x), []
        for stage in model.layers:
            tokens = stage.downsample(tokens)
            for block in stage.blocks:
                tokens = block(tokens)
            hooked.append(tokens.permute(0, 3, 1, 2))
    assert all(torch.equal(a, b) for a, b in zip(ours, hooked, strict=True))


@pytest.mark.parametrize("change", ["values", "shape", "unused"])
def test_saved_mask_that_differs_from_ours_is_refused(remap, official_backbone_keys, change):
    import torch

    from depth_addon.errors import CheckpointMismatchError

    sd = dict(official_backbone_keys)
    key = "pretrained.model.layers.0.blocks.1.attn_mask"
    if change == "values":
        sd[key] = sd[key].clone()
        sd[key][0, 0, -1] = -100.0 - sd[key][0, 0, -1]
    elif change == "shape":
        sd[key] = sd[key][:4]
    else:  # a mask for an unshifted block: the checkpoint is for another window/input size
        sd["pretrained.model.layers.0.blocks.0.attn_mask"] = torch.zeros(16, 256, 256)
    with pytest.raises(CheckpointMismatchError, match=MODEL_TYPE):
        remap(sd)


def test_features_are_nchw_at_strides_4_to_32(backbone):
    import torch

    with torch.inference_mode():
        features = backbone(torch.zeros(1, 3, 256, 256))
    assert [tuple(f.shape) for f in features] == [
        (1, 96, 64, 64), (1, 192, 32, 32), (1, 384, 16, 16), (1, 768, 8, 8),
    ]
    assert backbone.out_channels == (96, 192, 384, 768)


def test_other_input_size_is_refused_with_the_size_to_use(backbone):
    import torch

    with pytest.raises(ValueError, match="256x256"):
        backbone(torch.zeros(1, 3, 256, 320))


def test_checkpoint_of_another_swin_type_names_that_type():
    from depth_addon.errors import CheckpointMismatchError
    from depth_addon.midas import load_model

    with pytest.raises(CheckpointMismatchError, match="looks like a 'dpt_swin2_tiny_256' checkpoint"):
        load_model("dpt_swin2_base_384", checkpoint=reference_checkpoint(MODEL_TYPE), device="cpu")
