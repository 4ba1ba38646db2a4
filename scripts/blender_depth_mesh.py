"""Headless photo -> mesh inside Blender: the ``mesh`` command's arguments after ``--``.

    blender -b --python scripts/blender_depth_mesh.py -- samples/chelsea.jpg -o out/chelsea.blend -o out/chelsea.glb
    blender -b scene.blend --python scripts/blender_depth_mesh.py -- photo.jpg --depth d.exr -o out/scene_with_photo.blend

Without a .blend argument the scene starts empty; with one, the object is added to it.
The arguments and their parser are ``depth_addon.cli.mesh_cmd``'s (``--help`` lists them);
errors print one line and Blender exits with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# What the add-on's installer installed (outside the extension, one folder per Python version),
# appended like the add-on does, so Blender's own numpy keeps priority.
from depth_addon.ui import deps  # noqa: E402  (no bpy, no torch)

deps.add_site_packages(deps.dependencies_dir())
try:
    from depth_addon.cli import mesh_cmd
except ImportError as exc:  # a stock Blender's Python has numpy but not Pillow, OpenCV, torch or timm
    sys.exit(f"error: Blender's Python lacks {exc.name or exc}: install torch + timm with the extension's "
             f"installer (its preferences; they go to {deps.dependencies_dir()}), see docs/blender.md")

PROG = "blender -b --python scripts/blender_depth_mesh.py --"


def main(argv: list[str] | None = None) -> int:
    """Run the mesh command; ``argv`` defaults to what follows ``--`` on Blender's command line."""
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    return mesh_cmd.main(argv, prog=PROG)


if __name__ == "__main__":
    status = main()
    if status:
        sys.exit(status)
