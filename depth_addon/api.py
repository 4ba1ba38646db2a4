"""Public Python API (imports bpy): one photo -> textured mesh or coloured point cloud + camera.

    import depth_addon.api as da
    result = da.image_to_object("photo.jpg")                      # runs the default MiDaS model
    result = da.image_to_object("photo.jpg", depth="d.exr")       # metric depth file, no network
    da.remesh(result.object, resolution=1024, tear_threshold=0.1) # rebuild from the stored depth

The same calls serve the UI operator, ``python -m depth_addon mesh`` and ``blender -b``
scripts. Settings are ``depth_addon.settings.BuildSettings`` fields, given as a
``settings`` object and/or keyword overrides.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from .blender.build import build_objects, remesh_object, set_point_size
from .errors import CancelledError, DepthAddonError, ImageReadError
from .geometry.depth import DEPTH_KINDS
from .midas.registry import DEFAULT_MODEL, get_spec
from .settings import BuildSettings

__all__ = ["DepthImportResult", "build_from_depth", "build_from_pixels", "image_to_object", "remesh",
           "set_point_size"]


@dataclass
class DepthImportResult:
    """What an import made: ``object`` (mesh or point cloud), its ``camera`` (or None),
    the photo ``image`` and the float ``depth_image`` kept for ``remesh``."""

    object: bpy.types.Object
    camera: bpy.types.Object | None
    image: bpy.types.Image
    depth_image: bpy.types.Image


def image_to_object(image, *, depth=None, depth_kind=None, model=DEFAULT_MODEL, weights=None,
                    device="auto", settings=None, name=None, collection=None,
                    progress: Callable[[float, str], None] | None = None,
                    cancel: Callable[[], bool] | None = None, **setting_overrides) -> DepthImportResult:
    """Make a mesh or point-cloud object (and camera) from a photo.

    image: photo file path or ``bpy.types.Image``.
    depth: None runs the depth network (``model``, ``weights``, ``device``), whose table row says
    what it gives: inverse depth (MiDaS, Depth Anything V2) or metres (the metric types); an
    (H, W) array; or a depth file path. ``depth_kind`` ("inverse", "metric", "relative") says
    what an array or file holds; default: inverse for arrays (unless ``settings`` say
    otherwise); for a file, what it records (files written by ``depth`` do), else metric
    for .npy/.exr/.tif files and relative for other pictures.
    progress(fraction, message), cancel() -> bool: see ``depth_addon.pipeline.estimate_depth``.
    Raises a ``DepthAddonError`` subclass for anything the user can fix.
    """
    _check_arguments(settings=settings, collection=collection, name=name, depth=depth, depth_kind=depth_kind)
    settings = (settings or BuildSettings()).with_changes(**setting_overrides)
    photo_path, rgb = _photo_pixels(image)
    if depth is None:
        from .pipeline import estimate_depth

        depth_map = estimate_depth(rgb, model_type=model, weights=weights, device=device,
                                   progress=_scaled(progress, 0.0, 0.9), cancel=cancel)
        depth_kind = get_spec(model).depth_kind
    elif isinstance(depth, (str, os.PathLike)):
        from .imageio import depth_file_kind, read_depth

        depth_map = read_depth(depth)
        depth_kind = depth_kind or depth_file_kind(depth)[0]
    else:
        depth_map = np.asarray(depth, dtype=np.float32)
    if depth_kind is not None:
        settings = settings.with_changes(depth_kind=depth_kind)
    if cancel is not None and cancel():
        raise CancelledError("cancelled before building the geometry")
    if progress is not None:
        progress(0.9, "building geometry")
    result = _build(image, photo_path, rgb, depth_map, settings, name, collection, None)
    if progress is not None:
        progress(1.0, "done")
    return result


def build_from_depth(image, depth, settings, name=None, collection=None, fov_deg=None) -> DepthImportResult:
    """Main-thread part of an import: depth (array of kind ``settings.depth_kind``, or a depth file) -> objects.

    fov_deg: horizontal FOV; None = ``settings.fov_deg``, else the photo's EXIF, else the default.
    """
    _check_arguments(settings=settings, collection=collection, name=name, depth=depth, fov_deg=fov_deg)
    settings = settings or BuildSettings()
    if isinstance(depth, (str, os.PathLike)):
        from .imageio import read_depth

        depth = read_depth(depth)
    photo_path, rgb = _photo_pixels(image)
    return _build(image, photo_path, rgb, np.asarray(depth, dtype=np.float32), settings, name, collection, fov_deg)


def build_from_pixels(photo_path, rgb, depth, settings, name=None, collection=None, fov_deg=None
                      ) -> DepthImportResult:
    """Like ``build_from_depth`` for a photo file already read as (H, W, 3) uint8 ``rgb`` (no second read)."""
    _check_arguments(settings=settings, collection=collection, name=name, depth=depth, fov_deg=fov_deg)
    photo_path = Path(photo_path)
    return _build(photo_path, photo_path, rgb, np.asarray(depth, dtype=np.float32), settings, name, collection, fov_deg)


def remesh(obj, settings=None, **setting_overrides) -> None:
    """Rebuild ``obj``'s geometry from its stored depth with changed settings (no network).

    settings: replaces the stored settings (default: those ``obj`` was built with);
    overrides change single fields, e.g. ``remesh(obj, resolution=256, tear=False)``.
    """
    remesh_object(obj, settings, **setting_overrides)


def _check_arguments(*, settings, collection, name, depth, depth_kind=None, fov_deg=None) -> None:
    """Refuse arguments of the wrong kind at the door, naming them, before any datablock exists."""
    if settings is not None and not isinstance(settings, BuildSettings):
        raise TypeError(f"settings must be a depth_addon.settings.BuildSettings, not {type(settings).__name__}; "
                        "pass single fields as keyword arguments, e.g. resolution=256")
    if collection is not None and not isinstance(collection, bpy.types.Collection):
        hint = f" (e.g. bpy.data.collections[{collection!r}])" if isinstance(collection, str) else ""
        raise TypeError(f"collection must be a bpy.types.Collection{hint}, not {type(collection).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string, not {type(name).__name__}")
    if depth_kind is not None and depth_kind not in DEPTH_KINDS:
        raise DepthAddonError(f"depth_kind must be one of {', '.join(DEPTH_KINDS)} (got {depth_kind!r})")
    if fov_deg is not None:
        BuildSettings(fov_deg=fov_deg)  # the same range and finiteness check as the setting
    if depth is None or isinstance(depth, (str, os.PathLike)):
        return
    if isinstance(depth, bpy.types.Image):
        raise TypeError("depth must be an (H, W) array or a depth file path, not a bpy.types.Image; "
                        "pass its pixels or the file it came from")
    try:
        values = np.asarray(depth)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"depth must be an (H, W) array of numbers or a file path, not {type(depth).__name__}") from exc
    if values.dtype.kind not in "iuf":
        raise DepthAddonError(f"depth must hold numbers, not {values.dtype} values")
    if values.ndim != 2 or values.size == 0:
        raise DepthAddonError(f"depth must be an (H, W) array (height x width), not an array of shape {values.shape}")


def _build(image, photo_path, rgb, depth, settings, name, collection, fov_deg) -> DepthImportResult:
    from .geometry import resolve_fov

    if fov_deg is None:
        exif = None
        source_file = photo_path or _image_file(image)
        if settings.fov_deg is None and source_file is not None:
            from .imageio import exif_horizontal_fov  # None without Pillow: the default field of view

            exif = exif_horizontal_fov(source_file)
        fov_deg = resolve_fov(settings, exif)
    if name is None:
        name = photo_path.stem if photo_path is not None else Path(image.name).stem or image.name
    source = image if isinstance(image, bpy.types.Image) else photo_path.resolve()
    built = build_objects(name, source, rgb, depth, settings, fov_deg, collection)
    return DepthImportResult(built.object, built.camera, built.image, built.depth_image)


def _photo_pixels(image) -> tuple[Path | None, np.ndarray]:
    """(file path or None, (H, W, 3) uint8 pixels) for a photo path or a Blender image."""
    if isinstance(image, bpy.types.Image):
        from .blender.datablocks import image_rgb

        return None, image_rgb(image)
    if isinstance(image, (str, os.PathLike)):
        from .imageio import read_image

        path = Path(image).resolve()
        return path, read_image(path)
    raise ImageReadError(f"image must be a file path or a bpy.types.Image, not {type(image).__name__}")


def _image_file(image) -> Path | None:
    """The file behind a Blender image, if it has one on disk (for its EXIF focal length)."""
    if not isinstance(image, bpy.types.Image) or image.source != "FILE" or not image.filepath:
        return None
    path = Path(bpy.path.abspath(image.filepath, library=image.library))
    return path if path.is_file() else None


def _scaled(progress, start: float, stop: float):
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (stop - start) * fraction, message)
