"""BEiT, LeViT and Next-ViT backbones: official key remapping, saved-buffer checks, feature layout.

End-to-end parity of every type with the official outputs (strict load through
``load_model`` + ``predict``) is in test_midas_parity.py; here we test the parts a parity
failure would not pinpoint, using the small models (BEiT-B, LeViT) and checkpoint metadata.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import reference_checkpoint, reference_npz

pytestmark = pytest.mark.torch

PREFIX = "pretrained."


def _official_layout(model_type: str) -> dict[str, tuple[int, ...]]:
    """Official state-dict keys -> shapes, from the reference metadata (no checkpoint needed)."""
    with np.load(reference_npz(model_type)) as ref:
        keys = [str(k) for k in ref["sd_keys"]]
        shapes = json.loads(str(ref["sd_shapes"]))
    return {k: tuple(s) for k, s in zip(keys, shapes, strict=True)}


def _backbone_checkpoint(model_type: str) -> dict:
    import torch

    sd = torch.load(reference_checkpoint(model_type), map_location="cpu", weights_only=True)
    return {k: v for k, v in sd.items() if k.startswith(PREFIX)}


def _strip(state_dict: dict) -> dict:
    return {k[len(PREFIX):]: v for k, v in state_dict.items()}


def _network(model_type: str):
    from depth_addon.midas import get_spec
    from depth_addon.midas.model import build_network

    return build_network(get_spec(model_type)).eval()


def _remap(net, model_type: str):
    from depth_addon.midas import get_spec
    from depth_addon.midas.nets._timm import remap_official_keys

    return lambda state_dict: remap_official_keys(state_dict, net, get_spec(model_type))


# --- LeViT -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def levit_net():
    return _network("dpt_levit_224")


@pytest.fixture(scope="module")
def levit(levit_net):
    return levit_net.pretrained


@pytest.fixture(scope="module")
def levit_remap(levit_net):
    return _remap(levit_net, "dpt_levit_224")


@pytest.fixture(scope="module")
def levit_official():
    return _backbone_checkpoint("dpt_levit_224")


def test_levit_official_checkpoint_loads_strictly_after_remap(levit, levit_remap, levit_official):
    import torch

    remapped = levit_remap(levit_official)
    result = levit.load_state_dict(_strip(remapped), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert not any(k.endswith("attention_bias_idxs") for k in remapped)
    model = "pretrained.model."
    # Flat timm 0.6.13 blocks -> timm 1.0 stages: one of each kind, tensors moved unchanged.
    moved = {
        "patch_embed.6.c.weight": "stem.conv4.linear.weight",
        "blocks.0.m.qkv.c.weight": "stages.0.blocks.0.attn.qkv.linear.weight",
        "blocks.3.m.2.c.weight": "stages.0.blocks.1.mlp.ln2.linear.weight",
        "blocks.8.q.1.c.weight": "stages.1.downsample.attn_downsample.q.ln.linear.weight",
        "blocks.8.proj.1.bn.weight": "stages.1.downsample.attn_downsample.proj.ln.bn.weight",
        "blocks.9.m.0.c.weight": "stages.1.downsample.mlp.ln1.linear.weight",
        "blocks.21.m.0.bn.running_var": "stages.2.blocks.0.mlp.ln1.bn.running_var",
        "blocks.27.m.2.c.weight": "stages.2.blocks.3.mlp.ln2.linear.weight",
        "blocks.18.attention_biases": "stages.2.downsample.attn_downsample.attention_biases",
        "head_dist.l.weight": "head_dist.linear.weight",
    }
    for old, new in moved.items():
        assert torch.equal(remapped[model + new], levit_official[model + old]), old


def test_levit_native_layout_is_left_alone(levit, levit_remap):
    native = {PREFIX + k: v for k, v in levit.state_dict().items()}
    assert list(levit_remap(native)) == list(native)


@pytest.mark.parametrize("change", ["values", "shape"])
def test_levit_saved_bias_index_that_differs_from_ours_is_refused(levit_remap, levit_official, change):
    from depth_addon.errors import CheckpointMismatchError

    key = "pretrained.model.blocks.8.attention_bias_idxs"
    tampered = dict(levit_official)
    saved = tampered[key]
    tampered[key] = saved.flip(-1) if change == "values" else saved[:, :-1]
    with pytest.raises(CheckpointMismatchError, match="blocks.8.attention_bias_idxs"):
        levit_remap(tampered)


def test_levit_checkpoint_with_extra_blocks_is_refused(levit_remap, levit_official):
    from depth_addon.errors import CheckpointMismatchError

    extra = dict(levit_official)
    extra["pretrained.model.blocks.28.m.0.c.weight"] = extra["pretrained.model.blocks.27.m.0.c.weight"]
    with pytest.raises(CheckpointMismatchError, match="block 28"):
        levit_remap(extra)


def test_levit_features_and_fixed_input_size(levit):
    import torch

    with torch.inference_mode():
        maps = levit(torch.zeros(1, 3, 224, 224))
        with pytest.raises(ValueError, match="224x224"):
            levit(torch.zeros(1, 3, 224, 256))
    assert [tuple(m.shape) for m in maps] == [(1, 384, 14, 14), (1, 512, 7, 7), (1, 768, 4, 4)]


def test_levit_stem_transpose_upsamples_exactly_4x():
    import torch

    from depth_addon.midas.nets.levit import stem_b4_transpose

    with torch.inference_mode():
        out = stem_b4_transpose(256, 128).eval()(torch.zeros(1, 256, 56, 56))
    assert tuple(out.shape) == (1, 64, 224, 224)


# --- BEiT --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def beit_net():
    return _network("dpt_beit_base_384")


@pytest.fixture(scope="module")
def beit(beit_net):
    return beit_net.pretrained


def test_beit_parameters_match_the_official_layout(beit):
    official = {k: v for k, v in _official_layout("dpt_beit_base_384").items() if k.startswith(PREFIX)}
    computed = {k for k in official if k.endswith("relative_position_index")}
    ours = {PREFIX + k: tuple(v.shape) for k, v in beit.state_dict().items()}
    assert len(computed) == 12
    assert ours == {k: v for k, v in official.items() if k not in computed}


def test_beit_saved_position_index_is_checked_then_dropped(beit_net):
    import torch

    from depth_addon.errors import CheckpointMismatchError
    from depth_addon.midas.nets._timm import timm_module

    gen_relative_position_index = timm_module("models.beit").gen_relative_position_index

    key = "pretrained.model.blocks.3.attn.relative_position_index"
    good = {key: gen_relative_position_index((24, 24)), "pretrained.act_postprocess1.3.bias": torch.zeros(1)}
    remap = _remap(beit_net, "dpt_beit_base_384")
    assert list(remap(good)) == ["pretrained.act_postprocess1.3.bias"]
    with pytest.raises(CheckpointMismatchError, match="blocks.3.attn.relative_position_index"):
        remap({key: gen_relative_position_index((32, 32))})


def test_beit_bias_at_training_grid_equals_timms_own(beit):
    import torch

    attn = beit.model.blocks[0].attn
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
        ours = beit._relative_bias(attn, (24, 24), beit._relative_index((24, 24), torch.device("cpu")))
        assert torch.equal(ours, attn._get_rel_pos_bias())
        # Another grid: the offset map is resized, the 3 class-token rows are kept.
        wide = beit._relative_bias(attn, (4, 6), beit._relative_index((4, 6), torch.device("cpu")))
    assert tuple(wide.shape) == (1, 12, 25, 25)
    table = attn.relative_position_bias_table
    assert torch.equal(wide[0, :, 0, 0], table[-1])  # class -> class


def test_beit_features_for_a_non_square_input(beit):
    import torch

    with torch.inference_mode():
        maps = beit(torch.zeros(1, 3, 64, 96))
        with pytest.raises(ValueError, match="divisible by 16"):
            beit(torch.zeros(1, 3, 64, 100))
    assert [tuple(m.shape) for m in maps] == [(1, 96, 16, 24), (1, 192, 8, 12), (1, 384, 4, 6), (1, 768, 2, 3)]


# --- Next-ViT ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def next_vit():
    return _network("dpt_next_vit_large_384").pretrained


def test_next_vit_matches_the_official_layout_key_for_key(next_vit):
    official = {k: v for k, v in _official_layout("dpt_next_vit_large_384").items() if k.startswith(PREFIX)}
    ours = {PREFIX + k: tuple(v.shape) for k, v in next_vit.state_dict().items()}
    assert ours == official
    assert next_vit.hooks == (2, 6, 36, 39) and next_vit.model.stage_ends == [2, 6, 36, 39]
    assert next_vit.out_channels == (96, 256, 512, 1024)


def test_next_vit_channel_rounding():
    from depth_addon.midas.nets.next_vit import make_divisible

    assert [make_divisible(v) for v in (288, 192, 384, 768, 1152, 100, 20)] == [288, 192, 384, 768, 1152, 96, 32]


def test_next_vit_features_for_a_non_square_input(next_vit):
    import torch

    with torch.inference_mode():
        maps = next_vit(torch.zeros(1, 3, 64, 96))
    assert [tuple(m.shape) for m in maps] == [(1, 96, 16, 24), (1, 256, 8, 12), (1, 512, 4, 6), (1, 1024, 2, 3)]
