"""``python -m depth_addon ...``: see depth_addon.cli."""

import sys

from .cli import main

sys.exit(main())
