"""Depth maps: resampling, normalisation and conversion to camera-axis distance (numpy only).

Depth kinds (see ``depth_addon.settings.BuildSettings``):

* ``"inverse"``  MiDaS / Depth Anything V2 output: relative inverse depth, larger = nearer, unknown scale and shift.
* ``"relative"`` a depth picture read as [0, 1], lighter = nearer (``invert`` flips it).
* ``"metric"``   distance along the camera axis, in scene units. Values that are not finite or
  not > 0 mark "no depth here" (those pixels get no vertex/point).

Distance mapping for inverse and relative depth: the map is normalised to a *nearness*
``t`` in [0, 1] by its own min/max (1 = nearest), then ``1/z`` is interpolated linearly
between ``1/far`` (t = 0) and ``1/near`` (t = 1)::

    1/z = 1/far + t * (1/near - 1/far)

For a true inverse depth ``d = a/z + b`` (MiDaS is one, up to the unknown scale ``a`` and
shift ``b``) this is exact: the map's nearest and farthest pixels land on ``near`` and
``far`` and everything between keeps its true proportions in 1/z.
"""

from __future__ import annotations

import numpy as np

DEPTH_KINDS = ("inverse", "relative", "metric")
# Depth files whose values are metric distances unless told otherwise; any other picture
# (8/16-bit PNG, JPEG, ...) is a relative depth picture, lighter = nearer.
METRIC_DEPTH_SUFFIXES = (".npy", ".exr", ".tif", ".tiff")


def guess_depth_kind(path) -> str:
    """Depth kind of a depth file when the user did not say: metric for float formats, else relative."""
    suffix = str(path).lower().rsplit(".", 1)[-1]
    return "metric" if f".{suffix}" in METRIC_DEPTH_SUFFIXES else "relative"


def resize_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample a depth map to ``(height, width)`` bilinearly on pixel centres.

    Used when a depth map's size differs from its photo (e.g. a depth file made at another
    resolution). Pixel centres map onto pixel centres (``align_corners=False``); edges clamp.
    A NaN (no depth) spreads to the output pixels that interpolate from it, so holes grow by
    at most one source pixel and never get invented values.

    depth: (h, w) float -> (height, width) float32
    """
    depth = np.asarray(depth, dtype=np.float32)
    h, w = depth.shape
    if (h, w) == (height, width):
        return depth
    ys = np.clip((np.arange(height, dtype=np.float64) + 0.5) * (h / height) - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width, dtype=np.float64) + 0.5) * (w / width) - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    fy = (ys - y0).astype(np.float32)[:, None]
    fx = (xs - x0).astype(np.float32)[None, :]
    top = depth[y0][:, x0] * (1 - fx) + depth[y0][:, x1] * fx
    bottom = depth[y1][:, x0] * (1 - fx) + depth[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def valid_mask(depth: np.ndarray, kind: str) -> np.ndarray:
    """Pixels that carry depth: finite everywhere, and > 0 for metric depth.

    depth: (H, W) -> (H, W) bool
    """
    ok = np.isfinite(depth)
    if kind == "metric":
        ok &= depth > 0
    return ok


def nearness(depth: np.ndarray, kind: str, invert: bool = False) -> np.ndarray:
    """Normalised nearness ``t`` in [0, 1], 1 = nearest pixel, NaN where there is no depth.

    inverse/relative: min/max normalisation of the values (``invert`` flips a relative
    picture that is darker = nearer). metric: linear in distance, ``(z_max - z)/(z_max - z_min)``.
    A constant map gives t = 0.5 everywhere.

    depth: (H, W) -> (H, W) float32
    """
    _check_kind(kind)
    depth = np.asarray(depth, dtype=np.float32)
    ok = valid_mask(depth, kind)
    values = np.where(ok, depth, np.nan)
    if not ok.any():
        return values
    lo = float(np.nanmin(values))
    hi = float(np.nanmax(values))
    if hi - lo <= 0:
        return np.where(ok, np.float32(0.5), np.float32(np.nan))
    t = (values - lo) / (hi - lo)
    if kind == "metric" or (kind == "relative" and invert):
        t = 1.0 - t
    return t.astype(np.float32)


def camera_distance(depth: np.ndarray, kind: str, near: float, far: float, invert: bool = False) -> np.ndarray:
    """Distance along the camera axis ``z`` (scene units), NaN where there is no depth.

    metric: the values themselves. inverse/relative: ``1/z = 1/far + t (1/near - 1/far)``
    with ``t = nearness(...)`` (module docstring).

    depth: (H, W) -> (H, W) float32
    """
    _check_kind(kind)
    if kind == "metric":
        depth = np.asarray(depth, dtype=np.float32)
        return np.where(valid_mask(depth, kind), depth, np.float32(np.nan))
    if not (0 < near < far):
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    t = nearness(depth, kind, invert)
    inv = np.float32(1.0 / far) + t * np.float32(1.0 / near - 1.0 / far)
    return (1.0 / inv).astype(np.float32)


def _check_kind(kind: str) -> None:
    if kind not in DEPTH_KINDS:
        raise ValueError(f"unknown depth kind {kind!r}; valid: {', '.join(DEPTH_KINDS)}")
