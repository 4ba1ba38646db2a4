#!/usr/bin/env bash
# Run Python inside the project's virtual environment, creating or updating it first.
#
#   bash scripts/venv_run.sh -m depth_addon mesh samples/chelsea.jpg -o out/chelsea.blend -o out/chelsea.glb
#   bash scripts/venv_run.sh -m pytest
#   DEPTH_ADDON_BPY=4.2.23 bash scripts/venv_run.sh -m pytest     # the same on another bpy (its own venv)
#
# The venv lives in .venv (.venv-bpy<version> for DEPTH_ADDON_BPY; DEPTH_ADDON_VENV overrides
# both). It is rebuilt when the requirement files change (their hash is stored in the venv).
# Versions: requirements/constraints.txt (numpy<2, bpy) and the "tested" pins of
# depth_addon/dependencies.toml (torch, torchvision, timm, OpenCV, Pillow), which the add-on's
# installer reads too. On Linux x86_64 torch comes from PyTorch's CPU index as 2.13.0+cpu:
# PyPI's Linux torch is the multi-GB CUDA build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bpy_default="$(sed -n 's/^bpy==//p' "$root/requirements/constraints.txt")"
bpy_version="${DEPTH_ADDON_BPY:-$bpy_default}"
if [ "$bpy_version" = "$bpy_default" ]; then default_venv="$root/.venv"; else default_venv="$root/.venv-bpy$bpy_version"; fi
venv="${DEPTH_ADDON_VENV:-$default_venv}"
stamp="$venv/.requirements.sha256"
cpu_index=""
if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then cpu_index="https://download.pytorch.org/whl/cpu"; fi
py="${DEPTH_ADDON_PYTHON:-}"
if [ -z "$py" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then py="$candidate"; break; fi
    done
fi
if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "depth_addon needs Python 3.11 (bpy $bpy_version is built for it); set DEPTH_ADDON_PYTHON=/path/to/python3.11" >&2
    exit 2
fi
# All pins in one constraints file: constraints.txt with the chosen bpy, plus the tested pins.
constraints="$(grep -v '^bpy==' "$root/requirements/constraints.txt"; echo "bpy==$bpy_version"
    "$py" - "$root/depth_addon/dependencies.toml" "$cpu_index" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    table = tomllib.load(fh)
for name, row in table.items():
    label = "+cpu" if name == "torch" and sys.argv[2] else ""
    print(f"{name}=={row['tested']}{label}")
PY
)"
want="$({ echo "$constraints"; cat "$root/requirements/dev.txt"; echo "$cpu_index"; } | sha256sum | cut -d' ' -f1)"

# Two runs at once (two terminals, parallel jobs on one checkout) must not build one venv together:
# the second waits here for the first's set-up (not for its run: the lock is let go before exec).
if command -v flock >/dev/null 2>&1; then
    mkdir -p "$(dirname "$venv")"
    exec 9>"$venv.lock"
    flock 9
fi
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Setting up the virtual environment in $venv (bpy $bpy_version, torch CPU, timm; first time only) ..." >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    echo "$constraints" > "$venv/constraints.txt"
    log="$venv/pip-install.log"
    extra_index="$cpu_index"
    if [ -n "$cpu_index" ] && ! "$py" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)" \
            "$cpu_index/torch/" 2>/dev/null; then
        # pip would retry it for every package (minutes); torch==...+cpu must then come from pip's other sources.
        echo "PyTorch's CPU index $cpu_index cannot be reached: looking for torch +cpu in pip's configured sources" >&2
        extra_index=""
    fi
    if ! { "$venv/bin/python" -m pip install --upgrade pip &&
           "$venv/bin/python" -m pip install ${extra_index:+--extra-index-url "$extra_index"} \
               -c "$venv/constraints.txt" -r "$root/requirements/dev.txt"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "Installing the requirements failed; the full log is $log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
    echo "Virtual environment ready ($(grep -c . <("$venv/bin/python" -m pip freeze)) packages)." >&2
fi
if command -v flock >/dev/null 2>&1; then flock -u 9; exec 9>&-; fi

cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" "$@"
