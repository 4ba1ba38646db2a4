"""Read photos and read/write depth pictures (Pillow + numpy; Pillow and OpenCV imported lazily).

    rgb = read_image("photo.jpg")            # (H, W, 3) uint8 RGB, EXIF orientation applied
    fov = exif_horizontal_fov("photo.jpg")   # degrees or None
    write_depth("depth.png", depth, kind="inverse", model="dpt_hybrid_384")   # 16-bit gray, lighter = nearer
    depth = read_depth("depth.png")          # (H, W) float32: the recorded value range, else [0, 1]
    kind, source = depth_file_kind("depth.png")   # "inverse", "recorded in the file"

Every failure a user can fix raises ImageReadError naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import DependencyMissingError, DepthAddonError, ImageReadError
from .geometry.depth import DEPTH_KINDS, guess_depth_kind

# Pillow refuses images above ~179 MP (and warns above ~89 MP) to protect servers from
# decompression bombs. Here the user picks their own photo, and panoramas or 100+ MP camera
# files are legitimate, so raise the ceiling to 1 gigapixel (3 GB as RGB); a larger file still
# fails, with a clear message, instead of exhausting memory. Only ever raised, never lowered.
MAX_IMAGE_PIXELS = 1_000_000_000

if TYPE_CHECKING:
    from PIL import Image


def _pillow():
    """Pillow's Image module, imported on first use: in Blender without Pillow a depth file's record
    is still read (PNG chunks, EXR header and .npy sidecar are parsed here), and Blender reads the picture."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    return Image

# Names accepted by write_depth(colormap=...): OpenCV's COLORMAP_<NAME> (cv2 4.x).
COLORMAPS = (
    "inferno", "magma", "plasma", "viridis", "cividis", "turbo", "jet", "bone",
    "autumn", "winter", "rainbow", "ocean", "summer", "spring", "cool", "hsv", "pink",
    "hot", "parula", "twilight", "twilight_shifted", "deepgreen",
)
DEPTH_WRITE_SUFFIXES = (".png", ".exr", ".npy", ".tif", ".tiff")
DEPTH_READ_SUFFIXES = (".npy", ".exr", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".pgm")

_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
_FOCAL_LENGTH = 0x920A
_FOCAL_LENGTH_35MM = 0xA405
_EXIF_IMAGE_WIDTH, _EXIF_IMAGE_HEIGHT = 0xA002, 0xA003
_FOCAL_PLANE_X_RES, _FOCAL_PLANE_Y_RES, _FOCAL_PLANE_UNIT = 0xA20E, 0xA20F, 0xA210
_FOCAL_PLANE_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # inch, cm, mm, micrometre


def import_cv2(needed_for: str | None = None, otherwise: str | None = None):
    """Import OpenCV with its OpenEXR codec enabled (the one place that sets the switch).

    OpenCV only reads/writes .exr when OPENCV_IO_ENABLE_OPENEXR is set before the codec is
    first used; setting it before the import covers that. ``needed_for`` ("the fill behind
    tears"): without OpenCV, a DependencyMissingError saying what needs it, how to install it
    and ``otherwise`` (what works without it); without ``needed_for`` the ImportError as it is.
    """
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    try:
        import cv2
    except ImportError as exc:
        if needed_for is None:
            raise
        # Blender's own Python has no OpenCV until the add-on's installer runs.
        raise DependencyMissingError(
            f"{needed_for} needs OpenCV, which is not installed in this Python: install the dependencies "
            f"(Edit > Preferences > Add-ons > Depth Addon){f', or {otherwise}' if otherwise else ''}"
        ) from exc
    return cv2


