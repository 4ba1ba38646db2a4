"""``python -m depth_addon depth IMAGE -o depth.png``: photo in, depth picture out (no Blender).

Writes 16-bit grayscale (lighter = nearer), a colour-mapped 8-bit picture (``--colormap``),
or float values (.exr, .tif, .npy). Downloads the model's weights on first use with a
progress bar; offline, pass ``--weights FILE``.
"""

from __future__ import annotations

import argparse
import sys

from .. import imageio
from ..midas import weights as weights_cache
from ..midas.registry import DEFAULT_MODEL, DEVICES, MODEL_TYPES, PRECISIONS
from ..pipeline import Network, resolve_depth
from .model_help import MODEL_HELP, PRECISION_HELP, models_epilog
from .reporting import print_note


def add_parser(subparsers):
    p = subparsers.add_parser(
        "depth", help="estimate a depth picture from one photo",
        description="Estimate a depth picture from one photo with MiDaS or Depth Anything V2 (no Blender needed).",
        epilog=f"{models_epilog()}\n\nWeights cache: {weights_cache.weights_dir()} (set "
        f"{weights_cache.WEIGHTS_DIR_ENV} to move it).\nOffline, download the official weights file yourself "
        "and pass --weights FILE.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("image", help="the photo (any format Pillow reads; EXIF orientation is applied)")
    p.add_argument("-o", "--output", required=True,
                   help="depth file to write: .png (16-bit, lighter = nearer), .exr/.tif/.npy (float values: relative "
                   "inverse depth, or metres for the metric models); each records what it holds (kind, model, "
                   "value range; .npy: in a .npy.json beside it)")
    p.add_argument("--model", choices=MODEL_TYPES, default=DEFAULT_MODEL, metavar="TYPE",
                   help=f"depth model type (default: %(default)s);{MODEL_HELP}")
    p.add_argument("--weights", metavar="FILE",
                   help="the official weights file of --model (default: the weights cache, downloading once)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="where to run (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help=PRECISION_HELP)
    p.add_argument("--colormap", choices=imageio.COLORMAPS, metavar="NAME",
                   help=f"write an 8-bit colour .png with this map: {', '.join(imageio.COLORMAPS)}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    # Cheap checks first, so a typo never costs a download or a model load.
    imageio.check_depth_output(args.output, args.colormap)
    network = Network(args.model, weights=args.weights, device=args.device, precision=args.precision)
    rgb = imageio.read_image(args.image)

    def stage(fraction: float, message: str):
        if not args.quiet:
            print(message, file=sys.stderr)

    with DownloadBar(args.model, disable=args.quiet) as bar:
        found = resolve_depth(rgb, network=network, progress=stage, on_bytes=bar, on_note=print_note)
    path = imageio.write_depth(args.output, found.values, colormap=args.colormap, kind=found.kind, model=found.model)
    if not args.quiet:
        print(f"wrote {path} ({found.values.shape[1]}x{found.values.shape[0]})")
        if path.suffix.lower() == ".npy":  # .npy has no metadata of its own
            print(f"wrote {path.with_name(path.name + '.json')} (what {path.name} holds)")
    return 0


class DownloadBar:
    """A ``progress(done, total)`` callback drawing a tqdm bar, created on the first byte."""

    def __init__(self, model_type: str, disable: bool = False):
        self.label = model_type
        self.disable = disable
        self.bar = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=f"downloading {self.label}", disable=self.disable, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.close()
