"""Depth Anything V2: a DINOv2 ViT encoder (today's timm) and the Depth Anything DPT head.

Official counterpart: ``depth_anything_v2/dpt.py`` (``DepthAnythingV2``, ``DPTHead``) and
``dinov2.py`` (``DinoVisionTransformer``) at commit a561b84. timm's
``vit_{small,base,large}_patch14_dinov2`` (``init_values=1.0`` gives the LayerScale ``ls1`` /
``ls2`` gammas) takes the official ``pretrained.*`` tensors under the same names; only
``mask_token`` (used in training) has no place in it, and the table's key-remap rule accepts
and drops it.

One thing timm does differently: for an input other than 518x518 it resamples the 37x37
position table to the patch grid by *size* with antialiasing, while DINOv2 passes a *scale
factor* ``(n + 0.1) / 37`` per side, bicubic without antialiasing -- a stretched sampling grid,
not the identity even on a side that stays at 37 patches. The two differ by 14-18 % on the
table and ~3e-3 relative on the final depth, so :func:`official_pos_embed` reproduces DINOv2's
formula and :class:`DepthAnythingV2` runs the encoder blocks itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import ModelSpec
from ._timm import create_timm_model
from .blocks import FeatureFusionBlockCustom, make_scratch

PATCH = 14
# DINOv2's ``interpolate_offset``: added to the patch counts before the scale factor is taken,
# "to avoid floating point error in the interpolation" (dinov2.py).
POS_EMBED_OFFSET = 0.1


def official_pos_embed(pos_embed: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """``(1, 1 + G*G, C)`` DINOv2 table -> ``(1, 1 + grid_h*grid_w, C)``, exactly as DINOv2 resamples it.

    Unchanged only for a square input with G x G patches; otherwise the patch part goes through
    ``F.interpolate(scale_factor=((grid_h + 0.1) / G, (grid_w + 0.1) / G), mode="bicubic",
    antialias=False)`` in float32 (PyTorch then maps coordinates with that factor, not out/in).
    """
    size = pos_embed.shape[1] - 1
    side = int(round(size**0.5))
    if grid_h * grid_w == size and grid_h == grid_w:
        return pos_embed
    dtype = pos_embed.dtype
    table = pos_embed.float()
    patches = table[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = ((grid_h + POS_EMBED_OFFSET) / side, (grid_w + POS_EMBED_OFFSET) / side)
    patches = F.interpolate(patches, scale_factor=scale, mode="bicubic", antialias=False)
    if tuple(patches.shape[-2:]) != (grid_h, grid_w):
        raise ValueError(f"position table resampled to {tuple(patches.shape[-2:])}, expected {(grid_h, grid_w)}")
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
    return torch.cat((table[:, :1], patches), dim=1).to(dtype)


def _fusion_block(features: int) -> FeatureFusionBlockCustom:
    # Official _make_fusion_block: ReLU (not in place), no BN, align_corners=True, no expand.
    return FeatureFusionBlockCustom(features, nn.ReLU(), bn=False, expand=False, align_corners=True)


class DPTHead(nn.Module):
    """The Depth Anything V2 DPT head (keys ``depth_head.*``), for 4 token maps without class token.

    ``max_depth=None``: relative head (ReLU output); else metric (Sigmoid x ``max_depth``, metres).
    """

    def __init__(self, embed_dim: int, features: int, out_channels: Sequence[int], max_depth: float | None = None):
        super().__init__()
        self.projects = nn.ModuleList(nn.Conv2d(embed_dim, channels, 1) for channels in out_channels)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4, padding=0),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2, padding=0),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
        ])
        self.scratch = make_scratch(out_channels, features, expand=False)
        for index in range(1, 5):
            setattr(self.scratch, f"refinenet{index}", _fusion_block(features))
        self.scratch.output_conv1 = nn.Conv2d(features, features // 2, kernel_size=3, stride=1, padding=1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, 32, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, kernel_size=1, stride=1, padding=0),
            nn.ReLU() if max_depth is None else nn.Sigmoid(),
            nn.Identity(),
        )
        self.max_depth = max_depth

    def forward(self, tokens: Sequence[torch.Tensor], grid_hw: tuple[int, int]) -> torch.Tensor:
        """4 x ``(B, N, C)`` patch tokens -> ``(B, 1, 14 grid_h, 14 grid_w)`` depth."""
        maps = []
        for index, x in enumerate(tokens):
            x = x.transpose(1, 2).unflatten(2, grid_hw)
            maps.append(self.resize_layers[index](self.projects[index](x)))
        scratch = self.scratch
        rn = [getattr(scratch, f"layer{index + 1}_rn")(x) for index, x in enumerate(maps)]
        path = scratch.refinenet4(rn[3], size=rn[2].shape[2:])
        path = scratch.refinenet3(path, rn[2], size=rn[1].shape[2:])
        path = scratch.refinenet2(path, rn[1], size=rn[0].shape[2:])
        path = scratch.refinenet1(path, rn[0])
        out = scratch.output_conv1(path)
        out = F.interpolate(out, (grid_hw[0] * PATCH, grid_hw[1] * PATCH), mode="bilinear", align_corners=True)
        out = scratch.output_conv2(out)
        return out if self.max_depth is None else out * self.max_depth


class DepthAnythingV2(nn.Module):
    """``pretrained`` (timm DINOv2) + ``depth_head``; ``forward`` = the official ``DepthAnythingV2.forward``."""

    def __init__(self, encoder: nn.Module, hooks: Sequence[int], head: DPTHead):
        super().__init__()
        if max(hooks) >= len(encoder.blocks):
            raise ValueError(f"hooks {tuple(hooks)} do not fit {len(encoder.blocks)} blocks")
        self.pretrained = encoder
        self.hooks = tuple(hooks)
        self.depth_head = head

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)``, sides multiples of 14 -> the hooked blocks' outputs after the final norm,
        without the class token (official ``get_intermediate_layers``), each ``(B, N, C)``."""
        height, width = x.shape[-2:]
        if height % PATCH or width % PATCH:
            raise ValueError(f"Depth Anything V2 needs input sides divisible by {PATCH}, got {width}x{height}")
        model = self.pretrained
        grid_h, grid_w = height // PATCH, width // PATCH
        tokens = model.patch_embed(x).reshape(x.shape[0], grid_h * grid_w, -1)
        tokens = torch.cat((model.cls_token.expand(x.shape[0], -1, -1), tokens), dim=1)
        tokens = model.pos_drop(tokens + official_pos_embed(model.pos_embed, grid_h, grid_w))
        tokens = model.norm_pre(tokens)
        outputs = []
        for index, block in enumerate(model.blocks[: self.hooks[-1] + 1]):
            tokens = block(tokens)
            if index in self.hooks:
                outputs.append(model.norm(tokens)[:, 1:])
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised image -> ``(B, H, W)`` relative disparity or metric depth (m)."""
        depth = self.depth_head(self.encode(x), (x.shape[-2] // PATCH, x.shape[-1] // PATCH))
        if self.depth_head.max_depth is None:
            depth = F.relu(depth)  # the official relative model applies it a second time (harmless)
        return depth.squeeze(1)


def build(spec: ModelSpec) -> DepthAnythingV2:
    """Depth Anything V2 of ``spec``: timm DINOv2 (``arch.timm_name``), hooks, head width and
    ``max_depth`` (metric types) from the table; randomly initialised, never downloads."""
    arch = spec.arch
    encoder = create_timm_model(arch.timm_name, img_size=arch.img_size, dynamic_img_size=True, num_classes=0,
                                init_values=1.0)
    head = DPTHead(encoder.embed_dim, arch.decoder["features"], arch.features, arch.decoder.get("max_depth"))
    return DepthAnythingV2(encoder, arch.hooks, head)
