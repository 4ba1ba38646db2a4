"""Public Python API (imports bpy): one photo -> textured mesh or coloured point cloud + camera.

    import depth_addon.api as da
    result = da.image_to_object("photo.jpg")                      # runs the default MiDaS model
    result = da.image_to_object("photo.jpg", depth="d.exr")       # metric depth file, no network
    da.remesh(result.object, resolution=1024, tear_threshold=0.1) # rebuild from the stored depth

The same calls serve the UI operator, ``python -m depth_addon mesh`` and ``blender -b``
scripts: where the depth comes from is decided by ``depth_addon.pipeline.resolve_depth``, the
objects are made by ``depth_addon.blender.build.build_objects``. Settings are
``depth_addon.settings.BuildSettings`` fields, given as a ``settings`` object and/or keyword
overrides.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import bpy

from .blender.build import DepthImportResult, Photo, build_objects, remesh_object, select_only, set_point_size
from .errors import CancelledError, ImageReadError
from .midas.registry import DEFAULT_MODEL
from .pipeline import DepthMap, Network, resolve_depth
from .settings import BuildSettings

__all__ = ["DepthImportResult", "Photo", "build", "build_from_depth", "build_from_pixels", "image_to_object",
           "remesh", "set_point_size"]


def image_to_object(image, *, depth=None, depth_kind=None, model=DEFAULT_MODEL, weights=None,
                    device="auto", precision="fp32", weights_dir=None, allow_download=True,
                    settings=None, name=None, collection=None, point_cloud=None,
                    progress: Callable[[float, str], None] | None = None,
                    cancel: Callable[[], bool] | None = None, **setting_overrides) -> DepthImportResult:
    """Make a mesh or point-cloud object (and camera) from a photo, selected and active.

    image: photo file path or ``bpy.types.Image``.
    depth: None runs the depth network (``model``, ``weights``, ``device``, ``precision``; without
    ``weights`` the file comes from ``weights_dir``, default the weights cache, downloaded there
    unless ``allow_download=False``), whose table row says what it gives: inverse depth (MiDaS,
    Depth Anything V2) or metres (the metric types); an (H, W) array; or a depth file path.
    ``depth_kind`` ("inverse", "metric", "relative") says what an array or file holds; default:
    inverse for arrays (unless ``settings`` say otherwise); for a file, what it records (files
    written by ``depth`` do), else metric for .npy/.exr/.tif files and relative for other pictures.
    point_cloud: for ``output="points"``: None = a PointCloud where this Blender can make one,
    False = a points mesh with a geometry-nodes modifier (as on Blender 4.2-4.4).
    progress(fraction, message), cancel() -> bool: see ``depth_addon.pipeline.resolve_depth``.
    Raises a ``DepthAddonError`` subclass for anything the user can fix.
    """
    _check_arguments(settings=settings, collection=collection, name=name, depth=depth)
    settings = (settings or BuildSettings()).with_changes(**setting_overrides)
    network = Network(model, weights, weights_dir, allow_download, device, precision)
    photo = _photo(image)
    if depth is not None and not isinstance(depth, (str, os.PathLike)) and depth_kind is None:
        depth_kind = settings.depth_kind  # an array is what the settings say
    found = resolve_depth(photo.rgb, depth, depth_kind=depth_kind, network=network,
                          progress=_scaled(progress, 0.0, 0.9), cancel=cancel)
    if cancel is not None and cancel():
        raise CancelledError("cancelled before building the geometry")
    if progress is not None:
        progress(0.9, "building geometry")
    result = build(photo, found, settings, name=name, collection=collection, point_cloud=point_cloud)
    if progress is not None:
        progress(1.0, "done")
    return result


def build_from_depth(image, depth, settings, name=None, collection=None, fov_deg=None) -> DepthImportResult:
    """Main-thread part of an import: depth (array of kind ``settings.depth_kind``, or a depth file) -> objects.

    image: photo file path or ``bpy.types.Image``. fov_deg: horizontal FOV; None =
    ``settings.fov_deg``, else the photo's EXIF, else the default.
    """
    _check_arguments(settings=settings, collection=collection, name=name, depth=depth, fov_deg=fov_deg)
    settings = settings or BuildSettings()
    photo = _photo(image)
    found = resolve_depth(photo.rgb, depth, depth_kind=settings.depth_kind)
    return build(photo, found, settings, name=name, collection=collection, fov_deg=fov_deg)


def build_from_pixels(photo_path, rgb, depth, settings, name=None, collection=None, fov_deg=None
                      ) -> DepthImportResult:
    """Like ``build_from_depth`` for a photo file already read as (H, W, 3) uint8 ``rgb`` (no second read)."""
    _check_arguments(settings=settings, collection=collection, name=name, depth=depth, fov_deg=fov_deg)
    settings = settings or BuildSettings()
    photo = Photo.from_file(photo_path, rgb)
    found = resolve_depth(photo.rgb, depth, depth_kind=settings.depth_kind)
    return build(photo, found, settings, name=name, collection=collection, fov_deg=fov_deg)


def remesh(obj, settings=None, **setting_overrides) -> None:
    """Rebuild ``obj``'s geometry from its stored depth with changed settings (no network).

    settings: replaces the stored settings (default: those ``obj`` was built with);
    overrides change single fields, e.g. ``remesh(obj, resolution=256, tear=False)``.
    """
    remesh_object(obj, settings, **setting_overrides)


def build(photo: Photo, depth: DepthMap, settings: BuildSettings, *, name=None, collection=None, fov_deg=None,
          point_cloud=None, select: bool = True) -> DepthImportResult:
    """The one build entry every import ends in: a ``Photo`` and its resolved depth -> objects.

    The depth's kind replaces ``settings.depth_kind``; ``select``: make the new object the only
    selected and the active one (the operator selects all of a multi-photo import once, itself).
    """
    result = build_objects(photo, depth.values, settings.with_changes(depth_kind=depth.kind), name=name,
                           collection=collection, fov_deg=fov_deg, point_cloud=point_cloud)
    if select:
        select_only([result.object])
    return result


def _check_arguments(*, settings, collection, name, depth, fov_deg=None) -> None:
    """Refuse arguments of the wrong kind at the door, naming them, before any datablock exists
    (the depth itself is checked by ``resolve_depth``)."""
    if settings is not None and not isinstance(settings, BuildSettings):
        raise TypeError(f"settings must be a depth_addon.settings.BuildSettings, not {type(settings).__name__}; "
                        "pass single fields as keyword arguments, e.g. resolution=256")
    if collection is not None and not isinstance(collection, bpy.types.Collection):
        hint = f" (e.g. bpy.data.collections[{collection!r}])" if isinstance(collection, str) else ""
        raise TypeError(f"collection must be a bpy.types.Collection{hint}, not {type(collection).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string, not {type(name).__name__}")
    if fov_deg is not None:
        BuildSettings(fov_deg=fov_deg)  # the same range and finiteness check as the setting
    if isinstance(depth, bpy.types.Image):
        raise TypeError("depth must be an (H, W) array or a depth file path, not a bpy.types.Image; "
                        "pass its pixels or the file it came from")


def _photo(image) -> Photo:
    if isinstance(image, bpy.types.Image):
        return Photo.from_image(image)
    if isinstance(image, (str, os.PathLike)):
        return Photo.from_file(image)
    raise ImageReadError(f"image must be a file path or a bpy.types.Image, not {type(image).__name__}")


def _scaled(progress, start: float, stop: float):
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (stop - start) * fraction, message)
