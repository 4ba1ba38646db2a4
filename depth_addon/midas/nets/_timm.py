"""Create timm models for the backbones, with user-facing errors instead of raw ones.

Never downloads anything: ``pretrained=False``; the official checkpoint supplies all weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ...errors import CheckpointMismatchError, DependencyMissingError, ModelUnavailableError
from .._torch_compat import ensure_timm_importable


def import_timm():
    """``import timm`` (after the torchvision workaround); DependencyMissingError if absent."""
    ensure_timm_importable()
    try:
        import timm
    except ImportError as exc:
        raise DependencyMissingError(
            f"timm is not installed ({exc}); install it into Blender's Python with "
            "'python -m pip install timm' (see the add-on preferences)"
        ) from exc
    return timm


def create_timm_model(name: str, **kwargs) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)``; ModelUnavailableError if this timm lacks it."""
    timm = import_timm()
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" not in str(exc):
            raise
        raise ModelUnavailableError(
            f"the installed timm {timm.__version__} has no '{name}' architecture; "
            "install a timm release that provides it (e.g. 'python -m pip install -U timm')"
        ) from exc


def check_computed_buffer(
    key: str, saved: torch.Tensor, own: torch.Tensor | None, model_type: str, state_dict: Mapping[str, torch.Tensor]
) -> None:
    """Raise ``CheckpointMismatchError`` unless a saved structural buffer equals the one we compute.

    Official checkpoints (timm 0.6.13) store index tables and attention masks that today's
    timm computes from the configuration instead of loading; the remaps drop them, but only
    after this check, since a different value means another model type, window or input size.
    """
    if own is None:
        problem = f"is not used by {model_type}"
    elif tuple(saved.shape) != tuple(own.shape):
        problem = f"has shape {tuple(saved.shape)}, {model_type} computes {tuple(own.shape)}"
    else:
        saved = saved.to(own.device, own.dtype)
        same = torch.allclose(saved, own, rtol=0.0, atol=1e-6) if own.is_floating_point() else torch.equal(saved, own)
        if same:
            return
        problem = f"differs from the one {model_type} computes"
    from ..model import matching_model_types  # only on this error path: model.py imports the nets lazily

    others = [name for name in matching_model_types(state_dict) if name != model_type]
    advice = (f"it looks like a '{others[0]}' checkpoint: choose that model type" if others
              else f"the file is not a {model_type} checkpoint: use the official {model_type}.pt")
    raise CheckpointMismatchError(f"checkpoint {key} {problem}; {advice}")
