"""Depth + photo -> mesh or point-cloud object, material and camera; rebuild from the stored depth.

All datablocks made by one build are tracked and removed together if anything fails, so a
failed import leaves nothing half-built behind. The object records how it was made in custom
properties (``PROP_*``): the stored depth image, the photo, the camera, the resolved FOV and
the settings as JSON, which is all ``remesh_object`` needs (no network).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import bpy
import numpy as np

from ..errors import DepthAddonError
from ..geometry import build_mesh, build_points, resize_depth, resolve_fov
from ..geometry.fill import extend_photo
from ..settings import BuildSettings
from . import datablocks
from .mesh import fill_mesh, new_mesh, new_point_cloud, scale_point_radius
from .points import add_points_modifier, fill_points_mesh, new_points_data

PROP_SETTINGS = "depth_addon_settings"   # JSON of the BuildSettings used
PROP_FOV = "depth_addon_fov_deg"         # horizontal FOV actually used (EXIF/default resolved)
PROP_DEPTH = "depth_addon_depth"         # Image: the depth map (float, image-sized)
PROP_PHOTO = "depth_addon_photo"         # Image: the photo
PROP_CAMERA = "depth_addon_camera"       # Object: the matching camera (absent without one)
PROP_FILL_IMAGE = "depth_addon_fill_image"  # Image: the extended photo the fill layer samples (with fill)


@dataclass
class Photo:
    """The photo a build textures with: ``rgb`` (H, W, 3) uint8 pixels, top row first, read once,
    and where they came from: ``image``, an existing Image (used as is), and/or ``path``, the
    file (its EXIF focal length; without an ``image`` the new Image references it)."""

    rgb: np.ndarray
    path: Path | None = None
    image: bpy.types.Image | None = None
    name: str = "Photo"

    @classmethod
    def from_file(cls, path, rgb: np.ndarray | None = None) -> Photo:
        """A photo file; ``rgb``: its pixels when they were read already (no second decode)."""
        path = Path(path).resolve()
        if rgb is None:
            from ..imageio import read_image

            rgb = read_image(path)
        return cls(rgb, path=path, name=path.stem)

    @classmethod
    def from_image(cls, image: bpy.types.Image, rgb: np.ndarray | None = None) -> Photo:
        """An Image datablock; ``rgb``: its pixels when they were copied already."""
        return cls(datablocks.image_rgb(image) if rgb is None else rgb, path=_image_file(image), image=image,
                   name=Path(image.name).stem or image.name)

    @classmethod
    def from_pixels(cls, name: str, rgb: np.ndarray) -> Photo:
        """Pixels alone: the build packs them into a new Image."""
        return cls(rgb, name=name)

    @cached_property
    def exif(self):
        """The file's ``imageio.PhotoExif`` (field of view, orientation), read once; empty without a file."""
        from ..imageio import PhotoExif, read_exif

        return read_exif(self.path) if self.path is not None else PhotoExif()

    def datablock(self) -> bpy.types.Image:
        if self.image is not None:
            return self.image
        if self.path is not None:
            # A reused photo predates the build: kept on failure.
            return datablocks.load_photo(self.path, self.rgb, self.exif.orientation)
        return datablocks.image_from_pixels(self.name, self.rgb)


@dataclass
class DepthImportResult:
    """What an import made: ``object`` (mesh or point cloud), its ``camera`` (or None), the photo
    ``image``, the float ``depth_image`` kept for ``remesh``, and the horizontal field of view
    ``fov_deg`` with where it came from, ``fov_source``: "given", "settings", "exif" or "default"."""

    object: bpy.types.Object
    camera: bpy.types.Object | None
    image: bpy.types.Image
    depth_image: bpy.types.Image
    fov_deg: float
    fov_source: str


def _image_file(image: bpy.types.Image) -> Path | None:
    """The file behind a Blender image, if it has one on disk (for its EXIF focal length)."""
    if image.source != "FILE" or not image.filepath:
        return None
    path = Path(bpy.path.abspath(image.filepath, library=image.library))
    return path if path.is_file() else None


def _field_of_view(photo: Photo, settings: BuildSettings, fov_deg: float | None) -> tuple[float, str]:
    """The horizontal FOV a build uses and where it comes from (given, settings, else the photo's cached EXIF)."""
    if fov_deg is not None:
        return resolve_fov(settings.with_changes(fov_deg=fov_deg)), "given"
    if settings.fov_deg is not None:
        return resolve_fov(settings), "settings"
    exif = photo.exif.fov_deg
    return resolve_fov(settings, exif), "exif" if exif is not None else "default"


class _Created:
    """The datablocks a build makes, found by what is new since it started; ``remove_all`` undoes them.

    Comparing against a snapshot (instead of recording each datablock as it is made) also
    catches what a helper made before it failed, e.g. the temporary mesh of a point-cloud
    conversion or a node tree of a half-built material.
    """

    KINDS = ("objects", "meshes", "pointclouds", "materials", "images", "cameras", "node_groups", "textures")

    def __init__(self):
        self._before = {d.as_pointer() for d in self._all()}

    def _all(self):
        for kind in self.KINDS:
            yield from getattr(bpy.data, kind, ())  # pointclouds: not in every build of Blender

    def remove_all(self) -> None:
        new = [d for d in self._all() if d.as_pointer() not in self._before]
        if new:
            bpy.data.batch_remove(new)


