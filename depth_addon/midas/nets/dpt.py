"""DPT: a transformer (or hybrid) encoder + the MiDaS reassemble/fusion decoder.

Official counterpart: ``midas/dpt_depth.py`` (``DPT`` + ``DPTDepthModel``). Backbones live in
sibling modules (``vit.py``, ``swin.py``, ``beit.py``, ``levit.py``, ``next_vit.py``); each
returns its 3 or 4 hooked, post-processed feature maps from ``forward(x)``.

State-dict layout (identical to the official checkpoints):
``pretrained.*`` = the backbone, ``scratch.layerN_rn`` / ``scratch.refinenetN`` /
``scratch.stem_transpose`` / ``scratch.output_conv`` = the decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .blocks import FeatureFusionBlockCustom, make_depth_head, make_scratch


def _make_fusion_block(features: int, use_bn: bool, size=None) -> FeatureFusionBlockCustom:
    return FeatureFusionBlockCustom(features, nn.ReLU(), bn=use_bn, expand=False, align_corners=True,
                                    size=size)


class DPTDepthModel(nn.Module):
    """DPT depth model around any backbone.

    Args:
        backbone: ``forward(x: (B, 3, H, W)) -> list`` of 3 or 4 feature maps ``(B, C_i, H_i, W_i)``,
            finest first. Stored as ``self.pretrained``.
        in_channels: ``C_i`` of those maps (3 or 4 entries).
        features: decoder width.
        use_bn: BatchNorm inside the fusion blocks' residual units.
        head_features_1: input width of the depth head (defaults to ``features``).
        head_features_2: width before the head's last 1x1 conv.
        stem_transpose: optional module applied to the finest fused map before the head (LeViT).
        refinenet3_size: fixed output size of ``refinenet3`` when not given at call time.
        non_negative: final ReLU on the depth output.
    """

    def __init__(self, backbone: nn.Module, in_channels: Sequence[int], *, features: int = 256,
                 use_bn: bool = False, head_features_1: int | None = None, head_features_2: int = 32,
                 stem_transpose: nn.Module | None = None, refinenet3_size: tuple[int, int] | None = None,
                 non_negative: bool = True):
        super().__init__()
        own = getattr(backbone, "out_channels", None)
        if own is not None and tuple(own) != tuple(in_channels):
            raise ValueError(f"the backbone gives {tuple(own)} channels, the table says {tuple(in_channels)}")
        head_features_1 = features if head_features_1 is None else head_features_1
        self.number_layers = len(in_channels)
        self.pretrained = backbone
        self.scratch = make_scratch(in_channels, features, expand=False)
        self.scratch.refinenet1 = _make_fusion_block(features, use_bn)
        self.scratch.refinenet2 = _make_fusion_block(features, use_bn)
        self.scratch.refinenet3 = _make_fusion_block(features, use_bn, refinenet3_size)
        if self.number_layers >= 4:
            self.scratch.refinenet4 = _make_fusion_block(features, use_bn)
        self.scratch.stem_transpose = stem_transpose
        self.scratch.output_conv = make_depth_head(
            head_features_1, head_features_1 // 2, head_features_2, align_corners=True, non_negative=non_negative
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image -> (B, 1, H', W') raw head output."""
        layers = self.pretrained(x)
        if len(layers) != self.number_layers:
            raise RuntimeError(f"backbone returned {len(layers)} feature maps, decoder expects {self.number_layers}")
        rn = [getattr(self.scratch, f"layer{i + 1}_rn")(layer) for i, layer in enumerate(layers)]
        if self.number_layers == 3:
            path = self.scratch.refinenet3(rn[2], size=rn[1].shape[2:])
        else:
            path = self.scratch.refinenet4(rn[3], size=rn[2].shape[2:])
            path = self.scratch.refinenet3(path, rn[2], size=rn[1].shape[2:])
        path = self.scratch.refinenet2(path, rn[1], size=rn[0].shape[2:])
        path = self.scratch.refinenet1(path, rn[0])
        if self.scratch.stem_transpose is not None:
            path = self.scratch.stem_transpose(path)
        return self.scratch.output_conv(path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image -> (B, H, W) relative inverse depth (network resolution)."""
        return self.forward_features(x).squeeze(dim=1)
