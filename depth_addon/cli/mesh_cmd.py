"""`python -m depth_addon mesh ...` (placeholder until implemented)."""


def add_parser(subparsers):
    p = subparsers.add_parser("mesh", help="not implemented yet")
    p.set_defaults(run=run)
    return p


def run(args):
    from ..errors import DepthAddonError

    raise DepthAddonError("the mesh command is not implemented yet")
