"""Is torch + timm importable here, and where does the add-on install them (no bpy, no torch import).

Blender's Python usually lacks torch; the preferences' installer puts torch + timm into
``<extension user dir>/site-packages``, which ``add_site_packages`` appends to ``sys.path``
(appended, so Blender's own numpy keeps priority over one pip may drag in).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys

# Import name -> what the installer asks pip for, at the versions the project is tested with.
# Blender's Python ships numpy but not Pillow or OpenCV, which the image reader and the
# official MiDaS resize (cv2.INTER_CUBIC) need; opencv 4.11 still works with numpy 1.x.
REQUIREMENTS = {
    "torch": "torch==2.13.0",
    "timm": "timm==1.0.31",
    "cv2": "opencv-python-headless==4.11.0.86",
    "PIL": "pillow==13.0.0",
}
REQUIRED_MODULES = tuple(REQUIREMENTS)
PACKAGES = tuple(REQUIREMENTS.values())
CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"

_missing: tuple[str, ...] | None = None


def missing_modules(refresh: bool = False) -> tuple[str, ...]:
    """The required modules Python cannot find, without importing them (cached; ``refresh`` re-checks)."""
    global _missing
    if _missing is None or refresh:
        importlib.invalidate_caches()
        _missing = tuple(name for name in REQUIRED_MODULES if _find(name) is None)
    return _missing


def _find(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a broken half-install
        return None


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def have_pip() -> bool:
    return _find("pip") is not None


def missing_message(missing: tuple[str, ...] | None = None) -> str:
    missing = missing_modules() if missing is None else missing
    names = " and ".join(missing)
    verb = "are" if len(missing) > 1 else "is"
    return (f"{names} {verb} not installed in Blender's Python: install torch + timm from "
            "Edit > Preferences > Add-ons > Depth Addon")


_added: list[str] = []


def add_site_packages(path: str | os.PathLike) -> bool:
    """Append ``path`` to ``sys.path`` if it exists and is not there yet; True if added."""
    path = os.fspath(path)
    if not os.path.isdir(path) or path in sys.path:
        return False
    sys.path.append(path)
    _added.append(path)
    importlib.invalidate_caches()
    return True


def remove_site_packages(path: str | os.PathLike) -> None:
    path = os.fspath(path)
    while path in sys.path:
        sys.path.remove(path)
    if path in _added:
        _added.remove(path)


def remove_added_site_packages() -> None:
    """Undo every ``add_site_packages`` (the add-on is being unregistered)."""
    while _added:
        remove_site_packages(_added[-1])
