"""Command line: ``python -m depth_addon depth|mesh ...``.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse

from . import depth_cmd, mesh_cmd
from .reporting import run_command

_COMMANDS = (depth_cmd, mesh_cmd)
# Not __doc__, which is None under python -OO.
_DESCRIPTION = "Photo -> depth picture (depth) or textured mesh / point cloud files (mesh) with MiDaS or Depth Anything V2."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m depth_addon", description=_DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(args.run, args)
