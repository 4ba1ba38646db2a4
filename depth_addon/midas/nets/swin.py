"""Swin and SwinV2 backbones of the MiDaS v3.1 DPT models, built with today's timm.

The official MiDaS v3.1 code created these backbones with timm 0.6.13 and read one
feature map per stage through forward hooks on a chosen block. We build the same
architectures with timm 1.0 and run the stages ourselves, which gives the same
features without hooks or global activation dicts. What changed in timm between
the two versions, and how the official checkpoints are mapped onto it, is in
``SwinBackbone.remap_official_keys``.

Input size: the official Swin models always run on a square ``img_size`` input
(``keep_aspect_ratio=False`` in the registry): timm 0.6.13 fixed the window masks at
construction and rejected any other size. We keep that contract and say so clearly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ModelUnavailableError
from ._timm import check_computed_buffer, create_timm_model


@dataclass(frozen=True)
class SwinVariant:
    """How one official Swin/SwinV2 DPT model builds its backbone.

    ``timm_name`` is the timm >= 1.0 architecture name (timm 0.6.13 called the SwinV2
    384 models ``..._22kft1k``; the architecture is the same). ``hooks`` is the block
    index read in each of the 4 stages, as in the official ``DPT`` hooks table
    (``swin2t16_256``, ``swin2b24_384``, ``swin2l24_384``, ``swinl12_384``).
    """

    timm_name: str
    img_size: int
    hooks: tuple[int, int, int, int]


SWIN_VARIANTS: dict[str, SwinVariant] = {
    "dpt_swin2_tiny_256": SwinVariant("swinv2_tiny_window16_256", 256, (1, 1, 5, 1)),
    "dpt_swin2_base_384": SwinVariant("swinv2_base_window12to24_192to384", 384, (1, 1, 17, 1)),
    "dpt_swin2_large_384": SwinVariant("swinv2_large_window12to24_192to384", 384, (1, 1, 17, 1)),
    "dpt_swin_large_384": SwinVariant("swin_large_patch4_window12_384", 384, (1, 1, 17, 1)),
}

# timm 0.6.13 (official checkpoints) -> timm >= 1.0 parameter names, relative to the timm model.
# timm 1.0 moved each PatchMerging from the end of stage i to the start of stage i + 1 and
# wrapped the classifier in a ClassifierHead; the tensors themselves are unchanged.
_LEGACY_RENAMES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^layers\.(\d+)\.downsample\."), lambda m: f"layers.{int(m.group(1)) + 1}.downsample."),
    (re.compile(r"^head\.(weight|bias)$"), lambda m: f"head.fc.{m.group(1)}"),
)
# Present only in timm 0.6.13 checkpoints: stage 0 owned a downsample layer.
_LEGACY_MARKER = "layers.0.downsample.reduction.weight"
# Buffers timm 0.6.13 saved (attn_mask for SwinV2 and Swin, relative_position_index for Swin)
# but timm 1.0 computes from the config as non-persistent buffers. They are pure functions
# of window size and input size, so we check the saved ones against ours and drop them.
_COMPUTED_BUFFERS = frozenset({"attn_mask", "relative_position_index", "relative_coords_table"})


class SwinBackbone(nn.Module):
    """A timm Swin/SwinV2 model that returns the 4 hooked stage features.

    ``self.model`` is the timm model, so parameter names are ``model.<timm name>``
    (``pretrained.model.*`` inside ``DPTDepthModel``), as in the official checkpoints.
    """

    def __init__(self, model: nn.Module, hooks: tuple[int, int, int, int], model_type: str):
        super().__init__()
        stages = list(model.layers)
        if len(stages) != len(hooks) or any(not 0 <= h < len(s.blocks) for s, h in zip(stages, hooks, strict=True)):
            raise ValueError(f"hooks {hooks} do not fit the stage depths {[len(s.blocks) for s in stages]}")
        self.model = model
        self.hooks = tuple(hooks)
        self.model_type = model_type
        self.img_size = tuple(model.patch_embed.img_size)
        self.out_channels = tuple(int(info["num_chs"]) for info in model.feature_info)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) normalised image -> 4 feature maps (B, C_i, H / 2**(i+2), W / 2**(i+2)).

        Same values as the official hooks: the output of block ``hooks[i]`` of stage i
        (tokens before the final norm), reshaped from timm's NHWC to NCHW.
        """
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"{self.model_type} needs a {self.img_size[1]}x{self.img_size[0]} input, got "
                f"{x.shape[-1]}x{x.shape[-2]}: Swin models run on their fixed square size "
                "(keep_aspect_ratio=False), resize the image to it first"
            )
        x = self.model.patch_embed(x)
        features = []
        for stage, hook in zip(self.model.layers, self.hooks, strict=True):
            x = stage.downsample(x)
            for index, block in enumerate(stage.blocks):
                x = block(x)
                if index == hook:
                    features.append(x.permute(0, 3, 1, 2))
        return features

    def remap_official_keys(self, state_dict: Mapping[str, torch.Tensor], prefix: str = "pretrained.") -> dict:
        """Rename an official (timm 0.6.13) checkpoint's backbone keys to this module's names.

        Only keys under ``prefix + "model."`` change. Checkpoints already in timm >= 1.0 layout
        (no ``layers.0.downsample``) keep their names. Saved buffers that timm now computes
        (see ``_COMPUTED_BUFFERS``) are dropped after checking they equal ours; a difference
        means the checkpoint was made for another window or input size.
        """
        head = prefix + "model."
        legacy = head + _LEGACY_MARKER in state_dict
        own_buffers = dict(self.model.named_buffers())
        out = {}
        for key, value in state_dict.items():
            if not key.startswith(head):
                out[key] = value
                continue
            name = key[len(head):]
            if name.rsplit(".", 1)[-1] in _COMPUTED_BUFFERS:
                check_computed_buffer(key, value, own_buffers.get(name), self.model_type, state_dict)
                continue
            if legacy:
                for pattern, replace in _LEGACY_RENAMES:
                    name = pattern.sub(replace, name)
            out[head + name] = value
        return out


