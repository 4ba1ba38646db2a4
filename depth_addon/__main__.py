"""``python -m depth_addon ...``: see depth_addon.cli."""

import os
import sys

from .cli import main

status = main()
if sys.modules.get("bpy") is not None:
    # With the bpy module loaded, Blender's own teardown at exit can crash (bpy 4.2 after a
    # glTF export: SIGSEGV, exit 139) though every output is complete by now: end here with
    # the command's status instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
sys.exit(status)
