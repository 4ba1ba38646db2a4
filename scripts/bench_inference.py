"""CPU time of one prediction per model type (MiDaS, Depth Anything V2): plain vs optimised path, and per precision.

    bash scripts/venv_run.sh scripts/bench_inference.py                      # all types with reference data
    bash scripts/venv_run.sh scripts/bench_inference.py --models midas_v21_small_256 dpt_hybrid_384
    bash scripts/venv_run.sh scripts/bench_inference.py --photo 1920x1080 --precisions fp32

Weights are the deterministic reference checkpoints rebuilt from ../shared/midas_reference and
../shared/dav2_reference (``tests/reference_checkpoints.py``: the tests' cache), so no official
download is needed; the timings do not depend on weight values. Per model type, in one process: the plain path (``optimize=False``, the
official computation) and the optimised one (``optimize=True``, the default) are loaded from
the same file, warmed up, then timed alternately ``--repeat`` rounds (the order flips every
round); the ratio is the median of the per-round ratios plain / optimised, each pair timed back
to back, with their range (``--clock cpu``: CPU seconds of the process instead of elapsed
seconds, for a machine shared with other jobs; use it with ``--threads 1``). Then each reduced precision of ``--precisions`` (optimised path),
timed alternately with the optimised fp32 path in the same way. The load average is printed
at the start, after each model and at the end.
A timed call is ``predict``: transform + forward + resize back, on a photo of the network's own
size (``--photo WxH`` for another). "max rel diff" is ``max|a - b| / max|b|`` against the plain
fp32 prediction. On a shared machine compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
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


CLOCK = time.perf_counter  # --clock cpu: time.process_time


def _load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def max_rel_diff(ours, reference) -> float:
    import numpy as np

    return float(np.abs(ours.astype(np.float64) - reference).max() / max(np.abs(reference).max(), 1e-30))


def alternate(calls: dict, repeat: int) -> tuple[dict, dict]:
    """Seconds (``CLOCK``) of each ``calls[name]()``, timed in turn ``repeat`` times after one warm-up each.

    The order flips every round (A B, B A, ...), so neither call always runs on the caches or
    the machine load the other left. Returns ``({name: [seconds per round]}, {name: result})``.
    """
    results = {name: call() for name, call in calls.items()}
    times = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(repeat):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = CLOCK()
            calls[name]()
            times[name].append(CLOCK() - start)
    return times, results


def paired_ratios(slow: list[float], fast: list[float]) -> list[float]:
    """``slow[i] / fast[i]`` per round: each pair ran back to back, under about the same load."""
    return [a / b for a, b in zip(slow, fast, strict=True)]


def bench(model_type: str, repeat: int, precisions: list[str], photo_size: tuple[int, int] | None) -> dict:
    from depth_addon.midas import load_model
    from depth_addon.midas.model import clear_cache
    from depth_addon.midas.transforms import network_input_size
    from reference_checkpoints import reference_checkpoint

    checkpoint = reference_checkpoint(model_type)
    clear_cache()
    start = time.perf_counter()
    plain = load_model(model_type, checkpoint=checkpoint, device="cpu", optimize=False)
    load_s = time.perf_counter() - start
    fast = load_model(model_type, checkpoint=checkpoint, device="cpu", optimize=True)
    spec = plain.spec
    width, height = photo_size or (spec.net_w, spec.net_h)
    rgb = photo_of_size(width, height)
    times, out = alternate({"plain": partial(plain.predict, rgb), "fast": partial(fast.predict, rgb)}, repeat)
    ratios = paired_ratios(times["plain"], times["fast"])
    row = {"model": model_type, "input": "x".join(map(str, network_input_size(width, height, spec))),
           "params_m": sum(p.numel() for p in plain.net.parameters()) / 1e6, "load_s": load_s,
           "plain_s": statistics.median(times["plain"]), "fast_s": statistics.median(times["fast"]),
           "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
           "diff": max_rel_diff(out["fast"], out["plain"]), "precisions": []}
    del plain
    for precision in precisions:
        if precision == "fp32":
            continue
        reduced = load_model(model_type, checkpoint=checkpoint, device="cpu", precision=precision)
        times, out_p = alternate({precision: partial(reduced.predict, rgb), "fp32": partial(fast.predict, rgb)},
                                 repeat)
        row["precisions"].append({"precision": precision, "s": statistics.median(times[precision]),
                                  "x_fp32": statistics.median(paired_ratios(times[precision], times["fp32"])),
                                  "error": max_rel_diff(out_p[precision], out["plain"])})
        del reduced
        clear_cache()
    clear_cache()
    return row


def main(argv=None) -> int:
    from depth_addon.midas import MODEL_TYPES
    from depth_addon.midas.registry import PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODEL_TYPES, metavar="TYPE",
                        help="model types to time (default: all with reference data)")
    parser.add_argument("--repeat", type=int, default=3, help="timed predictions per variant (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="precisions to time (default: all); fp16/bf16 are compared with fp32")
    parser.add_argument("--photo", default=None, metavar="WxH",
                        help="photo size to predict on (default: each network's own input size)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed seconds; cpu: this process's CPU seconds (all its threads), "
                             "which other jobs on a shared machine disturb far less than the wall clock")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    photo_size = tuple(int(v) for v in args.photo.lower().split("x")) if args.photo else None

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from reference_checkpoints import REFERENCE_FOLDERS

    models = args.models or [t for t in MODEL_TYPES if any((f / f"{t}.npz").is_file() for f in REFERENCE_FOLDERS)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, median of {args.repeat}, "
          f"photo {args.photo or 'at network size'}, {args.clock} clock; load average at start {_load()}")
    rows = []
    for model_type in models:
        try:
            rows.append(bench(model_type, args.repeat, args.precisions, photo_size))
        except Exception as exc:  # report and go on: one broken model must not hide the others' timings
            print(f"{model_type}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        row = rows[-1]
        reduced = "".join(f", {p['precision']} {p['s']:.3f} s ({p['error']:.2%})" for p in row["precisions"])
        print(f"  {row['model']}: plain {row['plain_s']:.3f} s, optimised {row['fast_s']:.3f} s "
              f"(x{row['ratio']:.2f}, rounds {row['ratio_min']:.2f}-{row['ratio_max']:.2f}, diff {row['diff']:.1e})"
              f"{reduced} [load {_load()}]", file=sys.stderr, flush=True)
    if not rows:
        return 1
    print(f"load average at the end {_load()} (1/5/15 min; {os.cpu_count()} CPUs)")
    print("ratio: median over the rounds of plain / optimised, each pair timed back to back; "
          "rounds: its smallest and largest")
    print(f"{'model':<24} {'input':>8} {'params M':>9} {'load s':>7} {'plain s':>8} {'optimised s':>12} "
          f"{'ratio':>6} {'rounds':>10} {'max rel diff':>13}")
    for r in rows:
        print(f"{r['model']:<24} {r['input']:>8} {r['params_m']:>9.1f} {r['load_s']:>7.2f} {r['plain_s']:>8.3f} "
              f"{r['fast_s']:>12.3f} {r['ratio']:>6.2f} {r['ratio_min']:>4.2f}-{r['ratio_max']:<5.2f} "
              f"{r['diff']:>13.1e}")
    faster = sum(r["ratio"] >= 1.3 for r in rows)
    print(f"optimised >= 1.3x faster: {faster} of {len(rows)} model types; "
          f"largest difference {max(r['diff'] for r in rows):.1e}")
    if any(r["precisions"] for r in rows):
        print(f"\n{'model':<24} {'precision':>9} {'s':>8} {'x fp32':>7} {'max rel error vs fp32':>22}")
        for r in rows:
            for p in r["precisions"]:
                print(f"{r['model']:<24} {p['precision']:>9} {p['s']:>8.3f} {p['x_fp32']:>7.2f} "
                      f"{p['error']:>22.2%}")
    return 0 if len(rows) == len(models) else 1


if __name__ == "__main__":
    sys.exit(main())
