"""The optimised inference path: the same network computed with fewer operations.

``optimize_network(net)`` is applied once to a loaded network (``load_model(optimize=True)``,
the default). It never changes a parameter or a ``state_dict`` key: it swaps the class of
modules, by type, for a subclass whose ``forward`` computes the same function more cheaply,
so it applies to every network built from these modules, whatever the model table says:

- attention: timm's Swin (``WindowAttention``), SwinV2 (cosine ``WindowAttention``) and LeViT
  (``Attention``, ``AttentionDownsample``) compute softmax attention by hand; here they call
  the fused ``F.scaled_dot_product_attention`` (timm's ViT / DINOv2 ``Attention`` and our BEiT
  blocks already do);
- decoder: a DPT / MiDaS-Small fusion block's 1x1 ``out_conv`` runs before its bilinear
  upsampling instead of after (a per-pixel affine map commutes with an interpolation whose
  weights sum to 1: exact, on a quarter of the pixels); the ``project`` readout multiplies the
  class token by its half of the weight once instead of once per patch token;
- memory layout: purely convolutional networks run channels-last (oneDNN's native layout).

Under fp16 / bf16, ``keep_sensitive_in_fp32`` keeps the normalisation layers in fp32 as well.

What stays the plain path: ``load_model(optimize=False)`` builds the network as the official
code runs it. ``scripts/bench_inference.py`` times both side by side and prints their
difference (below 1e-5 relative on every model type).
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

from .nets._timm_loader import PRIVATE
from .nets.blocks import FeatureFusionBlockCustom, ProjectReadout


class _FastFusionBlock(FeatureFusionBlockCustom):
    """``out_conv`` (1x1, affine per pixel) before the bilinear resize instead of after it."""

    def forward(self, *xs: torch.Tensor, size=None) -> torch.Tensor:
        output = xs[0]
        if len(xs) == 2:
            output = output + self.resConfUnit1(xs[1])
        output = self.out_conv(self.resConfUnit2(output))
        if size is None and self.size is None:
            return F.interpolate(output, scale_factor=2, mode="bilinear", align_corners=self.align_corners)
        target = size if size is not None else self.size
        return F.interpolate(output, size=target, mode="bilinear", align_corners=self.align_corners)


class _FastProjectReadout(ProjectReadout):
    """``Linear(cat(tokens, cls))`` as ``tokens @ W_t + (cls @ W_c + b)``: the class token's half once."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linear, activation = self.project[0], self.project[1]
        tokens = x[:, self.start_index:]
        width = tokens.shape[-1]
        readout = F.linear(x[:, :1], linear.weight[:, width:], linear.bias)  # (B, 1, C)
        return activation(F.linear(tokens, linear.weight[:, :width]).add_(readout))


def _swin_v2_attention_class(base: type) -> type:
    class FastSwinV2WindowAttention(base):
        """SwinV2 cosine attention through the fused kernel: ``softmax(s * q_n k_n^T + bias + mask) v``
        with the logit scale ``s`` folded into the normalised queries."""

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            batch_windows, tokens, channels = x.shape
            if self.q_bias is None:
                qkv = self.qkv(x)
            else:
                qkv_bias = torch.cat((self.q_bias, self.k_bias, self.v_bias))
                qkv = self.qkv(x) + qkv_bias if self.qkv_bias_separate else F.linear(x, self.qkv.weight, qkv_bias)
            q, k, v = qkv.reshape(batch_windows, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            logit_scale = torch.clamp(self.logit_scale, max=math.log(1.0 / 0.01)).exp()
            q = F.normalize(q, dim=-1) * logit_scale
            k = F.normalize(k, dim=-1)
            table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
            bias = table[self.relative_position_index.view(-1)].view(tokens, tokens, -1).permute(2, 0, 1)
            bias = 16 * torch.sigmoid(bias)  # (heads, N, N)
            if mask is not None:
                windows = mask.shape[0]
                bias = (bias.unsqueeze(0) + mask.unsqueeze(1)).unsqueeze(0)  # (1, windows, heads, N, N)
                bias = bias.expand(batch_windows // windows, -1, -1, -1, -1).reshape(-1, self.num_heads, tokens,
                                                                                     tokens)
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=1.0)
            return self.proj_drop(self.proj(x.transpose(1, 2).reshape(batch_windows, tokens, channels)))

    return FastSwinV2WindowAttention


