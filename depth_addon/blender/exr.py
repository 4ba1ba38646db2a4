"""A minimal OpenEXR encoder: one float32 ``Y`` channel, uncompressed scanlines (numpy only).

Used to pack the stored depth map into its Image datablock: Blender's own ``Image.pack()``
zip-compresses four RGBA channels, which costs tens of milliseconds for a 2 MP map; this
writes the exact float32 values in one copy and Blender reads them back bit for bit
(as a grey image, ``R = G = B = Y``). Layout per the OpenEXR file-layout spec: magic and
version, header attributes, the scanline offset table, then one block per row.
"""

from __future__ import annotations

import struct

import numpy as np

_MAGIC, _VERSION = 20000630, 2
_FLOAT = 2  # OpenEXR pixel type


def _attribute(name: str, kind: str, payload: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(payload)) + payload


def encode_gray_exr(values: np.ndarray) -> bytes:
    """(H, W) float -> bytes of an uncompressed single-channel (``Y``) float32 OpenEXR file, top row first."""
    values = np.asarray(values, dtype="<f4")
    height, width = values.shape
    window = struct.pack("<iiii", 0, 0, width - 1, height - 1)
    header = b"".join([
        struct.pack("<ii", _MAGIC, _VERSION),
        _attribute("channels", "chlist", b"Y\0" + struct.pack("<iB3xii", _FLOAT, 0, 1, 1) + b"\0"),
        _attribute("compression", "compression", b"\0"),
        _attribute("dataWindow", "box2i", window),
        _attribute("displayWindow", "box2i", window),
        _attribute("lineOrder", "lineOrder", b"\0"),
        _attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
        _attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0)),
        _attribute("screenWindowWidth", "float", struct.pack("<f", 1.0)),
        b"\0",
    ])
    row = np.dtype([("y", "<i4"), ("size", "<i4"), ("values", "<f4", (width,))])
    first_row = len(header) + 8 * height
    offsets = first_row + np.arange(height, dtype="<u8") * np.uint64(row.itemsize)
    rows = np.empty(height, dtype=row)
    rows["y"] = np.arange(height)
    rows["size"] = 4 * width
    rows["values"] = values
    return b"".join([header, offsets.astype("<u8").tobytes(), rows.tobytes()])
