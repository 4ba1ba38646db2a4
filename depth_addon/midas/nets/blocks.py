"""Building blocks shared by the MiDaS decoders (official ``midas/blocks.py`` semantics).

Attribute names follow the official modules, so ``state_dict`` keys match the official
checkpoints (``scratch.layer1_rn``, ``scratch.refinenet4.resConfUnit1.conv1`` ...).
All tensors are ``(B, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Interpolate(nn.Module):
    """``F.interpolate`` by a fixed scale factor, as a module (used inside the depth heads)."""

    def __init__(self, scale_factor: float, mode: str, align_corners: bool = False):
        super().__init__()
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode, align_corners=self.align_corners)


def make_scratch(in_channels: Sequence[int], features: int, expand: bool = False) -> nn.Module:
    """The ``scratch`` module with ``layerN_rn``: 3x3 convs (no bias) mapping encoder features.

    With ``expand`` the widths grow per level (features, 2x, 4x, 8x) as in MiDaS v2.1 Small.
    3 or 4 levels, one per entry of ``in_channels``.
    """
    if len(in_channels) not in (3, 4):
        raise ValueError(f"expected 3 or 4 encoder levels, got {len(in_channels)}")
    scratch = nn.Module()
    for level, in_ch in enumerate(in_channels):
        out_ch = features * (2**level) if expand else features
        conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=False)
        setattr(scratch, f"layer{level + 1}_rn", conv)
    return scratch


class ResidualConvUnit(nn.Module):
    """MiDaS v2.1 residual unit. Its ReLU is in-place in the official code, so the skip
    connection adds ``relu(x)``, not ``x``; we reproduce that explicitly."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, stride=1, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, stride=1, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.conv2(F.relu(self.conv1(x))) + x


class FeatureFusionBlock(nn.Module):
    """MiDaS v2.1 fusion block: fuse the skip input, refine, upsample x2 (align_corners=True)."""

    def __init__(self, features: int):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        output = xs[0]
        if len(xs) == 2:
            output = output + self.resConfUnit1(xs[1])
        output = self.resConfUnit2(output)
        return F.interpolate(output, scale_factor=2, mode="bilinear", align_corners=True)


class ResidualConvUnitCustom(nn.Module):
    """Residual unit of DPT / MiDaS v2.1 Small (``ResidualConvUnit_custom``): the activation is
    not in-place, so the skip adds the unactivated input; optional BatchNorm after each conv."""

    def __init__(self, features: int, activation: nn.Module, bn: bool = False):
        super().__init__()
        self.bn = bn
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, stride=1, padding=1, bias=True)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, stride=1, padding=1, bias=True)
        if bn:
            self.bn1 = nn.BatchNorm2d(features)
            self.bn2 = nn.BatchNorm2d(features)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.activation(x))
        if self.bn:
            out = self.bn1(out)
        out = self.conv2(self.activation(out))
        if self.bn:
            out = self.bn2(out)
        return out + x


class FeatureFusionBlockCustom(nn.Module):
    """DPT / Small fusion block (``FeatureFusionBlock_custom``).

    Resamples to ``size`` (call argument, else the constructor's ``size``, else x2), then a
    1x1 ``out_conv`` (halving the channels with ``expand``).
    """

    def __init__(self, features: int, activation: nn.Module, bn: bool = False, expand: bool = False,
                 align_corners: bool = True, size: int | tuple[int, int] | None = None):
        super().__init__()
        self.align_corners = align_corners
        self.size = size
        out_features = features // 2 if expand else features
        self.out_conv = nn.Conv2d(features, out_features, kernel_size=1, stride=1, padding=0, bias=True)
        self.resConfUnit1 = ResidualConvUnitCustom(features, activation, bn)
        self.resConfUnit2 = ResidualConvUnitCustom(features, activation, bn)

    def forward(self, *xs: torch.Tensor, size=None) -> torch.Tensor:
        output = xs[0]
        if len(xs) == 2:
            output = output + self.resConfUnit1(xs[1])
        output = self.resConfUnit2(output)
        if size is None and self.size is None:
            output = F.interpolate(output, scale_factor=2, mode="bilinear", align_corners=self.align_corners)
        else:
            target = size if size is not None else self.size
            output = F.interpolate(output, size=target, mode="bilinear", align_corners=self.align_corners)
        return self.out_conv(output)


