"""Command line: ``python -m depth_addon depth|mesh ...``.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import DepthAddonError
from . import depth_cmd, mesh_cmd

_COMMANDS = (depth_cmd, mesh_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m depth_addon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except DepthAddonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
