"""Benchmark: a 1920 x 1080 depth -> textured mesh and a 2 M-point cloud, against the numpy work alone
and a naive per-vertex bmesh loop, all measured in this one run.

    bash scripts/venv_run.sh scripts/bench_mesh.py [--repeat 3] [--bmesh-rows 1080]

Targets: mesh (numpy + Blender datablocks, UVs, material, camera, stored depth) <= 2.5x the
numpy arrays alone and >= 40x faster than the bmesh loop; the point cloud <= 0.3 s; the fill
(background layer behind the tears, rim, extended photo) <= 50% over the plain mesh, timed
alternating with it, for the numpy arrays alone and for the whole object (the best of each, and
the median of the alternating pairs' ratios, which a shared machine's load disturbs less).
The bmesh loop is the way an artist would script it (``bm.verts.new`` per vertex,
``bm.faces.new`` per quad, a UV per loop, ``bm.to_mesh``), given the same numpy positions;
``--bmesh-rows N`` times it on the first N image rows and scales linearly to the full image
(it is linear in the vertex count), because the full loop takes a minute or more.
Timings are the best of ``--repeat`` runs; on a shared machine, compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

WIDTH, HEIGHT = 1920, 1080


def synthetic_scene(width=WIDTH, height=HEIGHT):
    """(H, W, 3) uint8 photo and (H, W) float32 MiDaS-like inverse depth with smooth parts and steps."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    depth = 1.0 + 0.4 * np.sin(x / 150.0) * np.cos(y / 110.0) + 0.6 * (((x - 900) ** 2 + (y - 500) ** 2) < 300**2)
    rgb = np.stack([x / width * 255, y / height * 255, (depth - depth.min()) / np.ptp(depth) * 255], axis=-1)
    return rgb.astype(np.uint8), depth.astype(np.float32)


