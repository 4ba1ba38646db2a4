"""MiDaS inference core (never imports bpy; torch/timm are imported lazily).

    from depth_addon.midas import MODEL_TYPES, load_model
    model = load_model("dpt_hybrid_384", checkpoint="dpt_hybrid_384.pt", device="cpu")
    depth = model.predict(rgb)   # (H, W, 3) uint8 -> (H, W) float32 relative inverse depth
"""

from .registry import DEFAULT_MODEL, MODEL_SPECS, MODEL_TYPES, MODELS, ModelSpec, get_spec

__all__ = ["DEFAULT_MODEL", "MODELS", "MODEL_SPECS", "MODEL_TYPES", "ModelSpec", "get_spec"]
