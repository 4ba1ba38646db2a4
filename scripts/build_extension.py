"""Build the Blender extension zip and validate it with Blender's own extension tool.

    python scripts/build_extension.py                  # -> dist/depth_addon-<version>.zip
    python scripts/build_extension.py --output-dir out --no-validate

The ``depth_addon/`` package is staged in a temporary folder with the root
``blender_manifest.toml`` copied in (caches left out), then packed by
``blender_ext.py build`` and checked by ``blender_ext.py validate`` -- the same command
line tool Blender uses (``blender --command extension build``), found inside the bpy
wheel without importing bpy. Install the result with Edit > Preferences > Get Extensions >
Install from Disk, or ``blender --command extension install-file -r user_default <zip>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO_ROOT / "depth_addon"
MANIFEST = REPO_ROOT / "blender_manifest.toml"
# Never shipped: byte code, editor and OS litter, test caches.
EXCLUDE_PATTERNS = ("__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*.orig", "*.rej", ".pytest_cache")


class BuildError(RuntimeError):
    """The extension could not be built or did not validate."""


def find_blender_ext() -> Path:
    """Path of ``bl_pkg/cli/blender_ext.py`` inside the installed bpy wheel (bpy is not imported)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("the bpy module is not installed in this Python; run this script with the project venv")
    for location in spec.submodule_search_locations:
        # <site-packages>/bpy/<major.minor>/scripts/addons_core/bl_pkg/cli/blender_ext.py
        found = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    raise BuildError(f"blender_ext.py not found under {list(spec.submodule_search_locations)}")


def read_manifest(path: Path = MANIFEST) -> dict:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def package_version() -> str:
    """``__version__`` from ``depth_addon/__init__.py``, read as text (no import)."""
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', (PACKAGE_DIR / "__init__.py").read_text(), re.M)
    if not match:
        raise BuildError("depth_addon/__init__.py has no __version__")
    return match.group(1)


def stage(destination: Path) -> Path:
    """Copy the package plus the manifest into ``destination/<id>``; return that folder."""
    manifest = read_manifest()
    if manifest.get("version") != package_version():
        raise BuildError(
            f"blender_manifest.toml version {manifest.get('version')!r} differs from "
            f"depth_addon.__version__ {package_version()!r}; make them equal"
        )
    staged = destination / manifest["id"]
    shutil.copytree(PACKAGE_DIR, staged, ignore=shutil.ignore_patterns(*EXCLUDE_PATTERNS))
    shutil.copy2(MANIFEST, staged / "blender_manifest.toml")
    return staged


def run_blender_ext(*args: str) -> str:
    """Run Blender's extension tool; raise BuildError with its output when it fails."""
    cmd = [sys.executable, str(find_blender_ext()), *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise BuildError(f"{' '.join(args[:1])} failed:\n{output}")
    return output


def validate(path: Path) -> str:
    """Validate a staged source folder or a built zip; returns the tool's message."""
    return run_blender_ext("validate", str(path))


def build(output_dir: Path = REPO_ROOT / "dist", check: bool = True) -> Path:
    """Build ``<output_dir>/<id>-<version>.zip``, validate it unless ``check`` is False; return its path."""
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest()
    zip_path = output_dir / f"{manifest['id']}-{manifest['version']}.zip"
    with tempfile.TemporaryDirectory(prefix="depth_addon_build_") as tmp:
        staged = stage(Path(tmp))
        if check:
            validate(staged)
        zip_path.unlink(missing_ok=True)
        run_blender_ext("build", "--source-dir", str(staged), "--output-filepath", str(zip_path))
    if check:
        validate(zip_path)
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "dist", help="where the zip goes (default: dist/)")
    parser.add_argument("--no-validate", action="store_true", help="skip Blender's manifest/package validation")
    args = parser.parse_args(argv)
    try:
        zip_path = build(args.output_dir, check=not args.no_validate)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
