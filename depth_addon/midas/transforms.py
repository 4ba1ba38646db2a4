"""The official MiDaS input transform (``midas/transforms.py`` + ``run.py``), numpy + OpenCV only.

Depth Anything V2's ``infer_image`` uses the same transform (its ``util/transform.py`` is
MiDaS'), with ``lower_bound`` resizing to multiples of 14 and ImageNet normalisation.

``run.py`` reads the photo as float64 RGB in [0, 1], then applies ``Resize`` (keep aspect
ratio, sides a multiple of 32, rule ``minimal`` / ``upper_bound`` / ``lower_bound``, cv2
INTER_CUBIC on the float64 image), ``NormalizeImage`` ((x - mean) / std in float64) and
``PrepareForNet`` (CHW, float32). Every setting comes from the model's ``ModelSpec`` row.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import ModelSpec


def check_rgb(rgb) -> None:
    """ValueError naming the problem unless ``rgb`` is an (H, W, 3) uint8 RGB image (the one photo check)."""
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"expected the image as a numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 3) RGB image, got an array of shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image (0..255), got dtype {rgb.dtype}")


def _constrain_to_multiple_of(x: float, multiple: int, min_val: int = 0, max_val: int | None = None) -> int:
    # np.round (half to even), like the official code
    y = int(np.round(x / multiple) * multiple)
    if max_val is not None and y > max_val:
        y = int(math.floor(x / multiple) * multiple)
    if y < min_val:
        y = int(math.ceil(x / multiple) * multiple)
    # The official code would pass 0 to cv2.resize for extremely thin photos and crash;
    # one multiple is the smallest valid side.
    return max(y, multiple)


def network_input_size(width: int, height: int, spec: ModelSpec) -> tuple[int, int]:
    """The ``(width, height)`` the network sees for a ``width`` x ``height`` photo."""
    scale_h = spec.net_h / height
    scale_w = spec.net_w / width
    method = spec.resize_method
    if spec.keep_aspect_ratio:
        if method == "lower_bound":
            fit_width = scale_w > scale_h
        elif method == "upper_bound":
            fit_width = scale_w < scale_h
        elif method == "minimal":
            fit_width = abs(1 - scale_w) < abs(1 - scale_h)
        else:
            raise ValueError(f"resize_method {method!r} not implemented")
        if fit_width:
            scale_h = scale_w
        else:
            scale_w = scale_h
    multiple = spec.ensure_multiple_of
    if method == "lower_bound":
        bounds_h, bounds_w = {"min_val": spec.net_h}, {"min_val": spec.net_w}
    elif method == "upper_bound":
        bounds_h, bounds_w = {"max_val": spec.net_h}, {"max_val": spec.net_w}
    elif method == "minimal":
        bounds_h = bounds_w = {}
    else:
        raise ValueError(f"resize_method {method!r} not implemented")
    new_h = _constrain_to_multiple_of(scale_h * height, multiple, **bounds_h)
    new_w = _constrain_to_multiple_of(scale_w * width, multiple, **bounds_w)
    return new_w, new_h


# Longest network-input side over the shortest we run. Resizing that keeps the short side (Depth
# Anything's lower_bound) turns a 1x300 strip into a 518x155400 input, tens of GB of attention:
# refused with a clear message instead. Photos (panoramas included) stay far below it.
MAX_INPUT_ASPECT = 16


def check_input_size(width: int, height: int, spec: ModelSpec) -> None:
    """ValueError naming the fix if a ``width`` x ``height`` photo would give an absurdly elongated network input."""
    if width < 1 or height < 1:
        return  # an empty image: the caller's image check names that problem
    net_w, net_h = network_input_size(width, height, spec)
    if max(net_w, net_h) > MAX_INPUT_ASPECT * min(net_w, net_h):
        raise ValueError(
            f"the {width}x{height} photo is too elongated for {spec.name} (network input {net_w}x{net_h}, "
            f"over {MAX_INPUT_ASPECT}:1); crop it to a less extreme aspect ratio"
        )


def prepare_input(rgb: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, h, w)`` float32 network input for ``spec``."""
    import cv2

    check_input_size(rgb.shape[1], rgb.shape[0], spec)
    image = rgb.astype(np.float64) / 255.0
    width, height = network_input_size(rgb.shape[1], rgb.shape[0], spec)
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    image = (image - np.asarray(spec.mean, dtype=np.float64)) / np.asarray(spec.std, dtype=np.float64)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None]).astype(np.float32)
