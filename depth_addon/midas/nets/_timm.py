"""timm model creation with user-facing errors, and the one official-checkpoint key remap.

Never downloads anything: ``pretrained=False``; the official checkpoint supplies all weights.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import torch
from torch import nn

from ...errors import CheckpointMismatchError, DependencyMissingError, ModelUnavailableError
from ..registry import ModelSpec, matching_model_types
from . import _timm_loader


def import_timm():
    """timm's package, privately imported (:mod:`._timm_loader`); DependencyMissingError if timm (or the
    torchvision it needs) is absent.

    Its submodules load on first use (``import_timm().layers``).
    """
    try:
        timm = _timm_loader.load("timm")
        _timm_loader.load("timm.layers")  # what every backbone needs (and, of torchvision, FrozenBatchNorm2d)
        return timm
    except ModuleNotFoundError as exc:
        missing = exc.name or "timm"
        raise DependencyMissingError(
            f"{missing} is not installed ({exc}); install it into Blender's Python with "
            f"'python -m pip install {'timm' if missing == 'timm' else f'timm {missing}'}' (see the add-on preferences)"
        ) from exc


def timm_module(name: str):
    """timm's module ``timm.<name>`` (e.g. ``"models.beit"``, ``"layers"``), privately imported."""
    import_timm()
    return _timm_loader.load(f"timm.{name}")


def create_timm_model(name: str, **kwargs) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)``; ModelUnavailableError if this timm lacks it."""
    import_timm()
    try:
        return _timm_loader.create_model(name, pretrained=False, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" not in str(exc):
            raise
        raise ModelUnavailableError(
            f"the installed timm {_timm_loader.version()} has no '{name}' architecture; "
            "install a timm release that provides it (e.g. 'python -m pip install -U timm')"
        ) from exc


def remap_official_keys(state_dict: Mapping[str, torch.Tensor], net: nn.Module, spec: ModelSpec) -> dict:
    """Official checkpoint keys -> ``net``'s keys, by the key-remap rule of ``spec.arch``.

    Keys outside ``arch.timm_prefix`` pass through unchanged. Under it, the keys are made
    relative to the timm model (timm's ``checkpoint_filter_fn`` style) and: renamed by the network
    module's ``rename_legacy_keys(state_dict, model)`` when ``arch.legacy_timm``; dropped when
    their last part is one of ``arch.computed_buffers`` after checking the saved value equals the
    one the model computes (a difference means another model type, window or input size);
    dropped when named in ``arch.unused_keys`` (official keys inference does not use). Key order
    is kept.
    """
    arch = spec.arch
    if not (arch.legacy_timm or arch.computed_buffers or arch.unused_keys):
        return dict(state_dict)
    prefix = arch.timm_prefix
    model = net.get_submodule(prefix.rstrip("."))
    inner = {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
    official_names = list(inner)
    if arch.legacy_timm:  # one new name per old one, in order
        inner = importlib.import_module(f"{__package__}.{arch.network}").rename_legacy_keys(inner, model)
    own_buffers = dict(model.named_buffers())
    kept = {}
    for official, (name, value) in zip(official_names, inner.items(), strict=True):
        if name in arch.unused_keys:
            continue
        if name.rsplit(".", 1)[-1] in arch.computed_buffers:
            check_computed_buffer(prefix + official, value, own_buffers.get(name), spec.name, state_dict)
            continue
        kept[prefix + name] = value
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():  # the backbone's keys where its first key was
        if not key.startswith(prefix):
            out[key] = value
        elif kept:
            out.update(kept)
            kept = {}
    return out


def check_computed_buffer(
    key: str, saved: torch.Tensor, own: torch.Tensor | None, model_type: str, state_dict: Mapping[str, torch.Tensor]
) -> None:
    """Raise ``CheckpointMismatchError`` unless a saved structural buffer equals the one we compute.

    Official checkpoints (timm 0.6.13) store index tables and attention masks that today's
    timm computes from the configuration instead of loading; the remap drops them, but only
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
    others = [name for name in matching_model_types(state_dict) if name != model_type]
    advice = (f"it looks like a '{others[0]}' checkpoint: choose that model type" if others
              else f"the file is not a {model_type} checkpoint: use the official {model_type} file")
    raise CheckpointMismatchError(f"checkpoint {key} {problem}; {advice}")
