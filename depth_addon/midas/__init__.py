"""Depth inference core: MiDaS and Depth Anything V2 (never imports bpy; torch/timm are imported lazily).

    from depth_addon.midas import MODEL_TYPES, load_model
    model = load_model("dpt_hybrid_384", checkpoint="dpt_hybrid_384.pt", device="cpu")
    depth = model.predict(rgb)   # (H, W, 3) uint8 -> (H, W) float32 of kind model.spec.depth_kind
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import DEFAULT_MODEL, MODEL_SPECS, MODEL_TYPES, MODELS, ModelSpec, get_spec

if TYPE_CHECKING:
    from .model import MidasModel


def load_model(model_type: str, checkpoint=None, device: str = "auto", precision: str = "fp32",
               weights_dir=None, progress=None, optimize: bool = True) -> MidasModel:
    """Build ``model_type`` and load its official checkpoint; see :func:`.model.load_model`.

    Imports torch and timm on first use (DependencyMissingError if they are absent).
    """
    from .model import load_model as _load_model

    return _load_model(model_type, checkpoint=checkpoint, device=device, precision=precision,
                       weights_dir=weights_dir, progress=progress, optimize=optimize)


def __getattr__(name: str):
    # ``MidasModel`` on demand, so importing this package never imports torch.
    if name == "MidasModel":
        from .model import MidasModel

        return MidasModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_MODEL", "MODELS", "MODEL_SPECS", "MODEL_TYPES", "MidasModel", "ModelSpec", "get_spec",
           "load_model"]