# --- photos ----------------------------------------------------------------------------------


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as (H, W, 3) uint8 RGB with its EXIF orientation applied.

    Grayscale, palette, CMYK and 16-bit images are converted; alpha is dropped; 16-bit
    values are scaled to 8 bits. Multi-frame files give their first frame.
    """
    path = Path(path)
    _check_file(path, "image")
    Image = _pillow()
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return np.array(_to_rgb8(im), dtype=np.uint8, order="C")  # a writable copy, not Pillow's buffer
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path} is too large to load ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path} is not an image Pillow can read (unknown or unsupported format)") from exc
    except PermissionError as exc:
        raise ImageReadError(f"{path} cannot be opened: permission denied") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated / corrupt data as OSError, broken headers as SyntaxError.
        raise ImageReadError(f"{path} is damaged or truncated and cannot be decoded ({exc})") from exc


def _to_rgb8(im: Image.Image) -> np.ndarray:
    """Any Pillow image -> (H, W, 3) uint8 RGB."""
    if im.mode == "RGB":
        return np.asarray(im)
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        gray = np.asarray(im).astype(np.float64)
        top = np.nanmax(gray, initial=0.0)
        if im.mode == "F":
            gray = gray * 255.0 if top <= 1.0 else gray  # float pictures: [0, 1] or [0, 255]
        elif top <= 65535:
            gray = gray / 257.0  # 16-bit (also 16-bit PNGs that Pillow opens as "I")
        else:
            gray = gray / 16843009.0  # full 32-bit range
        gray = np.clip(np.nan_to_num(gray), 0, 255).round().astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")  # via RGBA so palette transparency converts without a warning
    return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class PhotoExif:
    """What a photo's EXIF tells a build: ``fov_deg``, the horizontal field of view (see
    ``exif_horizontal_fov``), and ``orientation``, the EXIF orientation tag (1-8); None where it
    does not say (no tag, no EXIF, no Pillow)."""

    fov_deg: float | None = None
    orientation: int | None = None


def read_exif(path: str | os.PathLike) -> PhotoExif:
    """The photo's EXIF as a build needs it, read once (the header only, no pixels are decoded)."""
    try:
        Image = _pillow()
    except ImportError:  # Blender's own Python without Pillow: no EXIF reader, so no EXIF answer
        return PhotoExif()
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            stored_size = im.size
    except (OSError, SyntaxError, ValueError):
        return PhotoExif()
    return PhotoExif(_horizontal_fov(exif, stored_size), _exif_int(exif.get(_ORIENTATION)))


def exif_horizontal_fov(path: str | os.PathLike) -> float | None:
    """Horizontal field of view in degrees from the photo's EXIF, or None if it does not say.

    Uses FocalLengthIn35mmFilm when present. Assumption: the 35 mm equivalent maps the
    image's *long* side to the 36 mm side of a 36 x 24 mm frame, so for a landscape image
    (after EXIF orientation) the horizontal extent is 36 mm and for a portrait image it is
    36 mm x width / height. (Some makers match the diagonal instead; for 3:2 images the two
    agree, for 4:3 they differ by about 2 degrees.) Without it, falls back to FocalLength
    with the sensor size derived from FocalPlaneX/YResolution.
    """
    return read_exif(path).fov_deg


def _horizontal_fov(exif, stored_size: tuple[int, int]) -> float | None:
    """``exif_horizontal_fov`` from an opened image's EXIF and its stored (width, height)."""
    stored_w, stored_h = stored_size
    sub = exif.get_ifd(_EXIF_IFD)

    def tag(key):
        value = sub.get(key, exif.get(key))
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError, ZeroDivisionError):
            return None

    rotated = exif.get(_ORIENTATION) in (5, 6, 7, 8)  # stored sideways: width and height swap
    width, height = (stored_h, stored_w) if rotated else (stored_w, stored_h)

    f35 = tag(_FOCAL_LENGTH_35MM)
    if f35 and f35 > 0:
        horizontal_mm = 36.0 * width / max(width, height)
        return _fov_degrees(horizontal_mm, f35)

    focal, x_res, unit = tag(_FOCAL_LENGTH), tag(_FOCAL_PLANE_X_RES), _exif_int(sub.get(_FOCAL_PLANE_UNIT, 2))
    y_res = tag(_FOCAL_PLANE_Y_RES) or x_res
    if not (focal and focal > 0 and x_res and x_res > 0 and unit in _FOCAL_PLANE_UNIT_MM):
        return None
    # FocalPlane*Resolution is pixels per unit of the image as captured (ExifImageWidth).
    captured_w = tag(_EXIF_IMAGE_WIDTH) or stored_w
    captured_h = tag(_EXIF_IMAGE_HEIGHT) or stored_h
    sensor_w = captured_w / x_res * _FOCAL_PLANE_UNIT_MM[unit]
    sensor_h = captured_h / y_res * _FOCAL_PLANE_UNIT_MM[unit]
    return _fov_degrees(sensor_h if rotated else sensor_w, focal)


def _exif_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _fov_degrees(extent_mm: float, focal_mm: float) -> float | None:
    fov = math.degrees(2.0 * math.atan(extent_mm / (2.0 * focal_mm)))
    return fov if 1.0 <= fov <= 179.0 else None


