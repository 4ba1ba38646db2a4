"""Photos in, depth pictures in and out (Pillow / OpenCV; no torch, no Blender)."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from conftest import run_python
from depth_addon.errors import DepthAddonError, ImageReadError
from depth_addon.imageio import (
    COLORMAPS,
    exif_horizontal_fov,
    import_cv2,
    normalize_depth,
    read_depth,
    read_image,
    write_depth,
)

pytestmark = pytest.mark.pure


def _quadrants(h=40, w=60) -> np.ndarray:
    """(h, w, 3) uint8 with four distinct solid quadrants, so orientation errors show."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[: h // 2, : w // 2] = (255, 0, 0)
    rgb[: h // 2, w // 2 :] = (0, 255, 0)
    rgb[h // 2 :, : w // 2] = (0, 0, 255)
    rgb[h // 2 :, w // 2 :] = (255, 255, 0)
    return rgb


def _exif(orientation=None, **exif_ifd) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    for key, value in exif_ifd.items():
        sub[int(key.removeprefix("t"), 16)] = value
    return exif


# --- read_image ------------------------------------------------------------------------------


def test_rgb_png_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize(("orientation", "turns"), [(1, 0), (3, 2), (6, -1), (8, 1)])
def test_exif_orientation_applied(tmp_path, orientation, turns):
    rgb = _quadrants()
    Image.fromarray(rgb).save(tmp_path / "o.png", exif=_exif(orientation))
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), np.rot90(rgb, turns))


@pytest.mark.parametrize(("orientation", "turns"), [(6, -1), (8, 1)])
def test_exif_orientation_applied_to_jpeg(tmp_path, orientation, turns):
    rgb = _quadrants()
    Image.fromarray(rgb).save(tmp_path / "o.jpg", exif=_exif(orientation), quality=95)
    out = read_image(tmp_path / "o.jpg")
    assert out.shape == (60, 40, 3)
    assert np.abs(out.astype(int) - np.rot90(rgb, turns)).mean() < 4


def test_alpha_dropped(tmp_path):
    rgba = np.dstack([_quadrants(), np.full((40, 60), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), _quadrants())
    gray = np.arange(40 * 60, dtype=np.uint32).reshape(40, 60).astype(np.uint8)
    Image.fromarray(np.dstack([gray, gray]), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), np.dstack([gray] * 3))


def test_grayscale_replicated(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), np.dstack([gray] * 3))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_scaled_to_8_bit(tmp_path, suffix):
    values = np.array([[0, 257, 32768], [65535, 1000, 60000]], np.uint16)
    Image.fromarray(values).save(tmp_path / f"i16{suffix}")
    out = read_image(tmp_path / f"i16{suffix}")
    expected = np.round(values / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out, np.dstack([expected] * 3))


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    im.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_image(tmp_path / "p.png")
    assert out.shape == (2, 4, 3)
    np.testing.assert_array_equal(out[0, 0], (10, 20, 30))
    np.testing.assert_array_equal(out[0, 1], (200, 100, 50))


def test_cmyk_converted(tmp_path):
    cmyk = np.zeros((2, 2, 4), np.uint8)
    cmyk[0, 1] = (255, 0, 0, 0)  # cyan
    cmyk[1, 0] = (0, 0, 0, 255)  # black
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.tif")
    out = read_image(tmp_path / "c.tif")
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(out[0, 1], (0, 255, 255))
    np.testing.assert_array_equal(out[1, 0], (0, 0, 0))


