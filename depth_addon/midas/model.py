"""Load official MiDaS / Depth Anything V2 checkpoints and run them: ``load_model`` and ``MidasModel.predict``.

``predict`` computes what the official code computes (MiDaS ``run.py`` with ``optimize=False``,
Depth Anything V2 ``infer_image`` given RGB): the official input transform, one forward pass
(``forward``), and the official resize of the raw output back to the photo's size
(``postprocess``). Architectures come from the model table (``ModelSpec.arch``: the module
``depth_addon.midas.nets.<arch.network>`` builds it); weights only ever come from a checkpoint
file, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ..errors import (
    CheckpointMismatchError,
    DependencyMissingError,
    ModelUnavailableError,
)
from .registry import DEVICES, PRECISIONS, ModelSpec, get_spec, matching_model_types
from .transforms import check_rgb, prepare_input

try:
    import torch
    import torch.nn.functional as F
except (ImportError, OSError) as _exc:  # OSError: installed, but its libraries fail to load (Windows DLLs)
    raise DependencyMissingError(
        f"PyTorch cannot be imported in this Python ({type(_exc).__name__}: {_exc}); install it, or repair "
        "a broken install, with 'python -m pip install --force-reinstall torch timm' (for Blender: into "
        "Blender's bundled Python)"
    ) from _exc

from .fastpath import keep_sensitive_in_fp32, network_input, optimize_network

DTYPES = dict(zip(PRECISIONS, (torch.float32, torch.float16, torch.bfloat16), strict=True))
_NETS_PACKAGE = __package__ + ".nets"
_SHOWN_KEYS = 5

# Loaded models, most recently used last. Two at most: switching between a couple of model
# types stays instant, while trying every type in one Blender session does not keep
# gigabytes of networks alive.
CACHE_SIZE = 2
_cache: OrderedDict[tuple, MidasModel] = OrderedDict()
_cache_lock = threading.Lock()


class MidasModel:
    """A loaded depth network (any type of the table) plus its input transform.

    Attributes: ``spec`` (the table row), ``device`` (``"cpu"``, ``"cuda"`` or ``"mps"``),
    ``precision`` (``"fp32"``, ``"fp16"``, ``"bf16"``), ``checkpoint`` (path), ``net``
    (the ``torch.nn.Module``, in eval mode), ``optimize`` (the net runs the optimised path of
    :mod:`.fastpath`; False: exactly the official computation). ``predict`` may be called from
    any thread; calls on one model run one at a time.
    """

    def __init__(self, spec: ModelSpec, net: torch.nn.Module, device: str, precision: str, checkpoint: Path,
                 optimize: bool = False):
        self.spec = spec
        self.net = net
        self.device = device
        self.precision = precision
        self.checkpoint = checkpoint
        self.optimize = optimize
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"MidasModel({self.spec.name!r}, device={self.device!r}, precision={self.precision!r}, "
                f"optimize={self.optimize!r})")

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB -> ``(1, 3, h, w)`` float32 network input (official transform)."""
        check_rgb(rgb)
        return prepare_input(rgb, self.spec)

    def forward(self, net_input: np.ndarray) -> torch.Tensor:
        """``(1, 3, h, w)`` float32 network input -> ``(1, h, w)`` float32 raw output on the device."""
        x = torch.from_numpy(np.ascontiguousarray(net_input, dtype=np.float32))
        x = network_input(self.net, x.to(device=self.device, dtype=DTYPES[self.precision]))
        with self._lock, torch.inference_mode():
            return self.net(x).float()

    def postprocess(self, raw: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """``(1, h, w)`` raw output -> ``(H, W)`` = ``size`` float32 depth, resized as the official code does."""
        if self.spec.output_resize == "bilinear_aligned":
            mode, align_corners = "bilinear", True    # Depth Anything V2 infer_image
        else:
            mode, align_corners = "bicubic", False    # MiDaS run.py
        with torch.inference_mode():
            depth = F.interpolate(raw.unsqueeze(1), size=tuple(size), mode=mode, align_corners=align_corners)
        return depth[0, 0].cpu().numpy().astype(np.float32, copy=False)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` float32 depth of kind ``spec.depth_kind``.

        ``"inverse"`` (MiDaS, Depth Anything V2 relative): relative inverse depth, larger = nearer;
        ``"metric"`` (Depth Anything V2 metric): distance in metres.
        """
        return self.postprocess(self.forward(self.prepare(rgb)), rgb.shape[:2])


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` if available, else ``"mps"``, else ``"cpu"``; explicit names are checked."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (device == "cuda" and not cuda) or (device == "mps" and not mps):
        raise ModelUnavailableError(
            f"device '{device}' is not available with this PyTorch ({torch.__version__}); "
            "choose 'auto' or 'cpu'"
        )
    return device


def load_model(model_type: str, checkpoint: str | os.PathLike | None = None, device: str = "auto",
               precision: str = "fp32", weights_dir: str | os.PathLike | None = None,
               progress: Callable[[int, int | None], None] | None = None, optimize: bool = True) -> MidasModel:
    """Build ``model_type`` and load its official checkpoint (cached in memory; no reload).

    ``optimize`` (default) runs the network on the optimised path (:mod:`.fastpath`: same
    output within 1e-5 relative); ``optimize=False`` runs exactly the official computation.

    ``checkpoint=None`` takes the file from the weights cache, downloading it if needed
    (``weights.ensure_weights``, with ``progress(done_bytes, total_or_None)``).
    Raises CheckpointMismatchError if the file is not a checkpoint or does not fit the
    model type, ModelUnavailableError if the type cannot run here, DependencyMissingError
    without timm, WeightsUnavailableError if the weights cannot be found or fetched.
    """
    spec = get_spec(model_type)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    device = resolve_device(device)
    from .weights import resolve_weights  # the one place that picks the file: given, cached or downloaded

    path = resolve_weights(model_type, checkpoint, weights_dir=weights_dir, on_bytes=progress).resolve()
    key = (spec.name, str(path), path.stat().st_mtime_ns, device, precision, bool(optimize))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
        # a file replaced on disk (other mtime) makes its old entries useless
        for stale in [k for k in _cache if k[1] == key[1] and k[2] != key[2]]:
            del _cache[stale]
        while len(_cache) >= CACHE_SIZE:
            _cache.popitem(last=False)  # free memory before building the next network
        net = build_network_for_loading(spec)
        state_dict = read_checkpoint(path)
        load_official_state_dict(net, state_dict, spec, path)
        del state_dict
        net.to(device=device, dtype=DTYPES[precision]).eval().requires_grad_(False)
        if optimize:
            optimize_network(net)
            if precision != "fp32":
                keep_sensitive_in_fp32(net)
        model = MidasModel(spec, net, device, precision, path, optimize=bool(optimize))
        _cache[key] = model
        return model


def clear_cache() -> None:
    """Forget all loaded models (their memory is freed once no caller holds them)."""
    with _cache_lock:
        _cache.clear()


def build_network(spec: ModelSpec) -> torch.nn.Module:
    """An untrained network for ``spec`` (random init, no download): ``nets.<arch.network>.build(spec)``."""
    from .nets._timm import import_timm

    import_timm()  # DependencyMissingError with install advice if timm is absent
    full_name = f"{_NETS_PACKAGE}.{spec.arch.network}"
    try:
        module = importlib.import_module(full_name)
    except ModuleNotFoundError as exc:
        if exc.name != full_name:
            raise
        raise ModelUnavailableError(
            f"{spec.label} ({spec.name}) is not available in this version of the add-on "
            f"(no network module '{spec.arch.network}'); choose another model type"
        ) from exc
    return module.build(spec)


def build_network_for_loading(spec: ModelSpec) -> torch.nn.Module:
    """The network for ``spec`` with storage allocated but not randomly initialised.

    Every parameter and persistent buffer is about to be overwritten by the strict checkpoint
    load, so the random init (seconds for the large models) is skipped: the network is built on
    the ``meta`` device and then given empty CPU storage. Buffers that checkpoints do not hold
    (non-persistent: attention masks, relative position indices) are then computed by their
    modules' ``init_non_persistent_buffers`` (timm's convention); a network with such a buffer
    in a module that cannot recompute it is built the ordinary way instead.
    """
    with torch.device("meta"), _SkipInitOnMeta():
        net = build_network(spec)
    persistent = set(net.state_dict())
    modules = dict(net.named_modules())
    owners = {modules[name.rpartition(".")[0]] for name, _ in net.named_buffers() if name not in persistent}
    if not all(hasattr(module, "init_non_persistent_buffers") for module in owners):
        return build_network(spec)
    # = net.to_empty(device="cpu"), whose empty_like of a meta tensor runs a Python reference
    # implementation that imports sympy (~1.7 s of a cold start); empty_strided goes to the CPU
    # allocator directly, with the same sizes, strides and dtypes.
    net._apply(lambda t: torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device="cpu"))
    for module in owners:
        module.init_non_persistent_buffers()
    return net


