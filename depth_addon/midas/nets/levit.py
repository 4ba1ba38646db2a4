"""LeViT-384 backbone of the MiDaS v3.1 ``dpt_levit_224`` model.

The official code created timm 0.6.13's ``levit_384`` (distilled), whose blocks were one
flat ``nn.Sequential`` (``blocks.0`` .. ``blocks.27``: attention and MLP residuals, with an
attention-subsample + MLP pair between stages), and hooked blocks 3, 11 and 21. timm 1.0
restructured LeViT into ``stem`` + ``stages[i].downsample`` / ``stages[i].blocks[j]`` (one
``LevitBlock`` = attention + MLP) with renamed sub-layers; the computation is unchanged.
We build today's ``levit_384`` and map the official checkpoint names onto it
(:func:`rename_legacy_keys`). LeViT's attention biases are tied to the
14x14 token grid, so this model always runs on a 224x224 input (``keep_aspect_ratio=False``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ...errors import CheckpointMismatchError
from ..registry import ModelSpec
from ._timm import create_timm_model
from .dpt import DPTDepthModel

# The table's hooks are (stage, block) of timm 1.0: the official hooks [3, 11, 21] index timm
# 0.6.13's flat block list. Stage 0 has 4 (attention, MLP) pairs (flat 0..7), each later stage
# starts with a subsample pair (flat 8..9, 18..19): flat 3 = MLP of stage-0 block 1, flat 11 =
# MLP of stage-1 block 0, flat 21 = MLP of stage-2 block 0, i.e. (0, 1), (1, 0), (2, 0).

# Leaf renames inside a block, timm 0.6.13 -> 1.0 (LinearNorm/ConvNorm's conv ``c`` became
# ``linear``; Sequential indices became names).
_LEAF_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(^|\.)c\.weight$"), r"\1linear.weight"),
    (re.compile(r"^(q|proj)\.1\."), r"\1.ln."),
    (re.compile(r"^0\."), "ln1."),
    (re.compile(r"^2\."), "ln2."),
)


def _legacy_block_prefixes(depths: tuple[int, ...]) -> dict[int, str]:
    """timm 0.6.13 flat block index (with its ``.m`` residual wrapper) -> timm 1.0 module prefix."""
    prefixes = {}
    flat = 0
    for stage, depth in enumerate(depths):
        if stage > 0:  # AttentionSubsample (not wrapped in Residual), then Residual(MLP)
            prefixes[flat] = f"stages.{stage}.downsample.attn_downsample."
            prefixes[flat + 1] = f"stages.{stage}.downsample.mlp."
            flat += 2
        for block in range(depth):
            prefixes[flat] = f"stages.{stage}.blocks.{block}.attn."
            prefixes[flat + 1] = f"stages.{stage}.blocks.{block}.mlp."
            flat += 2
    return prefixes


_LEGACY_BLOCK = re.compile(r"^blocks\.(\d+)\.(?:m\.)?(.*)$")
_LEGACY_STEM = re.compile(r"^patch_embed\.(\d+)\.(.*)$")
_LEGACY_HEAD = re.compile(r"^(head|head_dist)\.l\.(.*)$")


class LevitBackbone(nn.Module):
    """timm ``levit_384`` returning the 3 hooked token grids as (B, C, h, w) maps (14, 7, 4)."""

    def __init__(self, model: nn.Module, hooks: Sequence[tuple[int, int]], img_size: int, model_type: str):
        super().__init__()
        self.model = model
        self.hooks = tuple(tuple(hook) for hook in hooks)
        self.img_size = img_size
        self.model_type = model_type
        self.out_channels = tuple(int(info["num_chs"]) for info in model.feature_info)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, 224, 224) -> maps (B, 384, 14, 14), (B, 512, 7, 7), (B, 768, 4, 4)."""
        if tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(
                f"{self.model_type} needs a {self.img_size}x{self.img_size} input, got "
                f"{x.shape[-1]}x{x.shape[-2]}: LeViT's attention biases are tied to its token grid"
            )
        x = self.model.stem(x)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        features = []
        for stage_index, stage in enumerate(self.model.stages):
            x = stage.downsample(x)
            if stage_index > 0:
                grid = tuple((size - 1) // 2 + 1 for size in grid)
            for block_index, block in enumerate(stage.blocks):
                x = block(x)
                if (stage_index, block_index) in self.hooks:
                    features.append(x.transpose(1, 2).unflatten(2, grid))
                    if len(features) == len(self.hooks):
                        return features
        raise ValueError(f"hooks {self.hooks} do not all lie inside the model")


def _rename_legacy(name: str, prefixes: dict[int, str]) -> str:
    """One timm 0.6.13 LeViT parameter name -> timm 1.0 (names already in 1.0 form pass through)."""
    if match := _LEGACY_HEAD.match(name):
        return f"{match.group(1)}.linear.{match.group(2)}"
    if match := _LEGACY_STEM.match(name):  # stem convs sat at 0, 2, 4, 6 between activations
        prefix, leaf = f"stem.conv{int(match.group(1)) // 2 + 1}.", match.group(2)
    elif match := _LEGACY_BLOCK.match(name):
        flat = int(match.group(1))
        if flat not in prefixes:
            raise CheckpointMismatchError(
                f"checkpoint has LeViT block {flat}, this LeViT has only {len(prefixes)}; "
                "the checkpoint is not the official dpt_levit_224.pt, re-download it"
            )
        prefix, leaf = prefixes[flat], match.group(2)
    else:
        return name
    for pattern, replacement in _LEAF_RENAMES:
        leaf = pattern.sub(replacement, leaf)
    return prefix + leaf


def rename_legacy_keys(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """timm 0.6.13 LeViT keys (relative to the timm model) -> timm 1.0 keys, in order.

    ``patch_embed.{0,2,4,6}`` -> ``stem.conv{1..4}``, flat ``blocks.N[.m]`` -> stage/block
    modules (see ``_legacy_block_prefixes``), ``c`` -> ``linear``, ``head*.l`` -> ``head*.linear``.
    Names already in timm 1.0 form pass through.
    """
    prefixes = _legacy_block_prefixes(tuple(len(stage.blocks) for stage in model.stages))
    return {_rename_legacy(name, prefixes): value for name, value in state_dict.items()}


class ConvTransposeNorm(nn.Sequential):
    """Transposed 3x3 conv (stride 2, output padding 1: exact 2x upsampling) + BatchNorm.

    Official ``ConvTransposeNorm``; its positional arguments put ``dilation=1`` into
    ``output_padding``, which is what makes the LeViT DPT output 224x224.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.c = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)


def stem_b4_transpose(in_channels: int = 256, out_channels: int = 128) -> nn.Sequential:
    """``scratch.stem_transpose``: 4x upsampling from the fused 56x56 map to 224x224 (hard-swish)."""
    return nn.Sequential(
        ConvTransposeNorm(in_channels, out_channels),
        nn.Hardswish(),
        ConvTransposeNorm(out_channels, out_channels // 2),
        nn.Hardswish(),
    )


def build(spec: ModelSpec) -> DPTDepthModel:
    """DPT with LeViT at its fixed size: 3 feature levels, a transposed-conv stem before a small head.

    The decoder arguments come from the table (official model_loader: head_features 64 -> 8;
    refinenet3 built with size 7, unused at runtime: the 3-level path passes a size).
    """
    arch = spec.arch
    backbone = LevitBackbone(create_timm_model(arch.timm_name), arch.hooks, arch.img_size, spec.name)
    decoder = arch.decoder
    stem = stem_b4_transpose(decoder["features"], decoder["features"] // 2)
    return DPTDepthModel(backbone, arch.features, stem_transpose=stem, **decoder)
