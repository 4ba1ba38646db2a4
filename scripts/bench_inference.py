"""CPU time of one prediction per model type (MiDaS, Depth Anything V2), at each network's own input size.

    bash scripts/venv_run.sh scripts/bench_inference.py                      # all types with reference data
    bash scripts/venv_run.sh scripts/bench_inference.py --models midas_v21_small_256 dpt_hybrid_384

Weights are the deterministic reference checkpoints rebuilt from ../shared/midas_reference and
../shared/dav2_reference (``tests/reference_checkpoints.py``: the tests' cache), so no official
download is needed; the timings do not depend on
weight values. Each model: load, one warm-up prediction, then the median of ``--repeat``
timed ``predict`` calls (transform + forward + resize back) on a photo of the network's size.
The last column is the time relative to the fastest model of this run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the tests' reference-checkpoint cache, shared with them


def photo_of_size(width: int, height: int):
    import cv2
    import numpy as np

    bgr = cv2.imread(str(REPO / "samples" / "chelsea.jpg"))
    if bgr is None:
        return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (width, height), interpolation=cv2.INTER_AREA)


def bench(model_type: str, repeat: int) -> dict:
    from depth_addon.midas import load_model
    from depth_addon.midas.model import clear_cache
    from depth_addon.midas.transforms import network_input_size
    from reference_checkpoints import reference_checkpoint

    checkpoint = reference_checkpoint(model_type)
    start = time.perf_counter()
    model = load_model(model_type, checkpoint=checkpoint, device="cpu")
    load_s = time.perf_counter() - start
    spec = model.spec
    rgb = photo_of_size(spec.net_w, spec.net_h)
    model.predict(rgb)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        model.predict(rgb)
        times.append(time.perf_counter() - start)
    params = sum(p.numel() for p in model.net.parameters())
    clear_cache()
    return {"model": model_type, "input": "x".join(map(str, network_input_size(spec.net_w, spec.net_h, spec))),
            "params_m": params / 1e6, "load_s": load_s, "predict_s": statistics.median(times)}


def main(argv=None) -> int:
    from depth_addon.midas import MODEL_TYPES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODEL_TYPES, metavar="TYPE",
                        help="model types to time (default: all with reference data)")
    parser.add_argument("--repeat", type=int, default=3, help="timed predictions per model (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from reference_checkpoints import REFERENCE_FOLDERS

    models = args.models or [t for t in MODEL_TYPES if any((f / f"{t}.npz").is_file() for f in REFERENCE_FOLDERS)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, median of {args.repeat}")
    rows = []
    for model_type in models:
        try:
            rows.append(bench(model_type, args.repeat))
        except Exception as exc:  # report and go on: one broken model must not hide the others' timings
            print(f"{model_type}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        row = rows[-1]
        print(f"  {row['model']}: {row['predict_s']:.3f} s", file=sys.stderr, flush=True)
    if not rows:
        return 1
    fastest = min(r["predict_s"] for r in rows)
    print(f"{'model':<40} {'input':>8} {'params M':>9} {'load s':>7} {'predict s':>10} {'x fastest':>10}")
    for r in rows:
        print(f"{r['model']:<40} {r['input']:>8} {r['params_m']:>9.1f} {r['load_s']:>7.2f} "
              f"{r['predict_s']:>10.3f} {r['predict_s'] / fastest:>10.2f}")
    return 0 if len(rows) == len(models) else 1


if __name__ == "__main__":
    sys.exit(main())
