"""ViT-L/16 and ViT-B/16 + ResNet-50 hybrid encoders for DPT Large / DPT Hybrid.

Official counterpart: ``midas/backbones/vit.py`` (``forward_flex``, ``_resize_pos_embed``,
``_make_vit_b16_backbone``, ``_make_vit_b_rn50_backbone``) on timm 0.6.13. The transformer
itself is today's timm ``VisionTransformer`` (same state-dict keys as 0.6.13 for these two
models, so no key remapping); instead of forward hooks we run the blocks ourselves and keep
the hooked outputs, with the position embedding resized to the input's patch grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import ModelSpec
from ._timm import create_timm_model
from .blocks import ReassembleHead, make_readout, reassemble_resample
from .dpt import DPTDepthModel

PATCH = 16


def resize_pos_embed(pos_embed: torch.Tensor, grid_h: int, grid_w: int, start_index: int = 1) -> torch.Tensor:
    """``(1, start_index + G*G, C)`` square-grid embedding -> ``(1, start_index + grid_h*grid_w, C)``
    (bilinear, align_corners=False, like the official ``_resize_pos_embed``)."""
    tok, grid = pos_embed[:, :start_index], pos_embed[0, start_index:]
    old = int(round(grid.shape[0] ** 0.5))
    grid = grid.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bilinear")
    grid = grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
    return torch.cat([tok, grid], dim=1)


class VitBackbone(nn.Module):
    """Hooked ViT encoder: ``forward(x) -> [layer_1, layer_2, layer_3, layer_4]`` feature maps.

    ``model`` is a timm ``VisionTransformer`` (keys ``pretrained.model.*``). ``hooks`` are the
    block indices whose outputs feed the four reassemble heads ``act_postprocess1..4``.
    With ``cnn_stages=2`` (hybrid) levels 1-2 are the ResNet stage outputs instead, and their
    heads are weightless placeholders, as in the official model.
    """

    def __init__(self, model: nn.Module, hooks: Sequence[int], vit_features: int, features: Sequence[int],
                 readout: str = "project", cnn_stages: int = 0, start_index: int = 1):
        super().__init__()
        self.model = model
        self.hooks = tuple(hooks)
        self.cnn_stages = cnn_stages
        self.start_index = start_index
        for level in range(4):
            if level < cnn_stages:
                head = nn.Sequential(nn.Identity(), nn.Identity(), nn.Identity())
            else:
                resample = reassemble_resample(level, features[level])
                head = ReassembleHead(make_readout(readout, vit_features, start_index), vit_features,
                                      features[level], resample)
            setattr(self, f"act_postprocess{level + 1}", head)

    def _patch_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Patch embedding -> ``(B, N, C)`` tokens, plus the CNN stage outputs for hybrids."""
        embed = self.model.patch_embed
        stage_maps: list[torch.Tensor] = []
        if self.cnn_stages:
            cnn = embed.backbone
            x = cnn.stem(x)
            for stage in cnn.stages:
                x = stage(x)
                stage_maps.append(x)
            x = cnn.norm(x)
        return embed.proj(x).flatten(2).transpose(1, 2), stage_maps[: self.cnn_stages]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        grid = (x.shape[2] // PATCH, x.shape[3] // PATCH)
        model = self.model
        tokens, layers = self._patch_tokens(x)
        cls = model.cls_token.expand(x.shape[0], -1, -1)
        tokens = torch.cat((cls, tokens), dim=1) + resize_pos_embed(model.pos_embed, *grid, self.start_index)
        tokens = model.pos_drop(tokens)
        wanted = self.hooks[self.cnn_stages:]
        hooked = {}
        for index, block in enumerate(model.blocks[: max(wanted) + 1]):
            tokens = block(tokens)
            if index in wanted:
                hooked[index] = tokens
        for level, index in enumerate(wanted, start=self.cnn_stages):
            layers.append(getattr(self, f"act_postprocess{level + 1}")(hooked[index], grid))
        return layers


def build(spec: ModelSpec) -> DPTDepthModel:
    """DPT Large / Hybrid: the timm ViT of ``spec`` with its hooks, readout and CNN stages from the table."""
    arch = spec.arch
    model = create_timm_model(arch.timm_name)
    backbone = VitBackbone(model, hooks=arch.hooks, vit_features=model.embed_dim, features=arch.features,
                           **arch.backbone_args)
    return DPTDepthModel(backbone, arch.features, **arch.decoder)
