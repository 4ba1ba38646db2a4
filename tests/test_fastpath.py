"""The optimised path (``fastpath.optimize_network``) computes what the plain path computes.

Each swapped module is checked against the module it replaces on random inputs (cheap, no
checkpoint), and whole networks against the plain path on their reference checkpoints at the
1e-5 relative tolerance the parity tests use. Speed is measured by scripts/bench_inference.py,
never asserted here.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import reference_checkpoint, reference_data

pytestmark = pytest.mark.torch

REL_TOL = 1e-5


def _rel(a, b) -> float:
    import torch

    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().max() / b.abs().max())


def _fast_copy(module):
    from depth_addon.midas.fastpath import optimize_network

    fast = optimize_network(copy.deepcopy(module))
    assert type(fast) is not type(module) or getattr(fast, "fused_attn", False) or getattr(fast, "channels_last", False)
    return fast


@pytest.fixture(autouse=True)
def _seeded():
    import torch

    torch.manual_seed(0)


@pytest.fixture
def timm():
    from depth_addon.midas.nets._timm import import_timm

    return import_timm()  # timm as the add-on imports it (privately: nets/_timm_loader.py)


def test_fusion_block_out_conv_before_upsampling():
    import torch
    from torch import nn

    from depth_addon.midas.nets.blocks import FeatureFusionBlockCustom

    for expand, size in ((False, None), (True, None), (False, (13, 17))):
        block = FeatureFusionBlockCustom(16, nn.ReLU(), expand=expand, align_corners=True).eval()
        fast = _fast_copy(block)
        x, skip = torch.randn(2, 16, 7, 9), torch.randn(2, 16, 7, 9)
        with torch.inference_mode():
            assert _rel(fast(x, skip, size=size), block(x, skip, size=size)) <= REL_TOL
            assert _rel(fast(x), block(x)) <= REL_TOL


def test_project_readout_split_matmul():
    import torch

    from depth_addon.midas.nets.blocks import ProjectReadout

    readout = ProjectReadout(24).eval()
    fast = _fast_copy(readout)
    x = torch.randn(2, 1 + 30, 24)
    with torch.inference_mode():
        assert _rel(fast(x), readout(x)) <= REL_TOL
    assert fast.state_dict().keys() == readout.state_dict().keys()


def test_swin_v2_attention_fused(timm):
    import torch
    WindowAttention = timm.models.swin_transformer_v2.WindowAttention

    attn = WindowAttention(32, (4, 4), num_heads=4, qkv_bias=True).eval()
    with torch.no_grad():
        attn.q_bias.normal_()
        attn.v_bias.normal_()
        attn.logit_scale.normal_(1.0, 0.5)
    fast = _fast_copy(attn)
    x = torch.randn(2 * 3, 16, 32)
    mask = torch.where(torch.rand(3, 16, 16) > 0.7, -100.0, 0.0)
    with torch.inference_mode():
        assert _rel(fast(x), attn(x)) <= REL_TOL
        assert _rel(fast(x, mask), attn(x, mask)) <= REL_TOL


def test_swin_v1_uses_timm_fused_path(timm):
    import torch
    WindowAttention = timm.models.swin_transformer.WindowAttention

    attn = WindowAttention(32, num_heads=4, window_size=4).eval()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
    fast = _fast_copy(attn)
    assert fast.fused_attn
    x = torch.randn(6, 16, 32)
    mask = torch.where(torch.rand(3, 16, 16) > 0.7, -100.0, 0.0)
    with torch.inference_mode():
        assert _rel(fast(x, mask), attn(x, mask)) <= REL_TOL


def test_levit_attention_fused(timm):
    import torch
    Attention, AttentionDownsample = timm.models.levit.Attention, timm.models.levit.AttentionDownsample

    attn = Attention(64, key_dim=16, num_heads=4, attn_ratio=2, resolution=7)
    down = AttentionDownsample(64, 96, key_dim=16, num_heads=4, attn_ratio=2, stride=2, resolution=7)
    for module in (attn, down):
        module.eval()  # (timm's LeViT train() returns None, so no chaining)
        with torch.no_grad():
            for p in module.parameters():
                p.normal_(0.0, 0.2)
            for b in module.modules():
                if isinstance(b, torch.nn.BatchNorm1d):
                    b.running_mean.zero_()
                    b.running_var.fill_(1.0)
        fast = _fast_copy(module)
        x = torch.randn(2, 49, 64)
        with torch.inference_mode():
            plain = module(x)
            assert plain.isfinite().all()
            assert _rel(fast(x), plain) <= REL_TOL


@pytest.mark.parametrize("model_type", ["midas_v21_small_256", "dpt_levit_224", "dpt_swin2_tiny_256"])
def test_optimised_network_matches_plain(model_type, midas_reference):
    from depth_addon.midas import load_model
    from depth_addon.midas.model import clear_cache

    clear_cache()
    checkpoint = reference_checkpoint(model_type)
    plain = load_model(model_type, checkpoint=checkpoint, device="cpu", optimize=False)
    fast = load_model(model_type, checkpoint=checkpoint, device="cpu")
    assert fast.optimize and not plain.optimize and fast is not plain
    assert load_model(model_type, checkpoint=checkpoint, device="cpu", optimize=False) is plain
    image = reference_data(model_type)["image"]
    ours, reference = fast.predict(image), plain.predict(image)
    assert ours.dtype == np.float32
    assert _rel(ours, reference) <= REL_TOL
    # same parameters under the same names: the optimised path swaps code, never weights
    fast_state, plain_state = fast.net.state_dict(), plain.net.state_dict()
    assert fast_state.keys() == plain_state.keys()
    assert all(fast_state[k].equal(plain_state[k]) for k in plain_state)
    clear_cache()
