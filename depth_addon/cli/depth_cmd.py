"""`python -m depth_addon depth ...` (placeholder until implemented)."""


def add_parser(subparsers):
    p = subparsers.add_parser("depth", help="not implemented yet")
    p.set_defaults(run=run)
    return p


def run(args):
    from ..errors import DepthAddonError

    raise DepthAddonError("the depth command is not implemented yet")