# --- depth pictures --------------------------------------------------------------------------


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a depth file as (H, W) float32.

    .npy, .exr and float .tif keep the stored values; 8/16-bit images (PNG, integer TIFF,
    ...) become [0, 1]. Multi-channel files give their first channel (R, or gray).
    """
    path = Path(path)
    _check_file(path, "depth")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ImageReadError(f"{path} is not a readable .npy array ({exc})") from exc
    else:
        values = _decode_with_cv2(path)
    return depth_from_decoded(path, values)


def depth_from_decoded(path: str | os.PathLike, values: np.ndarray, unit_scaled: bool = False) -> np.ndarray:
    """A depth file's decoded values -> (H, W) float32 depth, whoever decoded them (OpenCV, numpy, Blender).

    Takes the first channel, refuses colour-mapped previews, makes 8/16-bit pictures' integers
    [0, 1], and maps those (or ``unit_scaled`` values: a picture a decoder already gave as [0, 1])
    onto the value range the file records, if it records one.
    """
    path = Path(path)
    values = np.asarray(values)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]  # (1, H, W), e.g. a saved network output
    if values.ndim == 3 and values.shape[2] <= 4:
        values = values[..., 0]
    if values.ndim != 2 or values.size == 0:
        raise ImageReadError(f"{path} holds an array of shape {values.shape}, not a (height, width) depth map")
    tags = read_depth_tags(path)
    if tags is not None and tags.get("colormap"):
        raise ImageReadError(f"{path} is a colour-mapped preview ({tags['colormap']}), not depth values; "
                             "write the depth without --colormap (.png, .exr, .tif, .npy)")
    if values.dtype.kind == "u" and path.suffix.lower() != ".npy":
        values = values / np.iinfo(values.dtype).max  # float64 until the range is applied
        unit_scaled = True
    if unit_scaled and tags is not None and "range" in tags:
        low, high = tags["range"]
        return (low + values * (high - low)).astype(np.float32)
    if values.dtype.kind not in "fiu":
        raise ImageReadError(f"{path} holds {values.dtype} values, not numbers")
    return values.astype(np.float32)


# What a depth file holds, in the format's own metadata: a PNG tEXt chunk, an EXR string header
# attribute and the TIFF ImageDescription tag, all named/holding JSON like
# {"depth_addon": 1, "kind": "inverse", "model": "dpt_hybrid_384", "range": [low, high]}.
# .npy has no metadata: a sidecar <file>.npy.json holds the same JSON.
DEPTH_TAG = "depth_addon"
_TIFF_IMAGE_DESCRIPTION = 270


def depth_tags(kind: str, model: str | None = None, value_range: tuple[float, float] | None = None,
               colormap: str | None = None) -> dict:
    """The record ``write_depth`` stores: kind, the model that made it, a 16-bit picture's value range."""
    if kind not in DEPTH_KINDS:
        raise ValueError(f"unknown depth kind {kind!r}; valid: {', '.join(DEPTH_KINDS)}")
    tags = {DEPTH_TAG: 1, "kind": kind}
    if model is not None:
        tags["model"] = model
    if value_range is not None:
        tags["range"] = [float(value_range[0]), float(value_range[1])]
    if colormap is not None:
        tags["colormap"] = colormap
    return tags


def read_depth_tags(path: str | os.PathLike) -> dict | None:
    """The record a depth file carries (see ``depth_tags``), or None for a file without one."""
    path = Path(path)
    suffix = path.suffix.lower()
    text = None
    try:
        if suffix == ".npy":
            sidecar = path.with_name(path.name + ".json")
            text = sidecar.read_text(encoding="utf-8") if sidecar.is_file() else None
        elif suffix == ".exr":
            from .exr import read_exr_strings

            with open(path, "rb") as fh:
                text = read_exr_strings(fh.read(1 << 16)).get(DEPTH_TAG)
        elif suffix == ".png":
            with open(path, "rb") as fh:
                text = _png_text(fh.read(1 << 16), DEPTH_TAG)
        elif suffix in (".tif", ".tiff"):
            with _pillow().open(path) as im:
                text = im.tag_v2.get(_TIFF_IMAGE_DESCRIPTION)
    except (OSError, SyntaxError, ValueError):  # Pillow's UnidentifiedImageError is an OSError
        return None  # unreadable files fail in read_depth, with their own message
    except ImportError:  # a .tif's record needs Pillow (stock Blender has none): the kind is guessed
        return None
    try:
        tags = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None  # e.g. another program's ImageDescription
    if not isinstance(tags, dict) or tags.get(DEPTH_TAG) != 1 or tags.get("kind") not in DEPTH_KINDS:
        return None
    value_range = tags.get("range")
    if value_range is not None and not (isinstance(value_range, list) and len(value_range) == 2
                                        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value_range)):
        tags.pop("range")
    return tags


