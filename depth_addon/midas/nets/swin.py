"""Swin and SwinV2 backbones of the MiDaS v3.1 DPT models, built with today's timm.

The official MiDaS v3.1 code created these backbones with timm 0.6.13 and read one feature
map per stage through forward hooks on the stage's last block. Today's timm gives exactly
those tensors from ``forward_intermediates`` (each stage's output, before the final norm, in
NCHW), so no hooks are needed; the table's hooks are checked to be the stage ends. What
changed in timm between the two versions, and how the official checkpoints map onto it, is in
:func:`rename_legacy_keys`.

Input size: the official Swin models always run on a square ``img_size`` input
(``keep_aspect_ratio=False`` in the table): timm 0.6.13 fixed the window masks at
construction and rejected any other size. We keep that contract and say so clearly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
from torch import nn

from ...errors import ModelUnavailableError
from ..registry import ModelSpec
from ._timm import create_timm_model
from .dpt import DPTDepthModel

# timm 0.6.13 (official checkpoints) -> timm >= 1.0 parameter names, relative to the timm model.
# timm 1.0 moved each PatchMerging from the end of stage i to the start of stage i + 1 and
# wrapped the classifier in a ClassifierHead; the tensors themselves are unchanged.
_LEGACY_RENAMES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^layers\.(\d+)\.downsample\."), lambda m: f"layers.{int(m.group(1)) + 1}.downsample."),
    (re.compile(r"^head\.(weight|bias)$"), lambda m: f"head.fc.{m.group(1)}"),
)
# Present only in timm 0.6.13 checkpoints: stage 0 owned a downsample layer.
_LEGACY_MARKER = "layers.0.downsample.reduction.weight"


class SwinBackbone(nn.Module):
    """A timm Swin/SwinV2 model that returns the 4 stage outputs the DPT decoder reads.

    ``self.model`` is the timm model, so parameter names are ``model.<timm name>``
    (``pretrained.model.*`` inside ``DPTDepthModel``), as in the official checkpoints.
    """

    def __init__(self, model: nn.Module, hooks: tuple[int, int, int, int], model_type: str):
        super().__init__()
        depths = [len(stage.blocks) for stage in model.layers]
        if list(hooks) != [depth - 1 for depth in depths]:
            raise ValueError(f"hooks {hooks} are not the last blocks of the stages (depths {depths})")
        self.model = model
        self.model_type = model_type
        self.img_size = tuple(model.patch_embed.img_size)
        self.out_channels = tuple(int(info["num_chs"]) for info in model.feature_info)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) normalised image -> 4 feature maps (B, C_i, H / 2**(i+2), W / 2**(i+2))."""
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"{self.model_type} needs a {self.img_size[1]}x{self.img_size[0]} input, got "
                f"{x.shape[-1]}x{x.shape[-2]}: Swin models run on their fixed square size "
                "(keep_aspect_ratio=False), resize the image to it first"
            )
        return self.model.forward_intermediates(x, intermediates_only=True)


def rename_legacy_keys(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict:
    """timm 0.6.13 Swin keys (relative to the timm model) -> timm >= 1.0 keys, in order.

    A checkpoint already in timm >= 1.0 layout (no ``layers.0.downsample``) keeps its names.
    """
    if _LEGACY_MARKER not in state_dict:
        return dict(state_dict)
    out = {}
    for name, value in state_dict.items():
        for pattern, replace in _LEGACY_RENAMES:
            name = pattern.sub(replace, name)
        out[name] = value
    return out


def build(spec: ModelSpec) -> DPTDepthModel:
    """DPT with the Swin/SwinV2 backbone of ``spec`` (randomly initialised; never downloads)."""
    arch = spec.arch
    model = create_timm_model(arch.timm_name, img_size=arch.img_size)
    if not isinstance(getattr(model.layers[0], "downsample", None), nn.Identity):
        # timm < 0.9 (e.g. the 0.6.13 the official code used) downsamples at the end of a
        # stage and passes (B, L, C) tokens; SwinBackbone.forward expects today's layout.
        raise ModelUnavailableError(
            f"{spec.name} needs timm 0.9 or newer (tested with 1.0); the installed timm is older: "
            "upgrade it with 'python -m pip install -U timm'"
        )
    backbone = SwinBackbone(model, arch.hooks, spec.name)
    return DPTDepthModel(backbone, arch.features, **arch.decoder)
