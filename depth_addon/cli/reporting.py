"""How every command ends: a user-fixable problem is one line and exit status 2, Ctrl+C is 130."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import DepthAddonError


def print_note(text: str) -> None:
    """A note the user must see before work starts (a non-commercial licence before its download), even with -q."""
    print(f"note: {text}", file=sys.stderr)


def run_command(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a parsed command; ``DepthAddonError`` -> ``error: ...`` on stderr and 2, Ctrl+C -> ``cancelled`` and 130.

    Outputs are safe either way: depth files are written atomically and downloads resume.
    """
    try:
        return int(run(args) or 0)
    except DepthAddonError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever a library said
        return 2
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
