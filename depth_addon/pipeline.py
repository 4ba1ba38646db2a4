"""Where a build's depth comes from, decided once (no bpy): the resolver the API, both CLI commands
and the UI's worker call.

    network = Network("dpt_hybrid_384", weights_dir=folder, allow_download=False)
    found = resolve_depth(rgb, network=network, progress=lambda f, msg: print(f, msg))
    found = resolve_depth(rgb, "photo_depth.exr")                 # a depth file: no network
    found.values, found.kind      # (h, w) float32 and "inverse" | "metric" | "relative"

``resolve_weights`` (from ``midas.weights``, which ``load_model`` uses too) is the one place that
decides which weights file a network loads (the given file, the cache, or a download);
``Network`` checks the model type, device and precision before anything is downloaded
(``load_model`` checks them again for its direct callers); ``check_rgb`` (``midas.transforms``)
is the one photo check.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import midas
from .errors import CancelledError, DepthAddonError
from .geometry.depth import DEPTH_KINDS
from .midas.registry import DEFAULT_MODEL, DEVICES, PRECISIONS, get_spec
from .midas.transforms import check_rgb
from .midas.weights import resolve_weights  # re-exported: part of the resolver's surface

StageProgress = Callable[[float, str], None]
ByteProgress = Callable[[int, "int | None"], None]
Cancel = Callable[[], bool]

# Fractions of the whole run at which each stage starts (downloading fills 0 .. LOADING).
LOADING, RUNNING, DONE = 0.4, 0.5, 1.0


@dataclass(frozen=True)
class Network:
    """Which depth network runs, with which weights, where and at what precision.

    weights: the model's official weights file; None takes it from the weights folder
    (``weights_dir``, None: the weights manager's default), downloading it if
    ``allow_download`` (False: Blender with online access off). Wrong names fail here, before
    any download.
    """

    model: str = DEFAULT_MODEL
    weights: str | os.PathLike | None = None
    weights_dir: str | os.PathLike | None = None
    allow_download: bool = True
    device: str = "auto"
    precision: str = "fp32"

    def __post_init__(self):
        get_spec(self.model)  # ValueError listing the valid types
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; choose one of: {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")

    @property
    def kind(self) -> str:
        """What the network gives: "inverse" (relative inverse depth) or "metric" (metres)."""
        return get_spec(self.model).depth_kind


@dataclass(frozen=True)
class DepthMap:
    """A resolved depth: ``values`` (h, w) float32 of ``kind``; ``source`` "network", "file" or
    "array"; ``model`` the network that made it (None otherwise); ``note`` says how a file's kind
    was guessed when the file records none."""

    values: np.ndarray
    kind: str
    source: str
    model: str | None = None
    note: str | None = None


def resolve_depth(
    rgb: np.ndarray,
    depth: str | os.PathLike | np.ndarray | None = None,
    *,
    depth_kind: str | None = None,
    depth_values: np.ndarray | None = None,
    network: Network | None = None,
    progress: StageProgress | None = None,
    cancel: Cancel | None = None,
    on_bytes: ByteProgress | None = None,
    on_note: Callable[[str], None] | None = None,
) -> DepthMap:
    """(H, W, 3) uint8 photo + (depth file | depth array | network) -> ``DepthMap``.

    depth: None runs ``network`` (default ``Network()``), whose table row gives the kind; a
    file path is read (its kind: ``depth_kind``, else what the file records, else the guess from
    its format, explained in ``note``); an (h, w) array is taken as ``depth_kind`` (default
    inverse). depth_values: the file's values when they were already read (by Blender).
    progress(fraction, message) reports the stages, cancel() is checked between them and during
    a download (raises CancelledError); on_bytes(done, total) replaces the weights messages
    (looking, downloading) and on_note(text) the "Note:" message (a licence to know of before
    downloading).
    Raises a ``DepthAddonError`` subclass for anything the user can fix.
    """
    check_rgb(rgb)
    if depth_kind is not None and depth_kind not in DEPTH_KINDS:
        raise DepthAddonError(f"depth_kind must be one of {', '.join(DEPTH_KINDS)} (got {depth_kind!r})")
    if depth is None:
        network = network or Network()
        values = _run_network(rgb, network, progress, cancel, on_bytes, on_note)
        return DepthMap(values, network.kind, "network", model=network.model)
    if isinstance(depth, (str, os.PathLike)):
        from .imageio import depth_file_kind, read_depth

        values = read_depth(depth) if depth_values is None else depth_values
        note = None
        if depth_kind is None:
            depth_kind, note = depth_file_kind(depth)
        return DepthMap(check_depth_array(values), depth_kind, "file", note=note)
    return DepthMap(check_depth_array(depth), depth_kind or "inverse", "array")


def estimate_depth(
    rgb: np.ndarray,
    model_type: str = DEFAULT_MODEL,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "fp32",
    progress: StageProgress | None = None,
    cancel: Cancel | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 depth of kind ``get_spec(model_type).depth_kind``:
    relative inverse depth (larger = nearer) or, for the metric types, metres.

    ``resolve_depth`` with a network and nothing else; the arguments are ``Network``'s.
    Running out of GPU memory retries on the CPU.
    """
    network = Network(model_type, weights, weights_dir, allow_download, device, precision)
    return resolve_depth(rgb, network=network, progress=progress, cancel=cancel).values


def download_weights(model_type: str, weights_dir: str | os.PathLike | None = None,
                     progress: Callable[[float | None, str], None] | None = None, cancel: Cancel | None = None) -> Path:
    """Fetch ``model_type``'s official weights into the weights folder (a cached file is returned as is)."""
    report = progress or (lambda fraction, message: None)

    def downloaded(done: int, total: int | None) -> None:
        if total:
            report(done / total, f"{model_type}: {done / 2**20:.0f}/{total / 2**20:.0f} MiB")
        else:
            report(None, f"{model_type}: {done / 2**20:.0f} MiB")

    report(0.0, f"{model_type}: connecting")
    return resolve_weights(model_type, weights_dir=weights_dir, on_bytes=downloaded, cancel=cancel)


def check_depth_array(depth) -> np.ndarray:
    """``depth`` as an (h, w) float32 array; a DepthAddonError (TypeError for non-arrays) naming the problem."""
    if isinstance(depth, np.ndarray) and depth.dtype == np.float32 and depth.ndim == 2 and depth.size:
        return depth
    try:
        values = np.asarray(depth)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"depth must be an (H, W) array of numbers or a file path, not {type(depth).__name__}") from exc
    if values.dtype.kind not in "iuf":
        raise DepthAddonError(f"depth must hold numbers, not {values.dtype} values")
    if values.ndim != 2 or values.size == 0:
        raise DepthAddonError(f"depth must be an (H, W) array (height x width), not an array of shape {values.shape}")
    return values.astype(np.float32, copy=False)


