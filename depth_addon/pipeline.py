"""Image -> depth glue used by the CLI, the Python API and the UI's worker thread (no bpy).

    depth = estimate_depth(rgb, "dpt_hybrid_384", progress=lambda f, msg: print(f, msg))
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import midas
from .errors import CancelledError, DepthAddonError, WeightsUnavailableError
from .midas import weights as weights_cache
from .midas.registry import DEFAULT_MODEL, DEVICES, PRECISIONS, get_spec, licence_notice

StageProgress = Callable[[float, str], None]

# Fractions of the whole run at which each stage starts (downloading fills 0 .. LOADING).
LOADING, RUNNING, DONE = 0.4, 0.5, 1.0


def estimate_depth(
    rgb: np.ndarray,
    model_type: str = DEFAULT_MODEL,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "fp32",
    progress: StageProgress | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 depth of kind ``get_spec(model_type).depth_kind``:
    relative inverse depth (larger = nearer) or, for the metric types, metres.

    ``weights``: the model's official weights file; None uses the cache, downloading if allowed
    (``allow_download=False`` is Blender with online access off). ``progress(fraction,
    message)`` reports the stages; ``cancel()`` is checked between stages and during the
    download (raises CancelledError). Running out of GPU memory retries on the CPU.
    """
    report = progress or (lambda fraction, message: None)
    spec = get_spec(model_type)
    # Fail on a wrong argument now, not after a download of hundreds of megabytes.
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8):
        shape = getattr(rgb, "shape", None)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {type(rgb).__name__} {shape} "
                         f"{getattr(rgb, 'dtype', '')}".rstrip())
    from .midas.transforms import check_input_size

    check_input_size(rgb.shape[1], rgb.shape[0], spec)

    def check_cancel():
        if cancel is not None and cancel():
            raise CancelledError("depth estimation cancelled")

    check_cancel()
    if weights is None:
        def on_bytes(done: int, total: int | None):
            megabytes = f"{done / 1e6:.1f} / {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            report(LOADING * min(done / total, 1.0) if total else 0.0, f"Downloading {spec.filename}: {megabytes}")

        report(0.0, f"Looking for the {spec.label} weights")
        notice = licence_notice(spec)
        if notice is not None and weights_cache.cached_weights(model_type, weights_dir) is None:
            report(0.0, f"Note: {notice}")  # before the download starts
        checkpoint = weights_cache.ensure_weights(
            model_type, weights_dir, progress=on_bytes, cancel=cancel, allow_download=allow_download
        )
    else:
        checkpoint = Path(weights).expanduser()
        if not checkpoint.is_file():
            raise WeightsUnavailableError(
                f"weights file not found: {checkpoint}; pass the official weights file of {model_type}"
            )
    check_cancel()

    used_device = device  # what ran out of memory, if anything does

    def load_and_run(on_device: str) -> np.ndarray:
        nonlocal used_device
        used_device = on_device
        report(LOADING, f"Loading {spec.label} ({on_device})")
        model = midas.load_model(model_type, checkpoint=checkpoint, device=on_device, precision=precision)
        used_device = str(model.device)
        check_cancel()
        report(RUNNING, f"Running {spec.label} on {model.device}")
        return model.predict(rgb)

    depth = None
    try:
        depth = load_and_run(device)
    except (RuntimeError, MemoryError) as exc:
        if not _is_out_of_memory(exc):
            raise
        if used_device.startswith("cpu"):
            raise DepthAddonError(
                f"not enough memory to run {spec.label} ({model_type}) on the CPU; choose a smaller model "
                f"(e.g. {DEFAULT_MODEL}) or close other programs"
            ) from exc
    if depth is None:  # outside the except block, so the traceback no longer pins GPU tensors
        _release_accelerator_memory()
        report(LOADING, f"Out of {used_device} memory; retrying on the CPU (slower)")
        check_cancel()
        depth = load_and_run("cpu")
    report(DONE, "Depth done")
    return depth


def _is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, MPS's 'MPS backend out of memory' and the CPU allocator's
    'DefaultCPUAllocator: not enough memory' are RuntimeErrors; Python's own is MemoryError."""
    text = str(exc).lower()
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "out of memory" in text or "not enough memory" in text)


def _release_accelerator_memory() -> None:
    torch = sys.modules.get("torch")  # loaded by load_model if anything ran out of GPU memory
    if torch is None:
        return
    from .midas.model import clear_cache

    clear_cache()  # the in-memory model cache still holds the network's GPU copy
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()
