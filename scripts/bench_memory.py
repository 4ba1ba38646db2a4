"""Peak memory of a full-resolution mesh: ``python -m depth_addon mesh --stride 1`` on a 1920x1080 photo.

    bash scripts/venv_run.sh scripts/bench_memory.py [--width 1920 --height 1080]

Builds the synthetic 1920x1080 photo and depth of ``bench_mesh.py`` (a smooth surface with a
depth step, so the mesh tears), then runs the mesh command on them with ``--depth`` (no
network) and ``--stride 1`` (2 M vertices) in fresh processes: once writing a .blend, once a
.blend and a .glb. Prints each process's peak resident memory (``ru_maxrss``) next to the
peak of a process that only imports bpy and numpy (the floor). Target: peak <= 1.2 GB. (The
.glb is written by Blender's own glTF exporter, with shared accessors and, the material being
unlit, no normals: ``blender/export.py``. Its Python/numpy code still needs about as much memory
as the whole scene for this mesh; the .blend run is what the add-on's own code costs. Where the
exporter's memory goes: docs/speed.md.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def peak_rss_bytes(cmd: list[str]) -> int:
    """Peak resident memory of ``cmd`` in a fresh process (via a tiny wrapper that reports its child)."""
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", wrapper, *cmd], check=True, cwd=REPO, capture_output=True,
                          text=True)
    return int(done.stdout.strip().splitlines()[-1]) * 1024  # ru_maxrss is in KiB on Linux


def main(argv=None) -> int:
    import numpy as np
    from bench_mesh import synthetic_scene
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args(argv)

    rgb, depth = synthetic_scene(args.width, args.height)
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        tmp = Path(tmp)
        Image.fromarray(rgb).save(tmp / "photo.png")
        np.save(tmp / "depth.npy", depth)
        mesh = [sys.executable, "-m", "depth_addon", "mesh", str(tmp / "photo.png"), "--depth", str(tmp / "depth.npy"),
                "--depth-kind", "inverse", "--stride", "1", "-o", str(tmp / "out.blend")]
        floor = peak_rss_bytes([sys.executable, "-c", "import numpy, bpy"])
        peak_blend = peak_rss_bytes(mesh)
        peak_glb = peak_rss_bytes([*mesh, "-o", str(tmp / "out.glb")])
    gb = 1024**3
    print(f"mesh --stride 1 at {args.width}x{args.height}, peak resident memory (target <= 1.2 GB):")
    print(f"  -o out.blend                          {peak_blend / gb:5.2f} GB")
    print(f"  -o out.blend -o out.glb               {peak_glb / gb:5.2f} GB  (Blender's glTF exporter)")
    print(f"  a process importing only numpy + bpy  {floor / gb:5.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
