"""User-facing errors (no bpy here).

Every failure a user can fix raises a subclass of ``DepthAddonError`` whose message
names the problem and the fix. The CLI prints it as one line (exit status 2) and the
operators relay it with ``self.report({'ERROR'}, str(exc))``; anything else is a bug.
"""


class DepthAddonError(Exception):
    """A problem the user can fix; the message says how."""


class ImageReadError(DepthAddonError):
    """An image or depth file is missing, empty, corrupt or of an unsupported kind."""


class WeightsUnavailableError(DepthAddonError):
    """Model weights are not in the cache and cannot be downloaded (offline, refused, server error)."""


class CheckpointMismatchError(DepthAddonError):
    """A checkpoint file does not fit the chosen model type."""


class ModelUnavailableError(DepthAddonError):
    """A model type cannot run here (e.g. the installed timm lacks its backbone)."""


class DependencyMissingError(DepthAddonError):
    """torch / timm (or another optional dependency) is not installed in this Python."""


class CancelledError(DepthAddonError):
    """The user cancelled a long run (Esc, or a cancel callback returned True)."""