def make_depth_head(in_features: int, mid_features: int, head_features: int = 32, *,
                    align_corners: bool, non_negative: bool = True) -> nn.Sequential:
    """The official depth head (``scratch.output_conv``): conv3x3 -> x2 upsample -> conv3x3 ->
    ReLU -> conv1x1 to one channel -> ReLU (``non_negative``) -> Identity.

    Indices 0, 2, 4 hold the weights, as in the checkpoints.
    """
    return nn.Sequential(
        nn.Conv2d(in_features, mid_features, kernel_size=3, stride=1, padding=1),
        Interpolate(scale_factor=2, mode="bilinear", align_corners=align_corners),
        nn.Conv2d(mid_features, head_features, kernel_size=3, stride=1, padding=1),
        nn.ReLU(),
        nn.Conv2d(head_features, 1, kernel_size=1, stride=1, padding=0),
        nn.ReLU() if non_negative else nn.Identity(),
        nn.Identity(),
    )


# --- ViT-style token handling shared by the ViT / hybrid / BEiT backbones (official backbones/utils.py)


class SliceReadout(nn.Module):
    """Readout ``ignore``: drop the class (and distillation) tokens."""

    def __init__(self, start_index: int = 1):
        super().__init__()
        self.start_index = start_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start_index:]


class AddReadout(nn.Module):
    """Readout ``add``: add the class token (mean of class+dist tokens if two) to every patch token."""

    def __init__(self, start_index: int = 1):
        super().__init__()
        self.start_index = start_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        readout = (x[:, 0] + x[:, 1]) / 2 if self.start_index == 2 else x[:, 0]
        return x[:, self.start_index:] + readout.unsqueeze(1)


class ProjectReadout(nn.Module):
    """Readout ``project``: concatenate the class token to every patch token, Linear + GELU.

    ``(B, start_index + N, C) -> (B, N, C)``; weights at ``project.0``.
    """

    def __init__(self, in_features: int, start_index: int = 1):
        super().__init__()
        self.start_index = start_index
        self.project = nn.Sequential(nn.Linear(2 * in_features, in_features), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x[:, self.start_index:]
        readout = x[:, 0].unsqueeze(1).expand_as(tokens)
        return self.project(torch.cat((tokens, readout), -1))


def make_readout(kind: str, vit_features: int, start_index: int = 1) -> nn.Module:
    """One readout operation: ``"ignore"``, ``"add"`` or ``"project"``."""
    if kind == "ignore":
        return SliceReadout(start_index)
    if kind == "add":
        return AddReadout(start_index)
    if kind == "project":
        return ProjectReadout(vit_features, start_index)
    raise ValueError(f"unknown readout {kind!r}: use 'ignore', 'add' or 'project'")


def tokens_to_map(tokens: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """``(B, N, C)`` patch tokens in row-major order -> ``(B, C, grid_h, grid_w)``."""
    return tokens.transpose(1, 2).unflatten(2, (grid_h, grid_w))


class ReassembleHead(nn.Sequential):
    """Official ``act_postprocessN``: ``[readout, Transpose, Unflatten, conv1x1, (resample)]``.

    Index 1 and 2 hold no weights (placeholders keep the official key indices ``.0`` / ``.3``
    / ``.4``); the token-to-map reshape happens in :meth:`forward`, using the actual grid size.
    """

    def __init__(self, readout: nn.Module, vit_features: int, out_features: int,
                 resample: nn.Module | None = None):
        layers = [readout, nn.Identity(), nn.Identity(),
                  nn.Conv2d(vit_features, out_features, kernel_size=1, stride=1, padding=0)]
        if resample is not None:
            layers.append(resample)
        super().__init__(*layers)

    def forward(self, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:  # type: ignore[override]
        x = tokens_to_map(self[0](tokens), *grid_hw)
        for layer in list(self)[3:]:
            x = layer(x)
        return x


def reassemble_resample(level: int, features: int) -> nn.Module | None:
    """The official per-level resampling after the 1x1 conv: x4, x2 (transposed convs), none, /2."""
    if level == 0:
        return nn.ConvTranspose2d(features, features, kernel_size=4, stride=4, padding=0)
    if level == 1:
        return nn.ConvTranspose2d(features, features, kernel_size=2, stride=2, padding=0)
    if level == 3:
        return nn.Conv2d(features, features, kernel_size=3, stride=2, padding=1)
    return None
