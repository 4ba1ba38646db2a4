"""A minimal OpenEXR encoder: one float32 ``Y`` channel, uncompressed scanlines (numpy only).

Part of the bpy-free core: ``imageio.write_depth`` writes ``.exr`` depth files with it (with a
header attribute recording what they hold), and the Blender layer packs the stored depth map into
its Image datablock with it: Blender's own ``Image.pack()``
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


def encode_gray_exr(values: np.ndarray, strings: dict[str, str] | None = None) -> bytes:
    """(H, W) float -> bytes of an uncompressed single-channel (``Y``) float32 OpenEXR file, top row first.

    strings: extra header attributes of type ``string`` (e.g. what the values mean).
    """
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
        *(_attribute(name, "string", text.encode()) for name, text in (strings or {}).items()),
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


def read_exr_strings(header: bytes) -> dict[str, str]:
    """The ``string`` attributes of an OpenEXR file's header (from its first bytes; any compression).

    Stops quietly at the end of the given bytes or of the header; not an EXR -> {}.
    """
    if len(header) < 8 or struct.unpack_from("<i", header)[0] != _MAGIC:
        return {}
    found, pos = {}, 8
    while pos < len(header) and header[pos] != 0:
        name_end = header.find(b"\0", pos)
        kind_end = header.find(b"\0", name_end + 1)
        if name_end < 0 or kind_end < 0 or kind_end + 5 > len(header):  # the 4-byte size must be there
            break
        size = struct.unpack_from("<i", header, kind_end + 1)[0]
        start = kind_end + 5
        if header[name_end + 1:kind_end] == b"string" and start + size <= len(header):
            found[header[pos:name_end].decode(errors="replace")] = header[start:start + size].decode(errors="replace")
        pos = start + size
    return found
