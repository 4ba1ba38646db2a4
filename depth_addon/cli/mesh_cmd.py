"""``python -m depth_addon mesh IMAGE -o OUT.blend|.glb|.gltf|.obj|.ply ...``: photo -> mesh/points files.

The same arguments work through ``blender -b --python scripts/blender_depth_mesh.py -- ...``,
which calls ``main`` with this module's parser. The depth is computed (or read) before bpy
is touched, so a missing-weights error exits 2 without writing anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from ..errors import DependencyMissingError, DepthAddonError
from ..geometry.depth import guess_depth_kind
from ..midas.registry import DEFAULT_MODEL, DEVICES, MODEL_TYPES, get_spec
from ..settings import BuildSettings
from .model_help import MODEL_HELP, models_epilog

EXPORT_SUFFIXES = (".blend", ".glb", ".gltf", ".obj", ".ply")
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
                   help="what --depth holds (default: metric for .npy/.exr/.tif, relative for pictures)")
    g.add_argument("--invert", action="store_true", help="relative depth picture is darker = nearer")
    g.add_argument("--model", default=DEFAULT_MODEL, choices=MODEL_TYPES, metavar="TYPE",
                   help=f"depth model type (default {DEFAULT_MODEL}), by family:{MODEL_HELP}")
    g.add_argument("--weights", type=Path, metavar="FILE",
                   help="the official weights file of --model (.pt / .pth; skips the download)")
    g.add_argument("--device", choices=DEVICES, default="auto", help="where to run the network (default auto)")
    g = p.add_argument_group("geometry")
    g.add_argument("--mode", choices=("mesh", "points"), default=defaults.output, help="mesh or point cloud")
    g.add_argument("--projection", choices=("perspective", "relief"), default=defaults.projection)
    g.add_argument("--fov", type=float, metavar="DEG",
                   help="horizontal field of view (default: photo's EXIF, else settings.DEFAULT_FOV_DEG)")
    g.add_argument("--near", type=float, default=defaults.near, help="distance of the nearest inverse/relative depth")
    g.add_argument("--far", type=float, default=defaults.far, help="distance of the farthest inverse/relative depth")
    g.add_argument("--relief-strength", type=float, default=defaults.relief_strength,
                   help="relief displacement as a fraction of the image width")
    res = g.add_mutually_exclusive_group()
    res.add_argument("--resolution", type=int, default=defaults.resolution, metavar="N",
                     help=f"vertices along the longer side (default {defaults.resolution})")
    res.add_argument("--stride", type=int, metavar="S", help="a vertex every S pixels instead")
    tear = g.add_mutually_exclusive_group()
    tear.add_argument("--tear-threshold", type=float, default=defaults.tear_threshold, metavar="X",
                      help="relative depth jump that tears a face (default %(default)s)")
    tear.add_argument("--no-tear", action="store_true", help="keep (stretch) faces across depth jumps")
    g.add_argument("--flat", action="store_true", help="flat shading instead of smooth")
    g.add_argument("--shadeless", action="store_true", help="emission material (photo colours unlit)")
    g.add_argument("--point-size", type=float, default=defaults.point_size, help="point radius in scene units at the median distance (grows with distance in perspective mode)")
    g.add_argument("--no-camera", action="store_true", help="do not add the matching camera")
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
        invert_relative=args.invert, near=args.near, far=args.far,
        relief_strength=args.relief_strength, shade_smooth=not args.flat, shadeless=args.shadeless,
        point_size=args.point_size, add_camera=not args.no_camera, set_render_resolution=True,
    )


def run(args: argparse.Namespace) -> int:
    bad = [str(o) for o in args.outputs if o.suffix.lower() not in EXPORT_SUFFIXES]
    if bad:
        raise DepthAddonError(f"cannot write {', '.join(bad)}: use an output ending in {', '.join(EXPORT_SUFFIXES)}")
    settings = settings_from_args(args)
    _check_bpy_available()
    from ..imageio import read_image

    rgb = read_image(args.image)
    if args.depth is not None:
        from ..imageio import read_depth

        depth = read_depth(args.depth)
        kind = args.depth_kind or guess_depth_kind(args.depth)
    else:
        if args.depth_kind is not None or args.invert:
            raise DepthAddonError("--depth-kind and --invert describe a --depth FILE; add --depth or drop them")
        from ..errors import WeightsUnavailableError
        from ..pipeline import estimate_depth

        try:
            depth = estimate_depth(rgb, model_type=args.model, weights=args.weights, device=args.device,
                                   progress=_print_progress())
        except WeightsUnavailableError as exc:
            raise WeightsUnavailableError(f"{exc}; or skip the network with --depth FILE (a depth map)") from exc
        kind = get_spec(args.model).depth_kind   # metric models: metres
    settings = settings.with_changes(depth_kind=kind)

    # bpy only from here on: everything that can fail for lack of weights has happened.
    from .. import api
    from ..blender.export import export_scene, reset_scene_if_startup

    reset_scene_if_startup()
    result = api.build_from_pixels(args.image, rgb, depth, settings)
    for output in args.outputs:
        export_scene(output, result)
        print(f"wrote {output}")
    return 0


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