def make_swin_backbone(model_type: str) -> SwinBackbone:
    """Build the (randomly initialised) timm backbone of ``model_type``; never downloads."""
    variant = SWIN_VARIANTS[model_type]
    model = create_timm_model(variant.timm_name, img_size=variant.img_size)
    if not isinstance(getattr(model.layers[0], "downsample", None), nn.Identity):
        # timm < 0.9 (e.g. the 0.6.13 the official code used) downsamples at the end of a
        # stage and passes (B, L, C) tokens; SwinBackbone.forward expects today's layout.
        raise ModelUnavailableError(
            f"{model_type} needs timm 0.9 or newer (tested with 1.0); the installed timm is older: "
            "upgrade it with 'python -m pip install -U timm'"
        )
    return SwinBackbone(model, variant.hooks, model_type)


def _build_dpt(model_type: str) -> nn.Module:
    from .dpt import DPTDepthModel

    backbone = make_swin_backbone(model_type)
    # Official DPTDepthModel defaults for every Swin type: 256 features, no BN, head 256 -> 32.
    return DPTDepthModel(backbone, backbone.out_channels, features=256, non_negative=True)


def dpt_swin2_tiny_256() -> nn.Module:
    """DPT with SwinV2-T (window 16) at 256x256."""
    return _build_dpt("dpt_swin2_tiny_256")


def dpt_swin2_base_384() -> nn.Module:
    """DPT with SwinV2-B (window 24, pretrained at 12) at 384x384."""
    return _build_dpt("dpt_swin2_base_384")


def dpt_swin2_large_384() -> nn.Module:
    """DPT with SwinV2-L (window 24, pretrained at 12) at 384x384."""
    return _build_dpt("dpt_swin2_large_384")


def dpt_swin_large_384() -> nn.Module:
    """DPT with Swin-L (window 12) at 384x384."""
    return _build_dpt("dpt_swin_large_384")
