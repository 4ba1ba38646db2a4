"""timm's own code, imported privately: only the modules the depth networks use, without torchvision.

Why: ``import timm`` runs ``timm/__init__``, which imports all ~100 of timm's model modules,
``timm.data`` (torchvision's transforms and datasets) and, through ``timm.layers``,
``torchvision``, whose ``__init__`` imports ``torch._dynamo``: about 2.3 s of a cold start whose
network needs a few of those modules (measured: ``scripts/bench_cold_start.py``). The depth
networks need ``timm.layers``, timm's model builder and registry, the one model module that
defines each backbone, and from torchvision only ``FrozenBatchNorm2d`` (``torchvision.ops.misc``).

How: the modules are loaded from timm's installed files (and torchvision's ``ops/misc.py`` and
``utils.py``) under the private package name :data:`PRIVATE`, e.g. ``timm.layers`` as
``depth_addon_private_timm.timm.layers``. Their absolute ``timm`` / ``torchvision`` imports
are resolved inside that package by a module-local ``__import__`` (each loaded module gets
its own ``__builtins__`` mapping; Python's global import machinery is not touched), and the
packages whose ``__init__`` would pull in the rest (``timm``, ``timm.models``, ``timm.data``,
``torchvision``, ``torchvision.ops``) are loaded *hollow*: their submodules load on demand, and
the names their ``__init__`` would re-export are looked up in the submodules listed in
:data:`_HOLLOW`. Inside the private package the optional imports timm guards with
``try/except ImportError`` (torchvision's FX feature extraction, ``huggingface_hub``) fail,
which timm handles (no FX feature extraction, no hub downloads: neither is used here).

Nothing global changes: ``sys.modules["timm"]`` and ``sys.modules["torchvision"]`` are never
set or altered, so other code in the same Python (Blender's other add-ons) imports the real
timm and torchvision as if this module did not exist; the private modules live only under
:data:`PRIVATE`, and their classes (the network's modules) are timm's own code.
"""

from __future__ import annotations

import builtins
import importlib.util
import re
import sys
import threading
import types
from pathlib import Path

PRIVATE = "depth_addon_private_timm"
_REDIRECTED = ("timm", "torchvision")  # absolute imports of these resolve inside PRIVATE

# Packages loaded without running their __init__: the names it would export, by submodule.
_HOLLOW: dict[str, tuple[str, ...]] = {
    "timm": ("version",),
    "timm.models": ("_factory", "_registry"),
    "timm.data": ("constants",),
    "torchvision": (),
    "torchvision.ops": ("misc",),
}
# Of torchvision, only these load (FrozenBatchNorm2d and its helpers); anything else is absent.
_TORCHVISION_MODULES = frozenset({"torchvision", "torchvision.ops", "torchvision.ops.misc", "torchvision.utils"})
_ABSENT = frozenset({"huggingface_hub"})  # optional for timm; its import costs ~0.2 s

_lock = threading.RLock()
_roots: dict[str, Path] = {}
_model_modules: dict[str, str | None] = {}


def _private_import(name, globals=None, locals=None, fromlist=(), level=0):
    """``__import__`` of the private modules: ``timm`` / ``torchvision`` resolve under PRIVATE."""
    if level == 0 and name.partition(".")[0] in _ABSENT:
        raise ModuleNotFoundError(f"No module named {name!r} (not used by the depth networks)", name=name)
    if level == 0 and name.partition(".")[0] not in _REDIRECTED:
        return builtins.__import__(name, globals, locals, fromlist, level)
    if level:
        package = (globals or {}).get("__package__") or ""
        base = package.rsplit(".", level - 1)[0] if level > 1 else package
        absolute = f"{base}.{name}" if name else base
    else:
        absolute = f"{PRIVATE}.{name}"
    module = load(absolute[len(PRIVATE) + 1:])
    for item in fromlist or ():
        if item != "*" and not hasattr(module, item) and _source(f"{absolute[len(PRIVATE) + 1:]}.{item}"):
            load(f"{absolute[len(PRIVATE) + 1:]}.{item}")
    if fromlist or level:
        return module
    return sys.modules[f"{PRIVATE}.{name.partition('.')[0]}"]


