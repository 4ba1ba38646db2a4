"""``python -m depth_addon mesh IMAGE -o OUT.blend|.glb|.gltf|.obj|.ply ...``: photo -> mesh/points files.

The same arguments work through ``blender -b --python scripts/blender_depth_mesh.py -- ...``,
which calls ``main`` with this module's parser. The depth is computed (or read) before bpy
is touched, so a missing-weights error exits 2 without writing anything.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import typing
from pathlib import Path

from ..errors import DependencyMissingError, DepthAddonError, WeightsUnavailableError
from ..midas.registry import DEFAULT_MODEL, DEVICES, MODEL_TYPES, PRECISIONS
from ..pipeline import Network, resolve_depth
from ..settings import DEFAULT_FOV_DEG, BuildSettings, Shader
from .model_help import MODEL_HELP, PRECISION_HELP, models_epilog
from .reporting import print_note

EXPORT_SUFFIXES = (".blend", ".glb", ".gltf", ".obj", ".ply")
SHADERS = typing.get_args(Shader)
HELP = "photo -> textured mesh or coloured point cloud (+ camera), saved as .blend/.glb/.gltf/.obj/.ply"


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The mesh command's arguments (shared by the CLI sub-command and the blender -b script)."""
    defaults = BuildSettings()
    p.add_argument("image", type=Path, help="the photo")
    p.add_argument("-o", "--output", dest="outputs", type=Path, action="append", required=True,
                   metavar="OUT", help=f"output file, one of {' '.join(EXPORT_SUFFIXES)}; repeat for several")
    g = p.add_argument_group("depth (default: run a depth network, --model)")
    g.add_argument("--depth", type=Path, metavar="FILE",
                   help="use this depth file instead of running the network (.npy/.exr/.tif/.png ...)")
    g.add_argument("--depth-kind", choices=("metric", "inverse", "relative"),
                   help="what --depth holds (default: what the file records, as files written by the depth "
                   "command do; else metric for .npy/.exr/.tif, relative for pictures)")
    g.add_argument("--invert", action="store_true", help="relative depth picture is darker = nearer")
    g.add_argument("--model", default=DEFAULT_MODEL, choices=MODEL_TYPES, metavar="TYPE",
                   help=f"depth model type (default {DEFAULT_MODEL}), by family:{MODEL_HELP}")
    g.add_argument("--weights", type=Path, metavar="FILE",
                   help="the official weights file of --model (.pt / .pth; skips the download)")
    g.add_argument("--device", choices=DEVICES, default="auto", help="where to run the network (default auto)")
    g.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help=PRECISION_HELP)
    g = p.add_argument_group("geometry")
    g.add_argument("--mode", choices=("mesh", "points"), default=defaults.output,
                   help="mesh or point cloud (default: %(default)s)")
    g.add_argument("--projection", choices=("perspective", "relief"), default=defaults.projection,
                   help="perspective: unprojected through the photo's camera; relief: a displaced plane "
                   "(default: %(default)s)")
    g.add_argument("--fov", type=float, metavar="DEG",
                   help=f"horizontal field of view in degrees (default: the photo's EXIF focal length, "
                   f"else {DEFAULT_FOV_DEG:g})")
    g.add_argument("--near", type=float, default=defaults.near,
                   help="distance of the nearest inverse/relative depth (default: %(default)s)")
    g.add_argument("--far", type=float, default=defaults.far,
                   help="distance of the farthest inverse/relative depth (default: %(default)s)")
    g.add_argument("--relief-strength", type=float, default=defaults.relief_strength,
                   help="relief displacement as a fraction of the image width (default: %(default)s)")
    res = g.add_mutually_exclusive_group()
    res.add_argument("--resolution", type=int, default=defaults.resolution, metavar="N",
                     help=f"vertices along the longer side (default {defaults.resolution})")
    res.add_argument("--stride", type=int, metavar="S", help="a vertex every S pixels instead")
    tear = g.add_mutually_exclusive_group()
    tear.add_argument("--tear-threshold", type=float, default=defaults.tear_threshold, metavar="X",
                      help="relative depth jump that tears a face (default %(default)s)")
    tear.add_argument("--no-tear", action="store_true", help="keep (stretch) faces across depth jumps")
    g.add_argument("--no-fill", action="store_true",
                   help="no hidden background layer behind the tears and no rim to the frame (perspective)")
    g.add_argument("--fill-width", type=float, default=defaults.fill_width, metavar="F",
                   help="how far the background continues behind the near side, as a fraction of the "
                        "photo's longer side (default %(default)s)")
    g.add_argument("--fill-points", action="store_true", help="point clouds: add the filled background points too")
    g.add_argument("--flat", action="store_true", help="flat shading instead of smooth")
    g.add_argument("--shader", choices=SHADERS, default="shadeless",
                   help="principled: lit by the scene's lights; shadeless: the photo's own colours, unlit, so any "
                   "renderer or glTF viewer shows the photo as it is (glTF KHR_materials_unlit); emission: glows "
                   "and lights the scene (default: %(default)s)")
    g.add_argument("--shadeless", dest="shader", action="store_const", const="shadeless",
                   help="same as --shader shadeless (the default)")
    g.add_argument("--point-size", type=float, default=defaults.point_size, help="point radius in scene units at the median distance (grows with distance in perspective mode)")
    g.add_argument("--no-camera", action="store_true", help="do not add the matching camera")
    g = p.add_argument_group("files")
    g.add_argument("--link-images", action="store_true",
                   help=".blend: reference the photo by its path instead of packing it into the file "
                   "(a packed .blend renders the same wherever it is copied)")
    g.add_argument("--obj-quads", action="store_true",
                   help=".obj: keep quad faces (default: triangles, which every OBJ reader takes)")
    g.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return p


