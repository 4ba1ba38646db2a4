"""Make ``samples/chelsea_depth.png``: a SYNTHETIC relative depth picture for ``samples/chelsea.jpg``.

It is not a network's output and not measured: a hand-placed dome for the cat's head with a
bump for the nose, a body near the bottom left and a far background plane, drawn to match the
451 x 300 photo roughly. It lets the README's offline main job run without MiDaS weights:

    bash scripts/venv_run.sh -m depth_addon mesh samples/chelsea.jpg \
        --depth samples/chelsea_depth.png --depth-kind relative -o out/chelsea.blend

Format: 16-bit grayscale PNG, same size as the photo, lighter = nearer (like MiDaS's
inverse depth written by ``depth_addon.imageio.write_depth``). Re-run this script to rebuild it:

    bash scripts/venv_run.sh scripts/make_sample_depth.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 451, 300


def synthetic_nearness(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """(H, W) float64 nearness in [0, 1], 1 = nearest."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    background = 0.08 + 0.12 * y / height                   # far wall, a little nearer at the bottom
    head = np.sqrt(np.clip(1 - ((x - 215) / 200) ** 2 - ((y - 165) / 185) ** 2, 0, None))
    nose = np.exp(-((x - 262) ** 2 + (y - 238) ** 2) / (2 * 28.0**2))
    body = np.clip(1 - ((x - 60) / 160) ** 2 - ((y - 330) / 140) ** 2, 0, None) ** 0.5
    return np.maximum.reduce([background, 0.3 + 0.55 * head + 0.15 * nose * (head > 0), 0.25 + 0.4 * body])


def main() -> None:
    nearness = synthetic_nearness()
    nearness = (nearness - nearness.min()) / (nearness.max() - nearness.min())
    out = ROOT / "samples" / "chelsea_depth.png"
    Image.fromarray(np.round(nearness * 65535).astype(np.uint16)).save(out)
    print(f"wrote {out} ({WIDTH}x{HEIGHT}, 16-bit, lighter = nearer, synthetic)")


if __name__ == "__main__":
    main()