def depth_file_kind(path: str | os.PathLike) -> tuple[str, str | None]:
    """(kind, None) when the file records its kind; else (the guess from its format, why that guess).

    The guess: metric for float files (.npy, .exr, .tif), relative for pictures (lighter = nearer).
    """
    tags = read_depth_tags(path)
    if tags is not None:
        return tags["kind"], None
    kind = guess_depth_kind(path)
    why = "a float file" if kind == "metric" else "a picture, lighter = nearer"
    return kind, f"{Path(path).name} does not record what it holds; read as {kind} depth ({why})"


def _decode_with_cv2(path: Path) -> np.ndarray:
    """Decode any OpenCV-readable picture as stored (no scaling), channels in RGB order."""
    cv2 = import_cv2()
    # imdecode on bytes also works for non-ASCII paths on Windows, unlike imread.
    try:
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    try:
        values = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        values, detail = None, f" ({str(exc).strip().splitlines()[-1]})"
    else:
        detail = ""
    if values is None:
        raise ImageReadError(
            f"{path} cannot be decoded as a depth picture{detail}; use .npy, .exr, .tif or an 8/16-bit .png"
        )
    if values.ndim == 3 and values.shape[2] >= 3:
        values = values[..., [2, 1, 0] + list(range(3, values.shape[2]))]  # BGR(A) -> RGB(A)
    return values


def write_depth(path: str | os.PathLike, depth: np.ndarray, colormap: str | None = None, *,
                kind: str = "inverse", model: str | None = None) -> Path:
    """Write an (H, W) depth map of ``kind`` (MiDaS: inverse, larger = nearer), made by ``model``.

    .png: 16-bit grayscale normalised min..max, lighter = nearer (larger values for inverse
    depth, smaller for metric depth); with ``colormap`` (one of COLORMAPS) an 8-bit RGB preview instead. .exr, .tif, .npy:
    float32 values as given. Each file records kind, model and (16-bit .png) the value range in its own
    metadata (``depth_tags``; .npy: a ``.npy.json`` sidecar), which ``read_depth`` and
    ``depth_file_kind`` read back. Returns the path written; the parent folder is created.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be an (H, W) array, got shape {depth.shape}")
    check_depth_output(path, colormap)
    finite = depth[np.isfinite(depth)]
    value_range = (float(finite.min()), float(finite.max())) if finite.size and suffix == ".png" and \
        colormap is None else None
    # Pictures are lighter = nearer; metres grow with distance, so a metric picture is stored
    # flipped, its range recorded high-to-low: reading it back (low + unit * (high - low)) gives metres.
    flip = kind == "metric" and suffix == ".png"
    if flip and value_range is not None:
        value_range = value_range[::-1]
    tags = json.dumps(depth_tags(kind, model, value_range, colormap))
    sidecar = None
    if suffix == ".npy":
        payload, sidecar = None, tags
    elif suffix == ".png":
        payload = _png_with_text(_encode_png(-depth if flip else depth, colormap), DEPTH_TAG, tags)
    elif suffix == ".exr":
        from .exr import encode_gray_exr  # our encoder can write header attributes

        payload = encode_gray_exr(depth.astype(np.float32), {DEPTH_TAG: tags})
    else:
        import io

        buffer = io.BytesIO()
        _pillow().fromarray(np.ascontiguousarray(depth, dtype=np.float32), mode="F").save(
            buffer, format="TIFF", tiffinfo={_TIFF_IMAGE_DESCRIPTION: tags})
        payload = buffer.getvalue()
    # Written beside the target and renamed into place, so a failed or interrupted write (disk
    # full, Ctrl+C) never leaves a half-written file, nor destroys the one already there.
    partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.partial")  # one per writer
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(partial, "wb") as fh:
                if payload is None:  # np.save(path) would append .npy to other names
                    np.save(fh, depth.astype(np.float32), allow_pickle=False)
                else:
                    fh.write(payload)
            if sidecar is not None:
                _write_atomically(path.with_name(path.name + ".json"), sidecar.encode())
            os.replace(partial, path)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
    except OSError as exc:
        raise DepthAddonError(f"cannot write {path} ({exc.strerror or exc}); choose a writable location") from exc
    return path


def check_depth_output(path: str | os.PathLike, colormap: str | None = None) -> None:
    """Raise DepthAddonError unless write_depth can write ``path`` (checked before long work)."""
    suffix = Path(path).suffix.lower()
    if suffix not in DEPTH_WRITE_SUFFIXES:
        raise DepthAddonError(
            f"cannot write depth as {suffix or 'a file without extension'!r} ({Path(path).name}); "
            f"use one of {', '.join(DEPTH_WRITE_SUFFIXES)}"
        )
    if colormap is not None:
        if colormap not in COLORMAPS:
            raise DepthAddonError(f"unknown colormap {colormap!r}; choose one of: {', '.join(COLORMAPS)}")
        if suffix != ".png":
            raise DepthAddonError(f"a colormap applies to .png output only, not {suffix}; drop --colormap")
    check_writable(path)


def check_writable(path: str | os.PathLike) -> None:
    """Raise DepthAddonError ``cannot write PATH: why`` unless a file can be created at ``path``.

    Checked before long work: ``path`` must not be a folder, and its nearest existing parent
    must be a writable folder (missing folders below it are created when writing).
    """
    path = Path(path)
    if path.is_dir():
        raise DepthAddonError(f"cannot write {path}: it is a folder; give a file name inside it")
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DepthAddonError(f"cannot write {path}: {parent} is a file, not a folder; choose another location")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DepthAddonError(f"cannot write {path}: the folder {parent} is not writable; choose another location")


def normalize_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W) float32 in [0, 1] over the finite min..max (constant or empty -> 0)."""
    depth = np.asarray(depth, dtype=np.float32)
    finite = np.isfinite(depth)
    if not finite.any():
        return np.zeros(depth.shape, np.float32)
    lo, hi = float(depth[finite].min()), float(depth[finite].max())
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - lo; replaced below
        out = (depth - lo) * scale
    return np.where(finite, np.clip(out, 0.0, 1.0), 0.0).astype(np.float32)