def build_objects(photo: Photo, depth: np.ndarray, settings: BuildSettings, *, fov_deg: float | None = None,
                  name: str | None = None, collection=None, point_cloud: bool | None = None) -> DepthImportResult:
    """Create the object (+ camera) for ``depth`` of kind ``settings.depth_kind``; nothing is selected.

    depth: (h, w) float32, resampled to the photo's (H, W). fov_deg: horizontal FOV; None =
    ``settings.fov_deg``, else the photo's EXIF, else the default. name: default the photo's.
    point_cloud: for point output, see ``points.new_points_data``.
    """
    name = name or photo.name
    fov_deg, fov_source = _field_of_view(photo, settings, fov_deg)
    created = _Created()
    try:
        rgb = photo.rgb
        height, width = rgb.shape[:2]
        image = photo.datablock()
        if depth.shape != (height, width) and depth.shape == (width, height):
            raise DepthAddonError(
                f"the depth map is {depth.shape[1]}x{depth.shape[0]} pixels but the photo is {width}x{height}: "
                "it looks rotated (made from the photo without its EXIF orientation?); rotate it to match the photo")
        depth = resize_depth(depth, height, width)
        depth_image = datablocks.store_depth(f"{name} depth", depth)
        data, material, arrays = _new_geometry(name, image, rgb, depth, settings, fov_deg, point_cloud)
        model = arrays.camera
        data.materials.append(material)
        obj = bpy.data.objects.new(name, data)
        if settings.output == "mesh":
            _update_fill_texture(obj, rgb, arrays, settings.shader)
        if settings.output == "points" and obj.type == "MESH":  # Blender 4.2-4.4: points mesh + nodes
            add_points_modifier(obj, material)
        camera = None
        if settings.add_camera:
            camera = datablocks.new_camera(f"{name} Camera", model)
            obj[PROP_CAMERA] = camera
        obj[PROP_SETTINGS] = json.dumps(asdict(settings))
        obj[PROP_FOV] = float(fov_deg)
        obj[PROP_DEPTH] = depth_image
        obj[PROP_PHOTO] = image
        collection = collection or bpy.context.collection or bpy.context.scene.collection
        collection.objects.link(obj)
        scene = bpy.context.scene
        if camera is not None:
            collection.objects.link(camera)
            if scene.camera is None:
                scene.camera = camera
        # Not while the scene renders through another camera: its photo would lose its framing.
        if settings.set_render_resolution and scene.camera in (None, camera):
            datablocks.set_render_resolution(scene, width, height)
        return DepthImportResult(obj, camera, image, depth_image, fov_deg, fov_source)
    except BaseException:
        created.remove_all()
        raise


def remesh_object(obj: bpy.types.Object, settings: BuildSettings | None = None, **overrides) -> None:
    """Rebuild ``obj``'s geometry (and camera) from its stored depth; no network runs."""
    if PROP_DEPTH not in obj:
        raise DepthAddonError(f"object {obj.name!r} was not made by depth_addon (it has no stored depth); "
                              "import the photo again")
    if obj[PROP_DEPTH] is None:
        raise DepthAddonError(f"{obj.name!r} lost its stored depth image; import the photo again")
    if obj.mode != "OBJECT":  # the edit-mode copy would overwrite the new geometry on leaving
        raise DepthAddonError(f"{obj.name!r} is in {obj.mode.replace('_', ' ').title()} Mode; "
                              "switch to Object Mode to re-mesh it")
    settings = (settings or stored_settings(obj)).with_changes(**overrides)
    fov = resolve_fov(settings, obj.get(PROP_FOV) or None)
    depth = datablocks.load_depth(obj[PROP_DEPTH])
    photo = obj.get(PROP_PHOTO)
    points = is_point_object(obj)
    if obj.type not in ("MESH", "POINTCLOUD"):
        raise DepthAddonError(f"{obj.name!r} is a {obj.type.lower()}, not a depth_addon mesh or point cloud")
    if not points:
        if settings.output != "mesh":
            raise DepthAddonError(f"{obj.name!r} is a mesh; to get points, import the photo again with output='points'")
        arrays = build_mesh(depth, settings, fov_deg=fov)
        if arrays.fill is not None and photo is None:
            raise DepthAddonError(f"{obj.name!r} lost its photo image, which the fill needs; "
                                  "import the photo again or re-mesh with fill=False")
        fill_mesh(obj.data, arrays, settings.shade_smooth)
        if arrays.fill is not None:
            _update_fill_texture(obj, datablocks.image_rgb(photo), arrays, settings.shader)
    else:
        if settings.output != "points":
            raise DepthAddonError(f"{obj.name!r} is a point cloud; to get a mesh, import the photo again with output='mesh'")
        if photo is None:
            raise DepthAddonError(f"{obj.name!r} lost its photo image; import the photo again")
        arrays = build_points(datablocks.image_rgb(photo), depth, settings, fov_deg=fov)
        if obj.type == "MESH":  # the points mesh of Blenders without point-cloud objects
            fill_points_mesh(obj.data, arrays)
            add_points_modifier(obj, obj.data.materials[0] if obj.data.materials else None)
        else:
            _replace_point_cloud(obj, arrays)
    model = arrays.camera
    obj[PROP_SETTINGS] = json.dumps(asdict(settings))
    obj[PROP_FOV] = float(fov)
    camera = obj.get(PROP_CAMERA)
    if camera is not None and settings.add_camera:
        datablocks.configure_camera(camera, model, obj.matrix_world)