def _run_network(rgb, network: Network, progress, cancel, on_bytes, on_note) -> np.ndarray:
    report = progress or (lambda fraction, message: None)
    spec = get_spec(network.model)
    from .midas.transforms import check_input_size

    check_input_size(rgb.shape[1], rgb.shape[0], spec)  # fail now, not after a download of hundreds of MB

    def check_cancel():
        if cancel is not None and cancel():
            raise CancelledError("depth estimation cancelled")

    def downloaded(done: int, total: int | None):
        megabytes = f"{done / 1e6:.1f} / {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        report(LOADING * min(done / total, 1.0) if total else 0.0, f"Downloading {spec.filename}: {megabytes}")

    check_cancel()
    if network.weights is None and on_bytes is None:  # a caller drawing its own download bar says its own
        report(0.0, f"Looking for the {spec.label} weights")
    checkpoint = resolve_weights(
        network.model, network.weights, weights_dir=network.weights_dir, allow_download=network.allow_download,
        on_bytes=on_bytes or downloaded, on_note=on_note or (lambda text: report(0.0, f"Note: {text}")),
        cancel=cancel,
    )
    check_cancel()

    used_device = network.device  # what ran out of memory, if anything does

    def load_and_run(on_device: str) -> np.ndarray:
        nonlocal used_device
        used_device = on_device
        report(LOADING, f"Loading {spec.label} ({on_device})")
        model = midas.load_model(network.model, checkpoint=checkpoint, device=on_device, precision=network.precision)
        used_device = str(model.device)
        check_cancel()
        report(RUNNING, f"Running {spec.label} on {model.device}")
        return model.predict(rgb)

    depth = None
    try:
        depth = load_and_run(network.device)
    except (RuntimeError, MemoryError) as exc:
        if not _is_out_of_memory(exc):
            raise
        if used_device.startswith("cpu"):
            raise DepthAddonError(
                f"not enough memory to run {spec.label} ({network.model}) on the CPU; choose a smaller model "
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
