"""Render the README pictures: the sample photo as a depth mesh, seen through its own camera
and from the side, and a side view with the fill off and on (Blender's Cycles on the CPU, no
GPU or window needed).

    bash scripts/venv_run.sh scripts/render_readme_picture.py [--depth FILE] [-o docs/images/chelsea_depth_mesh.png]
        [--fill-output docs/images/fill_side_view.png]

Uses the synthetic sample depth by default (no MiDaS weights needed); pass --weights to run
MiDaS instead. Writes two PNGs, each with two views side by side.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def render(scene, camera, path: Path) -> None:
    import bpy

    scene.camera = camera
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def save(views, out: Path) -> None:
    """The views side by side with a white gap between them."""
    import numpy as np
    from PIL import Image

    gap = np.full((views[0].shape[0], 8, 3), 255, np.uint8)
    parts = [views[0]]
    for view in views[1:]:
        parts += [gap, view]
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(parts, axis=1)).save(out, optimize=True)
    print(f"wrote {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default=str(ROOT / "samples" / "chelsea.jpg"))
    parser.add_argument("--depth", default=str(ROOT / "samples" / "chelsea_depth.png"))
    parser.add_argument("--weights", help="an official MiDaS .pt: run the network instead of --depth")
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "images" / "chelsea_depth_mesh.png"))
    parser.add_argument("--fill-output", default=str(ROOT / "docs" / "images" / "fill_side_view.png"))
    parser.add_argument("--step", type=float, default=0.08,
                        help="fill picture: camera moved sideways by this fraction of the median distance")
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args(argv)

    import bpy
    import numpy as np
    from PIL import Image

    from depth_addon import api

    bpy.ops.wm.read_factory_settings(use_empty=True)
    depth = None if args.weights else args.depth
    result = api.image_to_object(args.photo, depth=depth, weights=args.weights, resolution=451, shader="shadeless")
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = args.samples
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"  # show the photo's colours unchanged
    world = bpy.data.worlds.new("README world")
    world.color = (0.18, 0.18, 0.2)
    scene.world = world

    # A second camera orbiting the object (which sits at the origin) around Z, twice as far away.
    side = result.camera.copy()
    side.data = result.camera.data.copy()
    scene.collection.objects.link(side)
    angle, distance = math.radians(40.0), 2.0
    x, y, z = (distance * c for c in result.camera.location)
    side.location = (x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle), z)
    side.rotation_euler.z += angle

    # The fill picture: a camera stepped sideways and turned back to the centre, the fill off and on.
    from mathutils import Vector

    stepped = result.camera.copy()
    stepped.data = result.camera.data.copy()
    scene.collection.objects.link(stepped)
    pivot = -result.camera.location[1]
    stepped.location = result.camera.location + Vector((args.step * pivot, 0.0, 0.0))
    stepped.rotation_euler = (-stepped.location).to_track_quat("-Z", "Y").to_euler()

    with tempfile.TemporaryDirectory() as tmp:
        def view(name, camera):
            path = Path(tmp) / f"{name}.png"
            render(scene, camera, path)
            return np.asarray(Image.open(path).convert("RGB"))

        views = [view("front", result.camera), view("side", side)]
        filled = view("stepped filled", stepped)
        api.remesh(result.object, fill=False)
        torn = view("stepped torn", stepped)
    save(views, Path(args.output))
    save([torn, filled], Path(args.fill_output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