def best_of(repeat, fn, cleanup=None):
    """Best wall time of ``fn()`` over ``repeat`` runs; ``cleanup(result)`` runs untimed after each."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if cleanup is not None:
            cleanup(result)
    return min(times)


def bmesh_loop(positions, faces, uvs):
    """The naive way: one Python call per vertex, face and face corner."""
    import bmesh
    import bpy

    bm = bmesh.new()
    uv_layer = bm.loops.layers.uv.new("UVMap")
    verts = [bm.verts.new(co) for co in positions.tolist()]
    uv_list = uvs.tolist()
    for quad in faces.tolist():
        face = bm.faces.new([verts[i] for i in quad])
        for loop, i in zip(face.loops, quad, strict=True):
            loop[uv_layer].uv = uv_list[i]
    mesh = bpy.data.meshes.new("bmesh loop")
    bm.to_mesh(mesh)
    bm.free()
    bpy.data.meshes.remove(mesh)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bmesh-rows", type=int, default=HEIGHT, help="image rows for the bmesh loop (default: all)")
    args = parser.parse_args(argv)

    import bpy
    from PIL import Image

    from depth_addon import api
    from depth_addon.blender.build import PROP_FILL_IMAGE
    from depth_addon.blender.mesh import new_point_cloud
    from depth_addon.geometry import build_mesh, build_points
    from depth_addon.settings import BuildSettings

    bpy.ops.wm.read_factory_settings(use_empty=True)
    rgb, depth = synthetic_scene()
    photo = Path(tempfile.mkdtemp(prefix="bench_mesh_")) / "photo.png"
    Image.fromarray(rgb).save(photo)
    mesh_settings = BuildSettings(resolution=max(WIDTH, HEIGHT), set_render_resolution=True, fill=False)
    fill_settings = mesh_settings.with_changes(fill=True)
    point_settings = mesh_settings.with_changes(output="points")

    def numpy_mesh(settings=mesh_settings):
        arrays = build_mesh(depth, settings, fov_deg=55.0)
        return arrays, arrays.corner_uvs  # everything the Blender layer consumes

    def full(settings):
        return lambda: api.build_from_pixels(photo, rgb, depth, settings, fov_deg=55.0)

    def remove(result):
        data = result.object.data
        filled = result.object.get(PROP_FILL_IMAGE)  # the fill's extended photo
        bpy.data.batch_remove([result.object, result.camera, result.camera.data, data,
                               result.depth_image, *data.materials, *([filled] if filled else [])])

    arrays, _ = numpy_mesh()
    t_numpy = best_of(args.repeat, numpy_mesh)
    t_mesh = best_of(args.repeat, full(mesh_settings), remove)
    # the fill (background layer, rim, extended photo): plain and filled builds alternating
    fill_ratios = {}
    for name, plain, filled in (("numpy", numpy_mesh, lambda: numpy_mesh(fill_settings)),
                                ("object", full(mesh_settings), full(fill_settings))):
        cleanup = remove if name == "object" else None
        times = np.array([[best_of(1, plain, cleanup), best_of(1, filled, cleanup)] for _ in range(args.repeat)])
        fill_ratios[name] = (times[:, 0].min(), times[:, 1].min(), float(np.median(times[:, 1] / times[:, 0])))
    filled = build_mesh(depth, fill_settings, fov_deg=55.0)

    rows = min(args.bmesh_rows, HEIGHT)
    part = build_mesh(depth[:rows], mesh_settings.with_changes(stride=1), fov_deg=55.0)
    start = time.perf_counter()
    bmesh_loop(part.positions, part.faces, part.uvs)
    t_bmesh_part = time.perf_counter() - start
    t_bmesh = t_bmesh_part * len(arrays.positions) / len(part.positions)

    points = build_points(rgb, depth, point_settings, fov_deg=55.0)
    t_points_numpy = best_of(args.repeat, lambda: build_points(rgb, depth, point_settings, fov_deg=55.0))

    t_cloud = best_of(args.repeat, lambda: new_point_cloud("bench", points), bpy.data.pointclouds.remove)
    t_points = best_of(args.repeat, full(point_settings), remove)

    print(f"depth {WIDTH}x{HEIGHT}: mesh {len(arrays.positions):,} vertices, {len(arrays.faces):,} quads; "
          f"{len(points.positions):,} points (best of {args.repeat})")
    print(f"numpy arrays alone (mesh)              {t_numpy:8.3f} s")
    print(f"mesh object: numpy + datablocks, UVs,   {t_mesh:8.3f} s   = {t_mesh / t_numpy:5.2f}x numpy   (target <= 2.5x)")
    print("  material, camera, stored depth")
    print(f"fill (+{len(filled.positions) - len(arrays.positions):,} vertices: layer, rim; extended photo), "
          "alternating with the plain mesh                 (target <= +50%)")
    for name, label in (("numpy", "numpy arrays alone"), ("object", "mesh object       ")):
        t_plain, t_fill, median = fill_ratios[name]
        print(f"  {label} {t_fill:8.3f} s   = {t_fill / t_plain - 1:+6.1%} over the plain mesh ({t_plain:.3f} s); "
              f"median of {args.repeat} pairs {median - 1:+6.1%}")
    scaled = "" if rows == HEIGHT else f" (timed {t_bmesh_part:.2f} s on {rows} rows, scaled)"
    print(f"per-vertex bmesh loop                  {t_bmesh:8.3f} s{scaled}")
    print(f"  mesh object is {t_bmesh / t_mesh:6.1f}x faster than the bmesh loop   (target >= 40x)")
    print(f"numpy arrays alone (points)            {t_points_numpy:8.3f} s")
    print(f"PointCloud datablock from the arrays   {t_cloud:8.3f} s")
    print(f"point-cloud object, everything         {t_points:8.3f} s   (target <= 0.3 s: numpy + datablock "
          f"= {t_points_numpy + t_cloud:.3f} s)")


if __name__ == "__main__":
    main()