def _levit_attention_class(base: type) -> type:
    class FastLevitAttention(base):
        """LeViT attention (token layout) through the fused kernel, its learned biases as the mask."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.use_conv:
                return super().forward(x)
            batch, tokens, _ = x.shape
            q, k, v = self.qkv(x).view(batch, tokens, self.num_heads, -1).split(
                [self.key_dim, self.key_dim, self.val_dim], dim=3)
            x = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                attn_mask=self.get_attention_biases(x.device).to(q.dtype), scale=self.scale)
            return self.proj(x.transpose(1, 2).reshape(batch, tokens, self.val_attn_dim))

    return FastLevitAttention


def _levit_downsample_class(base: type) -> type:
    class FastLevitAttentionDownsample(base):
        """LeViT's subsampling attention (token layout) through the fused kernel."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.use_conv:
                return super().forward(x)
            batch, tokens, _ = x.shape
            k, v = self.kv(x).view(batch, tokens, self.num_heads, -1).split([self.key_dim, self.val_dim], dim=3)
            q = self.q(x).view(batch, -1, self.num_heads, self.key_dim)
            x = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                attn_mask=self.get_attention_biases(x.device).to(q.dtype), scale=self.scale)
            return self.proj(x.transpose(1, 2).reshape(batch, -1, self.val_attn_dim))

    return FastLevitAttentionDownsample


def _timm_class(module_name: str, class_name: str) -> type | None:
    """A timm class if its module is loaded (no network can hold its modules otherwise); never imports.

    (timm as the networks import it: privately, see :mod:`.nets._timm_loader`.)
    """
    return getattr(sys.modules.get(f"{PRIVATE}.{module_name}"), class_name, None)


def _fast_classes() -> dict[type, type]:
    """Module class -> its fast subclass, for our blocks and the timm modules loaded now."""
    found: dict[type, type] = {FeatureFusionBlockCustom: _FastFusionBlock, ProjectReadout: _FastProjectReadout}
    for module_name, class_name, make in (
        ("timm.models.swin_transformer_v2", "WindowAttention", _swin_v2_attention_class),
        ("timm.models.levit", "Attention", _levit_attention_class),
        ("timm.models.levit", "AttentionDownsample", _levit_downsample_class),
    ):
        base = _timm_class(module_name, class_name)
        if base is not None:
            if base not in _TIMM_FAST:
                _TIMM_FAST[base] = make(base)
            found[base] = _TIMM_FAST[base]
    return found


_TIMM_FAST: dict[type, type] = {}  # made once per timm class, so isinstance checks stay stable
_ATTENTION_NAMES = ("Attention", "MHSA")  # class names of attention modules (timm's and ours)


def _is_convolutional(net: nn.Module) -> bool:
    """No attention module anywhere (MiDaS v2.1): channels-last pays off only there (measured)."""
    return not any(any(name in type(m).__name__ for name in _ATTENTION_NAMES) for m in net.modules())


def optimize_network(net: nn.Module) -> nn.Module:
    """Switch ``net`` (in place) to the optimised path; returns it. Parameters are untouched."""
    fast = _fast_classes()
    swin_attention = _timm_class("timm.models.swin_transformer", "WindowAttention")
    for module in net.modules():
        cls = type(module)
        if cls in fast:
            module.__class__ = fast[cls]
        elif swin_attention is not None and cls is swin_attention and hasattr(module, "fused_attn"):
            module.fused_attn = True  # timm's own SDPA path, off by default there ("experimental")
    if _is_convolutional(net):
        net.to(memory_format=torch.channels_last)
        net.channels_last = True
    return net


def network_input(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` in the memory layout ``net`` runs in."""
    if getattr(net, "channels_last", False):
        return x.contiguous(memory_format=torch.channels_last)
    return x


# --- reduced precision: the numerically sensitive parts stay in fp32 -------------------------

_SENSITIVE = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)
_FP32_CLASSES: dict[type, type] = {}  # class -> its fp32 subclass (made once, so isinstance stays stable)
_FP32_BASES: dict[type, type] = {}    # and back


def _fp32_forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    base = _FP32_BASES[type(self)]
    return base.forward(self, x.float(), *args, **kwargs).to(x.dtype)


def _fp32_class(cls: type) -> type:
    """A subclass of ``cls`` that computes in fp32 (parameters and input) and returns the input's dtype."""
    if cls not in _FP32_CLASSES:
        sub = type(f"Fp32{cls.__name__}", (cls,), {"forward": _fp32_forward})
        _FP32_CLASSES[cls] = sub
        _FP32_BASES[sub] = cls
    return _FP32_CLASSES[cls]


def keep_sensitive_in_fp32(net: nn.Module) -> nn.Module:
    """Under fp16 / bf16: normalisation layers and weight-standardised convs compute in fp32; returns ``net``.

    Their statistics (means, variances over hundreds of channels) lose most of their digits in a
    16-bit type; the rest of the network keeps the reduced precision and its speed. (Measured:
    bf16 on dpt_hybrid_384 17 % -> 13 % max relative error; keeping the depth head in fp32 as
    well changed nothing, so it is not. The error that remains is mostly the 16-bit rounding of
    the input image and of every activation: see the precision table in docs/speed.md.)
    """
    std_convs = tuple(c for c in (_timm_class("timm.layers.std_conv", "StdConv2d"),
                                  _timm_class("timm.layers.std_conv", "StdConv2dSame")) if c is not None)
    islands = [m for m in net.modules()
               if isinstance(m, _SENSITIVE + std_convs) and type(m) not in _FP32_BASES]
    for module in islands:
        module.float()
        module.__class__ = _fp32_class(type(module))
    return net
