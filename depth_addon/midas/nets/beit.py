"""BEiT backbones of the MiDaS v3.1 DPT models (BEiT-B/16 384, BEiT-L/16 384 and 512).

The official code created ``beit_*_patch16_*`` with timm 0.6.13 and monkey-patched its
forward so that any input size divisible by 16 works: the relative position bias table,
learned for the square training window, is bilinearly resized to the actual token grid
on every forward. We build the same architecture with today's timm and run the blocks
ourselves (:func:`_beit_block`), which keeps every parameter name of the official
checkpoints and gives the same numbers without patching timm or using forward hooks.

The reassemble layers ``act_postprocess1..4`` (readout "project", tokens -> grid, 1x1 conv,
resampling) are the ones the ViT backbones share, from ``blocks.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import ModelSpec
from ._timm import create_timm_model, timm_module
from .blocks import ReassembleHead, make_readout, reassemble_resample
from .dpt import DPTDepthModel

PATCH_SIZE = 16


def _resized_bias_table(attn: nn.Module, grid_hw: tuple[int, int]) -> torch.Tensor:
    """The relative position bias table for a ``grid_hw`` token grid, as the official code resizes it.

    The first (2Wh-1)(2Ww-1) rows are a 2-D map of relative offsets; it is resized with
    bilinear interpolation (align_corners=False) to (2h-1, 2w-1). The last 3 rows (class
    token to patch, patch to class token, class to class) are kept as they are. (The official
    reshape swapped height and width, which only matters for non-square training windows;
    every BEiT checkpoint has a square one.)
    """
    table = attn.relative_position_bias_table
    old_h, old_w = (2 * s - 1 for s in attn.window_size)
    new_h, new_w = (2 * s - 1 for s in grid_hw)
    if (old_h, old_w) == (new_h, new_w):
        return table  # bilinear resizing to the same size is the identity
    offsets = table[: old_h * old_w].reshape(1, old_h, old_w, -1).permute(0, 3, 1, 2)
    offsets = F.interpolate(offsets, size=(new_h, new_w), mode="bilinear", align_corners=False)
    offsets = offsets.permute(0, 2, 3, 1).reshape(new_h * new_w, -1)
    return torch.cat([offsets, table[old_h * old_w:]])


def _beit_attention(attn: nn.Module, x: torch.Tensor, rel_bias: torch.Tensor) -> torch.Tensor:
    """timm BEiT attention with a given relative position bias (1, heads, N, N)."""
    batch, tokens, _ = x.shape
    qkv_bias = torch.cat((attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias))
    qkv = F.linear(x, attn.qkv.weight, qkv_bias).reshape(batch, tokens, 3, attn.num_heads, -1)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    x = F.scaled_dot_product_attention(q, k, v, attn_mask=rel_bias.to(q.dtype), scale=attn.scale)
    return attn.proj(x.transpose(1, 2).reshape(batch, tokens, -1))


def _beit_block(block: nn.Module, x: torch.Tensor, rel_bias: torch.Tensor) -> torch.Tensor:
    x = x + block.gamma_1 * _beit_attention(block.attn, block.norm1(x), rel_bias)
    return x + block.gamma_2 * block.mlp(block.norm2(x))


class BeitBackbone(nn.Module):
    """A timm BEiT plus the 4 reassemble layers; returns the 4 DPT feature maps.

    ``self.model`` is the timm model and ``act_postprocess1..4`` the reassemble layers, so
    inside ``DPTDepthModel`` the names are ``pretrained.model.*`` / ``pretrained.act_postprocess*``
    exactly as in the official checkpoints.
    """

    def __init__(self, model: nn.Module, hooks: Sequence[int], features: Sequence[int], model_type: str):
        super().__init__()
        if max(hooks) >= len(model.blocks):
            raise ValueError(f"hooks {hooks} do not fit {len(model.blocks)} blocks")
        self.model = model
        self.model_type = model_type
        self.hooks = tuple(hooks)
        self.out_channels = tuple(features)
        for level, out_channels in enumerate(features):
            head = ReassembleHead(make_readout("project", model.embed_dim), model.embed_dim, out_channels,
                                  reassemble_resample(level, out_channels))
            setattr(self, f"act_postprocess{level + 1}", head)
        self._index_cache: dict[tuple[int, int, str], torch.Tensor] = {}

    def _relative_index(self, grid_hw: tuple[int, int], device: torch.device) -> torch.Tensor:
        key = (*grid_hw, str(device))
        if key not in self._index_cache:
            gen_relative_position_index = timm_module("models.beit").gen_relative_position_index

            # Built on the CPU and moved: timm < 1.0.22 has no device argument.
            self._index_cache[key] = gen_relative_position_index(grid_hw).to(device).view(-1)
        return self._index_cache[key]

    def _relative_bias(self, attn: nn.Module, grid_hw: tuple[int, int], index: torch.Tensor) -> torch.Tensor:
        tokens = grid_hw[0] * grid_hw[1] + 1
        bias = _resized_bias_table(attn, grid_hw)[index].view(tokens, tokens, -1)
        return bias.permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W), H and W multiples of 16 -> 4 maps at H/4, H/8, H/16, H/32."""
        height, width = x.shape[-2:]
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(f"{self.model_type} needs an input size divisible by 16, got {width}x{height}")
        grid_hw = (height // PATCH_SIZE, width // PATCH_SIZE)
        model = self.model
        # PatchEmbed's own forward insists on the training size; its conv does not care.
        x = model.patch_embed.norm(model.patch_embed.proj(x).flatten(2).transpose(1, 2))
        x = torch.cat((model.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        index = self._relative_index(grid_hw, x.device)
        post = (self.act_postprocess1, self.act_postprocess2, self.act_postprocess3, self.act_postprocess4)
        features = []
        for number, block in enumerate(model.blocks[: self.hooks[-1] + 1]):
            x = _beit_block(block, x, self._relative_bias(block.attn, grid_hw, index))
            if number in self.hooks:
                features.append(post[len(features)](x, grid_hw))
        return features


def build(spec: ModelSpec) -> DPTDepthModel:
    """DPT with the BEiT backbone of ``spec`` (randomly initialised; never downloads).

    BEiT runs at any input size divisible by 32 (the relative position bias is resized).
    The saved ``relative_position_index`` buffers are checked and dropped by the table's
    key-remap rule (timm 1.0 computes them; parameter names did not change since 0.6.13).
    """
    arch = spec.arch
    backbone = BeitBackbone(create_timm_model(arch.timm_name), arch.hooks, arch.features, spec.name)
    return DPTDepthModel(backbone, arch.features, **arch.decoder)