def _replace_point_cloud(obj: bpy.types.Object, arrays) -> None:
    old = obj.data
    cloud = new_point_cloud(old.name, arrays)
    for material in old.materials:
        cloud.materials.append(material)
    name = old.name
    old.user_remap(cloud)  # linked duplicates too, as with a shared mesh (removing `old` would delete them)
    bpy.data.pointclouds.remove(old)
    cloud.name = name


def is_point_object(obj: bpy.types.Object) -> bool:
    """Whether ``obj`` is depth_addon point output: a PointCloud object, or (Blender 4.2-4.4)
    a points mesh with the Depth Addon Points modifier, recorded as ``output == "points"``."""
    if obj.type == "POINTCLOUD":
        return True
    return obj.type == "MESH" and PROP_SETTINGS in obj and stored_settings(obj).output == "points"


def stored_settings(obj: bpy.types.Object) -> BuildSettings:
    """The settings ``obj`` was last built with."""
    values = json.loads(obj.get(PROP_SETTINGS, "{}"))
    known = BuildSettings.__dataclass_fields__
    return BuildSettings(**{k: v for k, v in values.items() if k in known})


def set_point_size(obj: bpy.types.Object, point_size: float) -> None:
    """Change a point-cloud object's ``point_size`` without rebuilding it (radii scale, ratios stay)."""
    if not is_point_object(obj):
        raise DepthAddonError(f"{obj.name!r} is not a point cloud; point size applies to point clouds")
    settings = stored_settings(obj)
    changed = settings.with_changes(point_size=point_size)  # validates the new size
    scale_point_radius(obj.data, point_size / settings.point_size)
    obj[PROP_SETTINGS] = json.dumps(asdict(changed))


def _new_geometry(name, photo, rgb, depth, settings, fov_deg, point_cloud):
    if settings.output == "points":
        arrays = build_points(rgb, depth, settings, fov_deg=fov_deg)
        data = new_points_data(name, arrays, point_cloud)
        material = datablocks.point_material(name, settings.shader)
    elif settings.output == "mesh":
        arrays = build_mesh(depth, settings, fov_deg=fov_deg)
        data = new_mesh(name, arrays, settings.shade_smooth)
        material = datablocks.photo_material(name, photo, settings.shader)
    else:
        raise ValueError(f"unknown output {settings.output!r}; valid: mesh, points")
    return data, material, arrays


def _update_fill_texture(obj: bpy.types.Object, rgb: np.ndarray, arrays, shader: str) -> None:
    """Give the fill layer (material slot 2) the extended photo of ``arrays.fill``: a new packed image,
    in a material made on first use; a previous extended photo nothing else uses is removed."""
    if arrays.fill is None:
        return
    old = obj.get(PROP_FILL_IMAGE)
    image = datablocks.packed_png_image(f"{obj.name} filled", extend_photo(rgb, arrays.fill))
    materials = obj.data.materials
    if len(materials) < 2:
        while len(materials) < 1:
            materials.append(None)
        materials.append(datablocks.photo_material(f"{obj.name} filled", image, shader))
    elif materials[1] is not None and materials[1].node_tree is not None:
        for node in materials[1].node_tree.nodes:
            if node.type == "TEX_IMAGE" and node.image == old:
                node.image = image
    obj[PROP_FILL_IMAGE] = image
    if old is not None and old.users == 0:
        bpy.data.images.remove(old)


def select_only(objects, view_layer=None) -> None:
    """Select just ``objects`` in ``view_layer`` (default: the context's) and make the last of them active."""
    view_layer = view_layer or bpy.context.view_layer
    if view_layer is None:
        return
    # Not `obj.name in view_layer.objects`: the view layer syncs lazily, so right after linking
    # (or removing) objects its lists can be stale, even holding None for removed objects; and
    # deselecting resyncs it, so the loop runs over a copy.
    for other in list(view_layer.objects.selected):
        if other is not None:
            other.select_set(False)
    active = None
    for obj in objects:
        try:
            obj.select_set(True, view_layer=view_layer)
        except RuntimeError:  # the object is not in this view layer (e.g. an excluded collection)
            continue
        active = obj
    if active is not None:
        view_layer.objects.active = active
