#!/usr/bin/env bash
# Run Python inside the project's virtual environment, creating or updating it first.
#
#   bash scripts/venv_run.sh -m depth_addon mesh samples/chelsea.jpg -o out/chelsea.blend -o out/chelsea.glb
#   bash scripts/venv_run.sh -m pytest
#
# The venv lives in .venv (override with DEPTH_ADDON_VENV). It is rebuilt when the
# requirement files change (their hash is stored in the venv). torch, numpy and bpy are
# pinned through requirements/constraints.txt so pip never resolves a CUDA torch or numpy 2.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DEPTH_ADDON_VENV:-$root/.venv}"
stamp="$venv/.requirements.sha256"
want="$(cat "$root/requirements/constraints.txt" "$root/requirements/dev.txt" | sha256sum | cut -d' ' -f1)"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    py="${DEPTH_ADDON_PYTHON:-}"
    if [ -z "$py" ]; then
        for candidate in python3.11 python3; do
            if command -v "$candidate" >/dev/null 2>&1; then py="$candidate"; break; fi
        done
    fi
    if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
        echo "depth_addon needs Python 3.11 (bpy 5.0.1 is built for it); set DEPTH_ADDON_PYTHON=/path/to/python3.11" >&2
        exit 2
    fi
    echo "Setting up the virtual environment in $venv (bpy, torch CPU, timm; first time only) ..." >&2
    "$py" -m venv "$venv"
    log="$venv/pip-install.log"
    if ! { "$venv/bin/python" -m pip install --upgrade pip &&
           "$venv/bin/python" -m pip install -c "$root/requirements/constraints.txt" -r "$root/requirements/dev.txt"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "Installing the requirements failed; the full log is $log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
    echo "Virtual environment ready ($(grep -c . <("$venv/bin/python" -m pip freeze)) packages)." >&2
fi

cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" "$@"
