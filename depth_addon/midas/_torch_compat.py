"""Make ``import timm`` work when torchvision's compiled ops do not match torch.

timm imports torchvision, and a torchvision wheel built for another torch release
cannot load its C++ extension; its ``_meta_registrations`` module then fails with
``RuntimeError: operator torchvision::nms does not exist`` while registering fake
kernels for ``nms``/``qnms``. MiDaS never uses those detection ops, so declaring their
two schemas is enough for torchvision (and therefore timm) to import. This is the one
place that knows about it; call :func:`ensure_timm_importable` before importing timm.
"""

from __future__ import annotations

import sys

# Kept alive for the whole process: a torch.library.Library drops its definitions
# when it is garbage-collected.
_TORCHVISION_SCHEMA_LIB = None

_MISSING_OP_MESSAGE = "operator torchvision::nms does not exist"


def _define_detection_op_schemas() -> None:
    global _TORCHVISION_SCHEMA_LIB
    import torch.library

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_SCHEMA_LIB = lib


def _forget_partial_torchvision() -> None:
    """Drop the half-imported torchvision modules so the retry starts clean."""
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def ensure_timm_importable() -> None:
    """Import torchvision, declaring its missing op schemas first if its C++ ops failed to load.

    Does nothing if torchvision is not installed (importing timm then names what is missing);
    re-raises any other torchvision error unchanged. Safe to call any number of times.
    """
    try:
        import torchvision
    except ModuleNotFoundError:
        return  # timm's own import error will name what is missing
    except RuntimeError as exc:
        if _MISSING_OP_MESSAGE not in str(exc) or _TORCHVISION_SCHEMA_LIB is not None:
            raise
        _forget_partial_torchvision()
        _define_detection_op_schemas()
        import torchvision  # noqa: F401
