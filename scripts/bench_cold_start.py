"""Cold start of ``python -m depth_addon depth`` against a bare ``python -c "import torch"``, in one run.

    bash scripts/venv_run.sh scripts/bench_cold_start.py [--repeat 5] [--model midas_v21_small_256]
    bash scripts/venv_run.sh scripts/bench_cold_start.py --blender     # also: 2 runs in one bpy process
    bash scripts/venv_run.sh scripts/bench_cold_start.py --threads 1   # on a machine shared with other jobs

Fresh processes, alternating (torch, depth, torch, depth, ...), median of ``--repeat`` each; the
ratio is the target (<= 2.0). The weights are the deterministic reference checkpoint (same cache
as the tests), so nothing is downloaded. Then, in one more process, where the time goes
(imports, load, predict, write) and what a second prediction in the same process costs (the
loaded model is kept: ``load_model``'s cache). ``--blender`` does the same through
``api.image_to_object`` in the bpy module, as the add-on does between two imports in one
Blender session. On a shared machine compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
PHOTO = REPO / "samples" / "chelsea.jpg"

_PHASES = r"""
import json, sys, time
times = {}
start = time.perf_counter()
import torch
times["import torch"] = time.perf_counter() - start
mark = time.perf_counter()
from depth_addon.midas.nets._timm import import_timm, timm_module
import_timm()
timm_module("layers")
times["import timm (private: timm.layers)"] = time.perf_counter() - mark
from depth_addon import imageio
from depth_addon.midas import load_model, model as model_module
rgb = imageio.read_image(sys.argv[1])
spec = model_module.get_spec(sys.argv[3])
mark = time.perf_counter()
net = model_module.build_network_for_loading(spec)
times["build network"] = time.perf_counter() - mark
mark = time.perf_counter()
state_dict = model_module.read_checkpoint(model_module.Path(sys.argv[2]))
times["read checkpoint"] = time.perf_counter() - mark
mark = time.perf_counter()
model_module.load_official_state_dict(net, state_dict, spec, model_module.Path(sys.argv[2]))
times["load_official_state_dict"] = time.perf_counter() - mark
del net, state_dict
mark = time.perf_counter()
model = load_model(sys.argv[3], checkpoint=sys.argv[2], device="cpu")
depth = model.predict(rgb)
times["load_model + first predict"] = time.perf_counter() - mark
mark = time.perf_counter()
depth = load_model(sys.argv[3], checkpoint=sys.argv[2], device="cpu").predict(rgb)
times["second run, same process (cached model)"] = time.perf_counter() - mark
mark = time.perf_counter()
imageio.write_depth(sys.argv[4], depth)
times["write depth png"] = time.perf_counter() - mark
loaded = [m for m in ("timm", "torchvision", "torch._dynamo") if m in sys.modules]
print("modules loaded:", ", ".join(loaded) or "none of timm, torchvision, torch._dynamo", file=sys.stderr)
print(json.dumps(times))
"""

_BLENDER = r"""
import json, sys, time
import bpy
from depth_addon import api
times = {}
for run in ("first", "second"):
    mark = time.perf_counter()
    api.image_to_object(sys.argv[1], model=sys.argv[3], weights=sys.argv[2], device="cpu")
    times[f"api.image_to_object, {run} run in one bpy process"] = time.perf_counter() - mark
print(json.dumps(times))
"""


def timed_run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def phases(script: str, checkpoint: Path, model: str, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", script, str(PHOTO), str(checkpoint), model, str(out)],
                          check=True, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    for line in done.stderr.splitlines():
        if line.startswith("modules loaded:"):
            print(f"  ({line})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from reference_checkpoints import reference_checkpoint  # the tests' checkpoint cache

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes of each kind (median)")
    parser.add_argument("--model", default="midas_v21_small_256")
    parser.add_argument("--blender", action="store_true", help="also time two runs in one bpy process")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for every timed process (default: torch's own choice); on a "
                             "machine shared with other jobs, torch's threads wait for each other at every "
                             "operation, and 1 thread is what measures this command rather than the others")
    args = parser.parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the processes timed below

    checkpoint = reference_checkpoint(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "d.png"
        bare = [sys.executable, "-c", "import torch"]
        depth = [sys.executable, "-m", "depth_addon", "depth", str(PHOTO), "-o", str(out), "--model", args.model,
                 "--weights", str(checkpoint), "--device", "cpu", "-q"]
        timed_run(depth)  # warm the page cache and .pyc files for both
        times = {"torch": [], "depth": []}
        for _ in range(args.repeat):
            times["torch"].append(timed_run(bare))
            times["depth"].append(timed_run(depth))
        torch_s, depth_s = statistics.median(times["torch"]), statistics.median(times["depth"])
        print(f"fresh processes, alternating, median of {args.repeat}, "
              f"{f'OMP_NUM_THREADS={args.threads}' if args.threads else 'torch default threads'} (load average now: "
              f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}, 1/5/15 min):")
        print(f"  python -c 'import torch'                       {torch_s:6.2f} s")
        print(f"  python -m depth_addon depth ({args.model})  {depth_s:6.2f} s")
        print(f"  cold start ratio                               {depth_s / torch_s:6.2f} x  (target <= 2.0)")
        print("where the time goes (one process):")
        for name, seconds in phases(_PHASES, checkpoint, args.model, out).items():
            print(f"  {name:<44} {seconds:6.3f} s")
        if args.blender:
            for name, seconds in phases(_BLENDER, checkpoint, args.model, out).items():
                print(f"  {name:<44} {seconds:6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
