"""A minimal PNG encoder: 8-bit RGB, rows unfiltered, deflate without compression (numpy + zlib only).

Part of the bpy-free core, like ``exr.py``: the Blender layer packs the fill's extended photo with
it. OpenCV 4.11 and Pillow always run libpng/zlib's per-row filter choice and deflate; at
1920 x 1080 that costs 55-75 ms even at compression level 0 (150-200 ms at level 1 on a real
photo), more than the rest of the fill's texture work. Stored deflate blocks are one copy and a
checksum (~10 ms); the price is size: 3 bytes a pixel (6.2 MB at 1920 x 1080). Layout per the PNG
specification: signature, IHDR, one IDAT holding a zlib stream (filter type 0 before each row), IEND.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(payload, zlib.crc32(kind)))


def encode_rgb_png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8, top row first -> bytes of an uncompressed 8-bit RGB PNG file."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 pixels, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    rows = np.empty((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = rgb.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, colour type 2 (RGB)
    return b"".join([_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(rows, 0)),
                     _chunk(b"IEND", b"")])