def add_parser(subparsers):
    p = add_arguments(subparsers.add_parser("mesh", help=HELP, description=HELP, epilog=models_epilog(),
                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    p.set_defaults(run=run)
    return p


def build_parser(prog: str = "python -m depth_addon mesh") -> argparse.ArgumentParser:
    """Stand-alone parser with exactly the sub-command's arguments."""
    return add_arguments(argparse.ArgumentParser(prog=prog, description=HELP, epilog=models_epilog(),
                                                 formatter_class=argparse.RawDescriptionHelpFormatter))


def main(argv: list[str], prog: str = "python -m depth_addon mesh") -> int:
    """Parse ``argv`` and run; DepthAddonError -> one line on stderr, exit status 2."""
    from .reporting import run_command

    return run_command(run, build_parser(prog).parse_args(argv))


def settings_from_args(args: argparse.Namespace) -> BuildSettings:
    return BuildSettings(
        output=args.mode, projection=args.projection, fov_deg=args.fov,
        resolution=args.resolution, stride=args.stride,
        tear=not args.no_tear, tear_threshold=args.tear_threshold,
        fill=not args.no_fill, fill_width=args.fill_width, fill_points=args.fill_points,
        invert_relative=args.invert, near=args.near, far=args.far,
        relief_strength=args.relief_strength, shade_smooth=not args.flat, shader=args.shader,
        point_size=args.point_size, add_camera=not args.no_camera, set_render_resolution=True,
    )


def run(args: argparse.Namespace) -> int:
    bad = [str(o) for o in args.outputs if o.suffix.lower() not in EXPORT_SUFFIXES]
    if bad:
        raise DepthAddonError(f"cannot write {', '.join(bad)}: use an output ending in {', '.join(EXPORT_SUFFIXES)}")
    from ..imageio import check_writable, read_image

    for output in args.outputs:
        check_writable(output)  # before minutes of depth work, not after
    settings = settings_from_args(args)
    if args.depth is None and (args.depth_kind is not None or args.invert):
        raise DepthAddonError("--depth-kind and --invert describe a --depth FILE; add --depth or drop them")
    network = Network(args.model, weights=args.weights, device=args.device, precision=args.precision)
    _check_bpy_available()
    rgb = read_image(args.image)
    try:
        found = resolve_depth(rgb, args.depth, depth_kind=args.depth_kind, network=network,
                              progress=None if args.quiet else _print_progress(), on_note=print_note)
    except WeightsUnavailableError as exc:
        raise WeightsUnavailableError(f"{exc}; or skip the network with --depth FILE (a depth map)") from exc
    if found.note and not args.quiet:
        print(f"note: {found.note}; pass --depth-kind to change that", file=sys.stderr)

    # bpy only from here on: everything that can fail for lack of weights has happened.
    # Blender's own log (e.g. "Info: Saved copy as ...") goes to stderr: stdout holds our result lines.
    with blender_log_to_stderr():
        from .. import api
        from ..blender.export import export_scene, reset_scene_if_startup

        reset_scene_if_startup()
        result = api.build(api.Photo.from_file(args.image, rgb), found, settings)
    report = (lambda line: None) if args.quiet else print
    if settings.projection == "perspective":
        report(f"field of view {result.fov_deg:.4g} degrees ({FOV_SOURCES[result.fov_source]})")
    report(_counts(result.object))
    for output in args.outputs:
        with blender_log_to_stderr():
            export_scene(output, result, pack_images=not args.link_images, triangulate=not args.obj_quads)
        report(f"wrote {output}")
    return 0


# Where the build's field of view came from (``DepthImportResult.fov_source``), as the CLI says it.
FOV_SOURCES = {"settings": "--fov", "exif": "the photo's EXIF focal length",
               "default": "default; the photo has no EXIF focal length"}


def _counts(obj) -> str:
    data = obj.data
    if obj.type == "MESH" and not len(data.polygons):  # the points mesh of Blender 4.2-4.4
        return f"{obj.name}: {len(data.vertices):,} points"
    if obj.type == "MESH":
        return f"{obj.name}: {len(data.vertices):,} vertices, {len(data.polygons):,} faces"
    return f"{obj.name}: {len(data.points):,} points"


@contextlib.contextmanager
def blender_log_to_stderr():
    """Send what is written to file descriptor 1 (Blender's C-level log, Python prints) to stderr."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no stdout at all (a detached process): nothing to keep clean
        yield
        return
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)


def _flush_c_stdio() -> None:
    """Flush C's stdout buffer (Blender's printf), so it lands before fd 1 is switched back."""
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # Windows: no CDLL(None); Blender flushes its own log there
        pass


def _check_bpy_available() -> None:
    """Fail before the depth work (minutes with a large model) if this Python cannot build the scene."""
    if sys.modules.get("bpy") is not None:
        return
    if "bpy" in sys.modules or importlib.util.find_spec("bpy") is None:
        raise DependencyMissingError(
            "the mesh command needs Blender's Python module 'bpy', which this Python lacks: run it inside "
            "Blender (blender -b --python scripts/blender_depth_mesh.py -- ARGS) or install the bpy module "
            "for this Python version (python -m pip install bpy)"
        )


def _print_progress():
    last = [-1]

    def report(fraction: float, message: str) -> None:
        percent = int(fraction * 100)
        if percent // 10 != last[0] // 10 or percent == 100:
            last[0] = percent
            print(f"{percent:3d}% {message}", file=sys.stderr)

    return report