def test_bad_files_name_file_and_problem(tmp_path):
    cases = {}
    cases["missing.png"] = "not found"
    (tmp_path / "empty.jpg").write_bytes(b"")
    cases["empty.jpg"] = "empty"
    (tmp_path / "text.png").write_text("this is not a picture\n")
    cases["text.png"] = "not an image"
    Image.fromarray(_quadrants(400, 600)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    cases["truncated.jpg"] = "truncated"
    (tmp_path / "folder.png").mkdir()
    cases["folder.png"] = "not a file"
    for name, problem in cases.items():
        with pytest.raises(ImageReadError, match=problem) as info:
            read_image(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


@pytest.mark.slow
def test_huge_image_is_not_refused(tmp_path):
    # 90.25 MP: above Pillow's default 89.5 MP limit, where it would warn (and at 2x refuse).
    side = 9500
    Image.new("L", (side, side), 200).save(tmp_path / "huge.png", compress_level=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        out = read_image(tmp_path / "huge.png")
    assert out.shape == (side, side, 3)
    assert out[side - 1, side - 1, 2] == 200


# --- exif_horizontal_fov -------------------------------------------------------------------


def _fov(extent_mm, focal_mm):
    return math.degrees(2 * math.atan(extent_mm / 2 / focal_mm))


def test_fov_from_35mm_equivalent_landscape(tmp_path):
    Image.new("RGB", (60, 40)).save(tmp_path / "l.jpg", exif=_exif(1, tA405=36))
    assert exif_horizontal_fov(tmp_path / "l.jpg") == pytest.approx(_fov(36, 36))  # 53.13 deg


def test_fov_from_35mm_equivalent_4_3_landscape_uses_long_side(tmp_path):
    Image.new("RGB", (80, 60)).save(tmp_path / "l.jpg", exif=_exif(None, tA405=26))
    assert exif_horizontal_fov(tmp_path / "l.jpg") == pytest.approx(_fov(36, 26))


@pytest.mark.parametrize("orientation", [6, 8])
def test_fov_portrait_after_orientation(tmp_path, orientation):
    # Stored 60x40 but displayed 40x60: the 36 mm side is vertical, horizontal is 24 mm.
    Image.new("RGB", (60, 40)).save(tmp_path / "p.jpg", exif=_exif(orientation, tA405=36))
    assert exif_horizontal_fov(tmp_path / "p.jpg") == pytest.approx(_fov(24, 36))


def test_fov_portrait_stored_upright(tmp_path):
    Image.new("RGB", (30, 40)).save(tmp_path / "p.jpg", exif=_exif(1, tA405=50))
    assert exif_horizontal_fov(tmp_path / "p.jpg") == pytest.approx(_fov(27, 50))


def test_fov_from_focal_length_and_focal_plane_resolution(tmp_path):
    # 6000 px at 1000 px/mm = 6 mm wide sensor, 4 mm lens.
    exif = _exif(1, t920A=IFDRational(4, 1), tA20E=IFDRational(1000, 1), tA210=4, tA002=6000, tA003=4000)
    Image.new("RGB", (60, 40)).save(tmp_path / "s.jpg", exif=exif)
    assert exif_horizontal_fov(tmp_path / "s.jpg") == pytest.approx(_fov(6, 4))
    exif[0x0112] = 6  # displayed portrait: the 4 mm side is horizontal
    Image.new("RGB", (60, 40)).save(tmp_path / "r.jpg", exif=exif)
    assert exif_horizontal_fov(tmp_path / "r.jpg") == pytest.approx(_fov(4, 4))


def test_fov_unknown(tmp_path):
    Image.new("RGB", (60, 40)).save(tmp_path / "n.jpg")
    assert exif_horizontal_fov(tmp_path / "n.jpg") is None
    Image.new("RGB", (60, 40)).save(tmp_path / "f.jpg", exif=_exif(1, t920A=IFDRational(4, 1)))
    assert exif_horizontal_fov(tmp_path / "f.jpg") is None  # focal length but no sensor size
    (tmp_path / "t.png").write_text("text")
    assert exif_horizontal_fov(tmp_path / "t.png") is None
    assert exif_horizontal_fov(tmp_path / "missing.jpg") is None


# --- depth files -----------------------------------------------------------------------------


def test_read_depth_8_and_16_bit_png(tmp_path):
    values8 = np.array([[0, 51], [255, 128]], np.uint8)
    Image.fromarray(values8).save(tmp_path / "d8.png")
    np.testing.assert_allclose(read_depth(tmp_path / "d8.png"), values8 / 255.0, rtol=1e-6)
    values16 = np.array([[0, 1000], [65535, 30000]], np.uint16)
    Image.fromarray(values16).save(tmp_path / "d16.png")
    out = read_depth(tmp_path / "d16.png")
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_allclose(out, values16 / 65535.0, rtol=1e-6)


def test_read_depth_multichannel_takes_first_channel(tmp_path):
    rgb = np.zeros((3, 5, 3), np.uint8)
    rgb[..., 0] = 255
    rgb[..., 1] = 10
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_depth(tmp_path / "c.png"), np.ones((3, 5), np.float32))
    np.save(tmp_path / "c.npy", np.stack([np.full((3, 5), 2.5), np.zeros((3, 5))], axis=-1))
    np.testing.assert_array_equal(read_depth(tmp_path / "c.npy"), np.full((3, 5), 2.5, np.float32))


@pytest.mark.parametrize("suffix", [".npy", ".exr", ".tif"])
def test_float_depth_round_trip_keeps_values(tmp_path, suffix):
    depth = np.random.default_rng(1).normal(5.0, 40.0, (31, 47)).astype(np.float32)
    write_depth(tmp_path / f"d{suffix}", depth)
    out = read_depth(tmp_path / f"d{suffix}")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, depth)


def test_read_npy_keeps_integers_and_drops_batch_axis(tmp_path):
    values = np.array([[0, 7], [65535, 300]], np.uint16)
    np.save(tmp_path / "u.npy", values)
    np.testing.assert_array_equal(read_depth(tmp_path / "u.npy"), values.astype(np.float32))
    np.save(tmp_path / "b.npy", values[None].astype(np.float64))
    np.testing.assert_array_equal(read_depth(tmp_path / "b.npy"), values.astype(np.float32))


def test_read_float_tiff_from_pillow(tmp_path):
    depth = np.linspace(-3, 700, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(depth, "F").save(tmp_path / "p.tif")
    np.testing.assert_array_equal(read_depth(tmp_path / "p.tif"), depth)


def test_read_depth_errors(tmp_path):
    (tmp_path / "empty.exr").write_bytes(b"")
    (tmp_path / "text.png").write_text("no picture")
    (tmp_path / "junk.exr").write_bytes(b"v/1\x01" + b"\x00" * 40)
    np.save(tmp_path / "line.npy", np.zeros(5))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    cases = {"missing.png": "not found", "empty.exr": "empty", "text.png": "cannot be decoded",
             "junk.exr": "cannot be decoded", "line.npy": "shape", "bad.npy": ".npy"}
    for name, problem in cases.items():
        with pytest.raises(ImageReadError, match=problem) as info:
            read_depth(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


def test_write_depth_png_is_16_bit_lighter_nearer(tmp_path):
    depth = np.array([[1.0, 2.0, 3.0], [np.nan, 5.0, 11.0]], np.float32)  # inverse depth
    write_depth(tmp_path / "sub" / "d.png", depth)
    with Image.open(tmp_path / "sub" / "d.png") as im:
        assert im.mode == "I;16"
        stored = np.asarray(im)
    assert stored[1, 2] == 65535  # largest inverse depth = nearest = white
    assert stored[0, 0] == 0
    assert stored[1, 0] == 0  # not finite
    assert stored[0, 1] == round(65535 * 0.1)
    # read back in the recorded value range (the PNG's text chunk), 1..11
    np.testing.assert_allclose(read_depth(tmp_path / "sub" / "d.png"), 1 + 10 * normalize_depth(depth), atol=10 / 65535)


def test_write_depth_constant_is_black(tmp_path):
    write_depth(tmp_path / "c.png", np.full((4, 4), 3.0))
    with Image.open(tmp_path / "c.png") as im:
        np.testing.assert_array_equal(np.asarray(im), np.zeros((4, 4)))
    np.testing.assert_array_equal(read_depth(tmp_path / "c.png"), np.full((4, 4), 3.0))  # the recorded range


@pytest.mark.parametrize("colormap", ["inferno", "turbo"])
def test_write_depth_colormap_is_8_bit_rgb(tmp_path, colormap):
    cv2 = import_cv2()
    depth = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    write_depth(tmp_path / "c.png", depth, colormap=colormap)
    with Image.open(tmp_path / "c.png") as im:
        assert im.mode == "RGB"
        stored = np.asarray(im)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], getattr(cv2, f"COLORMAP_{colormap.upper()}"))
    np.testing.assert_array_equal(stored.reshape(256, 3), lut[:, 0, ::-1])


def test_every_colormap_exists_in_opencv():
    cv2 = import_cv2()
    assert [name for name in COLORMAPS if not hasattr(cv2, f"COLORMAP_{name.upper()}")] == []


def test_write_depth_rejects_bad_requests(tmp_path):
    depth = np.zeros((2, 2), np.float32)
    with pytest.raises(DepthAddonError, match=r"\.jpg"):
        write_depth(tmp_path / "d.jpg", depth)
    with pytest.raises(DepthAddonError, match="without extension"):
        write_depth(tmp_path / "d", depth)
    with pytest.raises(DepthAddonError, match="unknown colormap"):
        write_depth(tmp_path / "d.png", depth, colormap="sunset")
    with pytest.raises(DepthAddonError, match=".png output only"):
        write_depth(tmp_path / "d.npy", depth, colormap="inferno")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX file size limits (RLIMIT_FSIZE)")
@pytest.mark.parametrize("suffix", [".npy", ".png"])
def test_failed_write_leaves_no_half_file_and_keeps_the_old_one(tmp_path, suffix):
    """A write that fails midway (here: a file size limit, as on a full disk) changes nothing."""
    out = tmp_path / f"d{suffix}"
    out.write_bytes(b"the previous depth file")
    code = (
        "import resource, signal, sys, numpy as np\n"
        "from depth_addon.imageio import write_depth\n"
        "from depth_addon.errors import DepthAddonError\n"
        "depth = np.random.default_rng(0).random((400, 400))\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail with EFBIG instead of being killed\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        "try:\n"
        "    write_depth(sys.argv[1], depth)\n"
        "except DepthAddonError as exc:\n"
        "    print(exc)\n"
    )
    result = run_python(out, code=code, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"cannot write {out}")
    assert out.read_bytes() == b"the previous depth file"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.pure
def test_exr_header_cut_anywhere_reads_quietly(tmp_path):
    """read_exr_strings reads the first bytes of a file: a cut inside any attribute stops it, never raises."""
    from depth_addon.exr import read_exr_strings

    data = write_depth(tmp_path / "d.exr", np.ones((4, 5), np.float32), kind="metric").read_bytes()
    whole = read_exr_strings(data)
    assert whole  # the depth record is there
    for cut in range(len(data[:400])):
        part = read_exr_strings(data[:cut])
        assert all(whole[key] == value for key, value in part.items()), cut


@pytest.mark.parametrize("suffix", [".png", ".exr", ".tif", ".npy"])
def test_depth_files_record_what_they_hold(tmp_path, suffix):
    """In the format's own metadata: PNG tEXt, EXR string attribute, TIFF ImageDescription, .npy sidecar."""
    import json

    from depth_addon.exr import read_exr_strings
    from depth_addon.imageio import DEPTH_TAG, depth_file_kind, read_depth_tags

    depth = np.linspace(0.5, 7.25, 12 * 9, dtype=np.float32).reshape(9, 12)
    path = write_depth(tmp_path / f"d{suffix}", depth, kind="inverse", model="dpt_hybrid_384")
    if suffix == ".png":
        raw = Image.open(path).text[DEPTH_TAG]
    elif suffix == ".exr":
        raw = read_exr_strings(path.read_bytes())[DEPTH_TAG]
    elif suffix == ".tif":
        raw = Image.open(path).tag_v2[270]
    else:
        raw = (tmp_path / "d.npy.json").read_text()
    expected = {"depth_addon": 1, "kind": "inverse", "model": "dpt_hybrid_384"}
    if suffix == ".png":
        expected["range"] = [0.5, 7.25]
    assert json.loads(raw) == expected and read_depth_tags(path) == expected
    assert depth_file_kind(path) == ("inverse", None)
    tolerance = (7.25 - 0.5) / 65535 if suffix == ".png" else 0
    np.testing.assert_allclose(read_depth(path), depth, atol=tolerance, rtol=0)


def test_colour_mapped_preview_is_not_read_as_depth(tmp_path):
    path = write_depth(tmp_path / "preview.png", np.eye(8, dtype=np.float32), colormap="inferno")
    with pytest.raises(ImageReadError, match="colour-mapped preview"):
        read_depth(path)


@pytest.mark.blender
@pytest.mark.parametrize(("name", "kind"), [("m.png", "metric"), ("i.png", "inverse"), ("m.exr", "metric"),
                                            ("m.tif", "metric"), ("m.npy", "metric")])
def test_blender_reads_depth_files_as_imageio_does(tmp_path, name, kind):
    """Stock Blender (no OpenCV) reads depth with its own decoder: the file's record (range) applies the same."""
    from depth_addon.blender import pictures

    depth = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).repeat(4, 0).repeat(4, 1)
    path = write_depth(tmp_path / name, depth, kind=kind)
    np.testing.assert_allclose(pictures.read_depth(path), read_depth(path), rtol=0, atol=1e-6)
    np.testing.assert_allclose(pictures.read_depth(path), depth, rtol=0, atol=1e-4)