_BUILTINS = dict(vars(builtins), __import__=_private_import)


def _root(top: str) -> Path:
    """The installed package folder of ``top`` (``timm``, ``torchvision``), found without importing it."""
    if top not in _roots:
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        _roots[top] = Path(list(spec.submodule_search_locations)[0])
    return _roots[top]


def _source(name: str) -> tuple[Path, bool] | None:
    """``(file, is_package)`` of ``name`` (``"timm.layers"``) in its installed package, or None."""
    top, _, rest = name.partition(".")
    if top == "torchvision" and name not in _TORCHVISION_MODULES:
        return None
    folder = _root(top).joinpath(*rest.split(".")) if rest else _root(top)
    if (folder / "__init__.py").is_file():
        return folder / "__init__.py", True
    if folder.with_suffix(".py").is_file():
        return folder.with_suffix(".py"), False
    return None


def load(name: str) -> types.ModuleType:
    """The private copy of module ``name`` (e.g. ``"timm.models.beit"``), loaded on first use."""
    full = f"{PRIVATE}.{name}"
    with _lock:  # one loader at a time: another thread waits for a module being executed
        if full in sys.modules:
            return sys.modules[full]
        if PRIVATE not in sys.modules:
            root = types.ModuleType(PRIVATE, "Private copies of timm modules (depth_addon.midas.nets._timm_loader).")
            root.__path__ = []
            sys.modules[PRIVATE] = root
        parent_name, _, child = full.rpartition(".")
        parent = sys.modules[parent_name] if parent_name == PRIVATE else load(parent_name[len(PRIVATE) + 1:])
        found = _source(name)
        if found is None:
            raise ModuleNotFoundError(f"No module named {name!r} (not loaded by the depth networks)", name=name)
        path, is_package = found
        spec = importlib.util.spec_from_file_location(
            full, path, submodule_search_locations=[str(path.parent)] if is_package else None)
        module = importlib.util.module_from_spec(spec)
        module.__builtins__ = _BUILTINS
        if name in _HOLLOW:
            module.__getattr__ = _reexport(name)
        sys.modules[full] = module
        try:
            if name not in _HOLLOW:
                spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[full]
            raise
        setattr(parent, child, module)
        return module


def _reexport(package: str):
    def __getattr__(attr: str):
        for submodule in _HOLLOW[package]:
            module = load(f"{package}.{submodule}")
            if hasattr(module, attr):
                return getattr(module, attr)
        if not attr.startswith("__") and _source(f"{package}.{attr}"):
            return load(f"{package}.{attr}")  # a submodule, as after ``import package.attr``
        raise AttributeError(f"module {package!r} (private copy) has no attribute {attr!r}")

    return __getattr__


def model_module_of(timm_name: str) -> str | None:
    """The timm module (``"timm.models.beit"``) that registers model ``timm_name``, found in its source
    (``@register_model`` / ``def <name>(``) without importing timm's other model modules."""
    with _lock:
        if timm_name not in _model_modules:
            # Tolerant of decorator arguments, other decorators between and CRLF files.
            needle = re.compile(rf"^@register_model\b[^\n]*\n(?:@[^\n]*\n)*def {re.escape(timm_name)}\(", re.M)
            _model_modules[timm_name] = next(
                (f"timm.models.{path.stem}" for path in sorted((_root("timm") / "models").glob("*.py"))
                 if needle.search(path.read_text(encoding="utf-8").replace("\r\n", "\n"))), None)
        return _model_modules[timm_name]


def create_model(timm_name: str, **kwargs):
    """``timm.create_model(timm_name, **kwargs)`` with only the modules that model needs loaded.

    ``RuntimeError("Unknown model ...")`` (timm's own error) if no timm module defines it.
    """
    module_name = model_module_of(timm_name)
    if module_name is not None:
        load(module_name)
    return load("timm.models._factory").create_model(timm_name, **kwargs)


def version() -> str:
    return load("timm.version").__version__