def _encode_png(depth: np.ndarray, colormap: str | None) -> bytes:
    cv2 = import_cv2()
    unit = normalize_depth(depth)
    if colormap is None:
        picture = np.round(unit * 65535.0).astype(np.uint16)
    else:
        gray = np.round(unit * 255.0).astype(np.uint8)
        picture = cv2.applyColorMap(gray, getattr(cv2, f"COLORMAP_{colormap.upper()}"))  # BGR, as imencode wants
    ok, buf = cv2.imencode(".png", picture)
    if not ok:  # pragma: no cover - PNG encoding of a valid array does not fail
        raise DepthAddonError("OpenCV could not encode the depth PNG")
    return buf.tobytes()


def _png_text(head: bytes, keyword: str) -> str | None:
    """The text of the tEXt chunk ``keyword`` among the chunks in ``head`` (a PNG's first bytes), or None.

    A few lines instead of Pillow, so a depth picture's record is read where Pillow is not installed.
    """
    if not head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    at, wanted = 8, keyword.encode("latin-1") + b"\0"
    while at + 8 <= len(head):
        length = struct.unpack(">I", head[at:at + 4])[0]
        kind, data = head[at + 4:at + 8], head[at + 8:at + 8 + length]
        if kind == b"tEXt" and data.startswith(wanted):
            return data[len(wanted):].decode("latin-1")
        if kind in (b"IDAT", b"IEND"):
            return None  # text chunks written before the image data are the ones looked at
        at += 12 + length
    return None


def _png_with_text(png: bytes, keyword: str, text: str) -> bytes:
    """``png`` with a tEXt chunk ``keyword: text`` right after its IHDR chunk (OpenCV writes none)."""
    ihdr_end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4  # signature, IHDR length/type, data, CRC
    data = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def _check_file(path: Path, kind: str) -> None:
    if not path.exists():
        raise ImageReadError(f"{kind} file not found: {path}")
    if not path.is_file():
        raise ImageReadError(f"{path} is not a file (a folder?); choose the {kind} file itself")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path} is empty (0 bytes); the file was not written completely")
