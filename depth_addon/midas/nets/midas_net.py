"""MiDaS v2.1 convolutional models: ``midas_v21_384`` (ResNeXt-101 32x8d WSL) and
``midas_v21_small_256`` (EfficientNet-Lite3).

Official counterparts: ``midas/midas_net.py`` (``MidasNet``), ``midas/midas_net_custom.py``
(``MidasNet_small``) and the encoder helpers in ``midas/blocks.py``, which take the
backbones from torch.hub (torchvision's WSL ResNeXt, geffnet's ``tf_efficientnet_lite3``).
We build the same layer stacks from today's timm (``resnext101_32x8d``,
``tf_efficientnet_lite3`` with TF "same" padding and BN eps 1e-3, like geffnet), with the
state-dict keys of the official checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..registry import ModelSpec
from ._timm import create_timm_model
from .blocks import FeatureFusionBlock, FeatureFusionBlockCustom, make_depth_head, make_scratch


class EncoderLayers(nn.Module):
    """``pretrained.layer1..4``: four sequential stages; ``forward`` returns all four outputs."""

    def __init__(self, layers: Sequence[nn.Module]):
        super().__init__()
        for index, layer in enumerate(layers):
            setattr(self, f"layer{index + 1}", layer)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index in range(4):
            x = getattr(self, f"layer{index + 1}")(x)
            outputs.append(x)
        return outputs


class MidasNet(nn.Module):
    """Encoder + RefineNet-style decoder of MiDaS v2.1.

    ``refinenets`` are the four fusion blocks, coarsest (``refinenet4``) last in the list order
    1..4; each upsamples x2 (the v2.1 decoder needs no target sizes).
    """

    def __init__(self, encoder: EncoderLayers, in_channels: Sequence[int], features: int, expand: bool,
                 refinenets: Sequence[nn.Module], head: nn.Module):
        super().__init__()
        self.pretrained = encoder
        self.scratch = make_scratch(in_channels, features, expand=expand)
        for index, block in enumerate(refinenets):
            setattr(self.scratch, f"refinenet{index + 1}", block)
        self.scratch.output_conv = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image -> (B, H, W) relative inverse depth."""
        layers = self.pretrained(x)
        rn = [getattr(self.scratch, f"layer{i + 1}_rn")(layer) for i, layer in enumerate(layers)]
        path = self.scratch.refinenet4(rn[3])
        path = self.scratch.refinenet3(path, rn[2])
        path = self.scratch.refinenet2(path, rn[1])
        path = self.scratch.refinenet1(path, rn[0])
        return self.scratch.output_conv(path).squeeze(dim=1)


def _resnext_encoder(resnet: nn.Module) -> EncoderLayers:
    # Official: Sequential(conv1, bn1, relu, maxpool, layer1) -> keys layer1.0/.1/.4
    stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.act1, resnet.maxpool, resnet.layer1)
    return EncoderLayers([stem, resnet.layer2, resnet.layer3, resnet.layer4])


def _efficientnet_encoder(effnet: nn.Module) -> EncoderLayers:
    # The official model is geffnet's with exportable=True, whose strided "same" convs fix
    # their padding from the first input they see; timm recomputes it per input. With both
    # sides a multiple of 32 (the transform guarantees it) every strided conv sees even sizes,
    # so the padding is the same (0, 1) / (1, 2) either way.
    blocks = effnet.blocks
    # Official: Sequential(conv_stem, bn1, act1, *blocks[0:2]); timm's bn1 already applies the
    # activation (BatchNormAct2d), so index 2 is an Identity placeholder keeping the key indices.
    return EncoderLayers([
        nn.Sequential(effnet.conv_stem, effnet.bn1, nn.Identity(), *blocks[0:2]),
        nn.Sequential(*blocks[2:3]),
        nn.Sequential(*blocks[3:5]),
        nn.Sequential(*blocks[5:9]),
    ])


# How the official encoders cut each timm network into pretrained.layer1..4.
_ENCODERS = {"resnext101_32x8d": _resnext_encoder, "tf_efficientnet_lite3": _efficientnet_encoder}


def build(spec: ModelSpec) -> MidasNet:
    """MiDaS v2.1: the official encoder cut from the timm network of ``spec``, and its decoder.

    ``decoder.expand=False`` (``midas_v21_384``): four v2.1 fusion blocks and a 128 -> 32 head.
    ``expand=True`` (``midas_v21_small_256``): widths grow per level, custom fusion blocks
    with ReLU (align_corners=True), head ``features/2`` -> 32.
    """
    arch = spec.arch
    encoder = _ENCODERS[arch.timm_name](create_timm_model(arch.timm_name))
    features, expand = arch.decoder["features"], arch.decoder["expand"]
    if expand:
        activation = nn.ReLU()
        refinenets = [FeatureFusionBlockCustom(features, activation, expand=False, align_corners=True)]
        refinenets += [FeatureFusionBlockCustom(features * 2**level, activation, expand=True, align_corners=True)
                       for level in (1, 2, 3)]
        head = make_depth_head(features, features // 2, 32, align_corners=False)
    else:
        refinenets = [FeatureFusionBlock(features) for _ in range(4)]
        head = make_depth_head(features, 128, 32, align_corners=False)
    return MidasNet(encoder, arch.features, features, expand=expand, refinenets=refinenets, head=head)
