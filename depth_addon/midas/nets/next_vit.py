"""Next-ViT-L backbone of the MiDaS v3.1 ``dpt_next_vit_large_384`` model.

Next-ViT (Li et al. 2022, "Next-ViT: Next Generation Vision Transformer for Efficient
Deployment") is not in timm; the official MiDaS code executed the external Next-ViT
repository's ``classification/nextvit.py``. This module implements the same architecture
from the paper and that layout, with the module names the official checkpoint uses
(``stem``, ``features.N.{patch_embed,mhca,norm,mlp,norm1,e_mhsa,projection,norm2}``,
``norm``, ``proj_head``), so the checkpoint loads without any renaming.

Blocks:
- NCB (Next Convolution Block): optional downsampling patch embedding, then
  ``x + MHCA(x)`` (grouped 3x3 conv, BN, ReLU, 1x1 conv) and ``x + MLP(BN(x))``.
- NTB (Next Transformer Block): the first 3/4 of the channels go through efficient
  multi-head self-attention ``x + E_MHSA(BN(x))`` (keys/values average-pooled by sr^2 along
  the flattened token sequence), the rest is a projected MHCA branch; both are
  concatenated, then ``x + MLP(BN(x))``.
DPT reads the outputs of blocks 2, 6, 36 and 39 (ends of the four stages; 96, 256, 512,
1024 channels at 1/4 .. 1/32 of the input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import ModelSpec
from .dpt import DPTDepthModel

BN_EPS = 1e-5
HEAD_DIM = 32


def make_divisible(value: float, divisor: int = 32) -> int:
    """Round to the nearest multiple of ``divisor`` but never more than 10% down (Next-ViT channel rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class NextViTConfig:
    """One Next-ViT size. Stage ``i`` has ``depths[i]`` blocks; every stage but the first halves
    the resolution in its first block. ``sr_ratios`` shrink the attention keys per stage."""

    stem_channels: tuple[int, int, int] = (64, 32, 64)
    depths: tuple[int, int, int, int] = (3, 4, 30, 3)
    strides: tuple[int, int, int, int] = (1, 2, 2, 2)
    sr_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)
    mix_block_ratio: float = 0.75
    num_classes: int = 1000

    def stage_layout(self, stage: int) -> list[tuple[str, int]]:
        """(block kind "ncb"/"ntb", output channels) for each block of ``stage`` (the official pattern)."""
        depth = self.depths[stage]
        if stage == 0:
            return [("ncb", 96)] * depth
        if stage == 1:
            return [("ncb", 192)] * (depth - 1) + [("ntb", 256)]
        if stage == 2:
            return [("ncb", 384), ("ncb", 384), ("ncb", 384), ("ncb", 384), ("ntb", 512)] * (depth // 5)
        return [("ncb", 768)] * (depth - 1) + [("ntb", 1024)]


NEXT_VIT_LARGE = NextViTConfig()


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class ConvBNReLU(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class PatchEmbed(nn.Module):
    """Stride 2: 2x2 average pool (ceil mode, padding not counted) + 1x1 conv + BN.
    Stride 1: 1x1 conv + BN if the width changes, else the identity (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.downsample = stride == 2
        if self.downsample or in_channels != out_channels:
            self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.norm = _bn(out_channels)
        else:
            self.conv = self.norm = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample:
            x = F.avg_pool2d(x, 2, stride=2, ceil_mode=True, count_include_pad=False)
        return x if self.conv is None else self.norm(self.conv(x))


class MHCA(nn.Module):
    """Multi-head convolutional attention: grouped 3x3 conv (one group per head), BN, ReLU, 1x1 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.group_conv3x3 = nn.Conv2d(channels, channels, 3, padding=1, groups=channels // HEAD_DIM, bias=False)
        self.norm = _bn(channels)
        self.projection = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(F.relu(self.norm(self.group_conv3x3(x))))


class Mlp(nn.Module):
    """1x1 conv MLP with a hidden width of ``make_divisible(channels * ratio)``."""

    def __init__(self, channels: int, mlp_ratio: float):
        super().__init__()
        hidden = make_divisible(channels * mlp_ratio)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class NCB(nn.Module):
    """Next Convolution Block."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, mlp_ratio: float = 3.0):
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, out_channels, stride)
        self.mhca = MHCA(out_channels)
        self.norm = _bn(out_channels)
        self.mlp = Mlp(out_channels, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = x + self.mhca(x)
        return x + self.mlp(self.norm(x))


class EfficientMHSA(nn.Module):
    """Multi-head self-attention on (B, N, C) tokens whose keys/values are average-pooled
    over ``sr_ratio**2`` consecutive tokens of the flattened sequence, then batch-normed."""

    def __init__(self, dim: int, sr_ratio: int):
        super().__init__()
        self.num_heads = dim // HEAD_DIM
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.pool = sr_ratio**2
        self.norm = nn.BatchNorm1d(dim, eps=BN_EPS) if sr_ratio > 1 else None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (B, heads, N, head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kv = x
        if self.norm is not None:
            kv = self.norm(F.avg_pool1d(x.transpose(1, 2), self.pool, self.pool)).transpose(1, 2)
        out = F.scaled_dot_product_attention(self._heads(self.q(x)), self._heads(self.k(kv)), self._heads(self.v(kv)))
        return self.proj(out.transpose(1, 2).flatten(2))


class NTB(nn.Module):
    """Next Transformer Block: E-MHSA on ``mix_block_ratio`` of the channels, MHCA on the rest."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, sr_ratio: int,
                 mix_block_ratio: float, mlp_ratio: float = 2.0):
        super().__init__()
        mhsa_channels = make_divisible(int(out_channels * mix_block_ratio))
        self.patch_embed = PatchEmbed(in_channels, mhsa_channels, stride)
        self.norm1 = _bn(mhsa_channels)
        self.e_mhsa = EfficientMHSA(mhsa_channels, sr_ratio)
        self.projection = PatchEmbed(mhsa_channels, out_channels - mhsa_channels)
        self.mhca = MHCA(out_channels - mhsa_channels)
        self.norm2 = _bn(out_channels)
        self.mlp = Mlp(out_channels, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        tokens = self.norm1(x).flatten(2).transpose(1, 2)
        x = x + self.e_mhsa(tokens).transpose(1, 2).reshape(x.shape)
        local = self.projection(x)
        local = local + self.mhca(local)
        x = torch.cat([x, local], dim=1)
        return x + self.mlp(self.norm2(x))


class NextViT(nn.Module):
    """The Next-ViT classifier (its ``norm`` / ``proj_head`` are kept so official weights load strictly)."""

    def __init__(self, config: NextViTConfig = NEXT_VIT_LARGE):
        super().__init__()
        c0, c1, c2 = config.stem_channels
        self.stem = nn.Sequential(
            ConvBNReLU(3, c0, stride=2), ConvBNReLU(c0, c1, stride=1),
            ConvBNReLU(c1, c2, stride=1), ConvBNReLU(c2, c2, stride=2),
        )
        blocks: list[nn.Module] = []
        channels = c2
        self.stage_ends: list[int] = []
        for stage in range(len(config.depths)):
            for index, (kind, out_channels) in enumerate(config.stage_layout(stage)):
                stride = config.strides[stage] if index == 0 else 1
                if kind == "ncb":
                    blocks.append(NCB(channels, out_channels, stride))
                else:
                    blocks.append(NTB(channels, out_channels, stride, config.sr_ratios[stage], config.mix_block_ratio))
                channels = out_channels
            self.stage_ends.append(len(blocks) - 1)
        self.features = nn.Sequential(*blocks)
        self.norm = _bn(channels)
        self.proj_head = nn.Sequential(nn.Linear(channels, config.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.features(self.stem(x)))
        return self.proj_head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class NextViTBackbone(nn.Module):
    """Next-ViT returning the outputs of the hooked blocks (``pretrained.model.*`` keys)."""

    def __init__(self, model: NextViT, hooks: Sequence[int]):
        super().__init__()
        if max(hooks) >= len(model.features):
            raise ValueError(f"hooks {hooks} do not fit {len(model.features)} blocks")
        self.model = model
        self.hooks = tuple(hooks)
        self.out_channels = tuple(_block_channels(model.features[h]) for h in self.hooks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> 4 maps (B, C_i, H / 2**(i+2), W / 2**(i+2)), C = 96, 256, 512, 1024."""
        x = self.model.stem(x)
        features = []
        for index, block in enumerate(self.model.features[: self.hooks[-1] + 1]):
            x = block(x)
            if index in self.hooks:
                features.append(x)
        return features


def _block_channels(block: nn.Module) -> int:
    return block.mlp.conv2.out_channels


def build(spec: ModelSpec) -> DPTDepthModel:
    """DPT with Next-ViT-L (ImageNet-1K-6M); any input size divisible by 32.

    The table's hooks are the last block of each stage (official "next_vit_large_6m" hooks).
    The official checkpoint already uses this module's names (no timm involved): no key remap.
    """
    arch = spec.arch
    backbone = NextViTBackbone(NextViT(NEXT_VIT_LARGE), arch.hooks)
    return DPTDepthModel(backbone, arch.features, **arch.decoder)