class _SkipInitOnMeta(torch.overrides.TorchFunctionMode):
    """Weight init (``torch.nn.init.*``, ``Tensor.normal_`` ...) of a meta tensor returns it untouched.

    On the meta device there are no values to fill, but ``normal_`` runs torch's traced
    reference implementation there, whose first use imports ``torch._dynamo`` (~1.3 s of a
    cold start). A torch function mode applies only inside its ``with`` block, in this thread.
    """

    _METHODS = frozenset({torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.fill_, torch.Tensor.zero_,
                          torch.Tensor.erfinv_, torch.Tensor.exponential_, torch.Tensor.log_normal_})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._METHODS or getattr(func, "__module__", None) == "torch.nn.init":
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The state_dict in an official checkpoint: a plain state_dict or ``{"model": ..., "optimizer": ...}``.

    Only tensors and plain containers are unpickled (``weights_only=True``): a file that would
    run code is refused, never executed.
    """
    try:
        # Read into ordinary memory, not memory-mapped: ``load_official_state_dict`` adopts these
        # tensors as the network's parameters, and a mapping would tie them to a file that may
        # be replaced while the model stays loaded. (A str path: torch < 2.3 wants one.)
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch says "Weights only load failed" for junk bytes too; only a pickle naming a
        # GLOBAL (a class or function to import and call) carries Python objects or code.
        if "weights only load failed" in str(exc).lower() and "GLOBAL" in str(exc):
            raise CheckpointMismatchError(
                f"{path.name} contains Python objects besides tensors, so it was not loaded: "
                "only plain PyTorch state_dict checkpoints are accepted (weights_only=True); "
                "use the official weights file of the model type (.pt for MiDaS, .pth for Depth Anything V2)"
            ) from exc
        raise _not_a_checkpoint(path, exc) from exc
    except MemoryError:
        raise
    except Exception as exc:  # the unpickler raises all kinds of errors (IndexError, KeyError...) on junk
        raise _not_a_checkpoint(path, exc) from exc
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointMismatchError(
            f"{path.name} is a PyTorch file but not a model state_dict (nor {{'model': state_dict}}); "
            "use the official weights file of the model type (.pt for MiDaS, .pth for Depth Anything V2)"
        )
    return dict(obj)


def _not_a_checkpoint(path: Path, exc: BaseException) -> CheckpointMismatchError:
    from .weights import describe_non_checkpoint

    arrived = describe_non_checkpoint(path)
    if arrived:
        return CheckpointMismatchError(f"{path.name} is {arrived}; delete it and download it again, or use the official weights file of the model type (.pt for MiDaS, .pth for Depth Anything V2)")
    text = str(exc).strip()
    reason = f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__
    return CheckpointMismatchError(
        f"{path.name} is a damaged PyTorch checkpoint (cut short or corrupted; {reason}); "
        "delete it and download it again"
    )


def load_official_state_dict(net: torch.nn.Module, state_dict: dict, spec: ModelSpec, path: Path) -> None:
    """Strictly load an official state_dict into ``net`` (after the net's documented key remapping).

    Any missing / unexpected key or shape mismatch raises CheckpointMismatchError naming the
    counts and first keys, and the model type the file fits if it is another one in the table.
    The checkpoint's tensors become the network's parameters and buffers (``assign=True``: no
    copy, so loading costs about the file read), converted only where dtype or layout differ.
    """
    from .nets._timm import remap_official_keys

    mapped = remap_official_keys(state_dict, net, spec)
    expected = net.state_dict()
    missing = [k for k in expected if k not in mapped]
    unexpected = [k for k in mapped if k not in expected]
    mismatched = [k for k in expected if k in mapped and not _shape_fits(mapped[k].shape, expected[k].shape)]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(_mismatch_message(spec, path, state_dict, expected, mapped,
                                                        missing, unexpected, mismatched))
    net.load_state_dict({k: _as_own(v, expected[k]) for k, v in mapped.items()}, strict=True, assign=True)


def _as_own(saved: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """``saved`` with ``own``'s shape (a 0-d buffer may be saved as (1,)), dtype and a contiguous layout."""
    if saved.shape != own.shape:
        saved = saved.reshape(own.shape)
    return saved.to(dtype=own.dtype).contiguous()


def _shape_fits(got: torch.Size, want: torch.Size) -> bool:
    # load_state_dict also accepts a 1-element 1-d tensor for a 0-d one (torch's backward
    # compatibility for old checkpoints, e.g. BatchNorm's num_batches_tracked stored as (1,)).
    return tuple(got) == tuple(want) or (len(want) == 0 and tuple(got) == (1,))


def _mismatch_message(spec, path, state_dict, expected, mapped, missing, unexpected, mismatched) -> str:
    others = [name for name in matching_model_types(state_dict) if name != spec.name]
    if others:
        advice = f"It looks like a '{others[0]}' checkpoint: choose that model type"
    else:
        advice = f"Use the official {spec.filename} for this model type"
    details = []
    if missing:
        details.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:_SHOWN_KEYS])})")
    if unexpected:
        details.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:_SHOWN_KEYS])})")
    if mismatched:
        shown = ", ".join(f"{k} {tuple(mapped[k].shape)} vs {tuple(expected[k].shape)}"
                          for k in mismatched[:_SHOWN_KEYS])
        details.append(f"{len(mismatched)} shape mismatches (checkpoint vs model: {shown})")
    return (f"{path.name} does not fit model type '{spec.name}' ({spec.label}). {advice}. "
            f"Details: {'; '.join(details)}")
