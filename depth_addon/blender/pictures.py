"""Read photos and depth pictures with Blender's own image loading (when Pillow/OpenCV are missing).

A stock Blender has numpy but neither Pillow nor OpenCV, which ``depth_addon.imageio`` uses.
Importing an existing depth map needs no network, so it must not need them either: these
read the same files through ``bpy.data.images.load`` and remove the datablock again at once
(nothing stays in the file). Differences from ``imageio``: no EXIF orientation (Blender does
not apply it) and no EXIF field of view; ``.npy`` depth is read with numpy.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import bpy
import numpy as np

from .. import imageio
from ..errors import ImageReadError


@contextlib.contextmanager
def _loaded(path: Path):
    """A temporary Image datablock of ``path``, removed again on leaving."""
    if not path.is_file():
        raise ImageReadError(f"{path} not found: check the path")
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError as exc:
        raise ImageReadError(f"{path} is not a picture Blender can read ({exc})") from exc
    try:
        if 0 in tuple(image.size):
            raise ImageReadError(f"{path} is damaged or not a picture Blender can decode")
        yield image
    finally:
        bpy.data.images.remove(image)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB (as ``imageio.read_image``, without EXIF orientation)."""
    from .datablocks import image_rgb

    with _loaded(Path(path)) as image:
        return image_rgb(image)


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """A depth file as (H, W) float32: 8/16-bit pictures in [0, 1], float files (EXR, HDR) as stored, .npy as saved."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return imageio.read_depth(path)  # numpy alone
    with _loaded(path) as image:
        image.colorspace_settings.is_data = True  # raw values, no colour transform
        image.reload()  # Blender < 5.0 keeps the float buffer it already converted from sRGB otherwise
        width, height = image.size
        rgba = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(rgba)
        values = rgba.reshape(height, width, 4)[::-1, :, 0]
        # Blender gives 8/16-bit pictures as [0, 1]; the file's record (range, colour map) applies as in imageio.
        return np.ascontiguousarray(imageio.depth_from_decoded(path, values, unit_scaled=not image.is_float
                                                               or path.suffix.lower() == ".png"))
