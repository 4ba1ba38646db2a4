"""The model list of the CLI help, grouped by family, with size, speed and licence from the table."""

from __future__ import annotations

from ..midas.registry import DEFAULT_MODEL, specs_by_family

MODEL_HELP = " see 'models' below"
PRECISION_HELP = ("float precision (default: %(default)s). fp16 and bf16 are not exact: on the CPU bf16 is faster "
                  "but differed from fp32 by 1-13%% (max relative error) on the models measured; fp16 pays off on "
                  "GPUs only (about 10x slower on the CPU). See docs/speed.md")


def models_epilog() -> str:
    """``models (--model TYPE), by family:`` then one line per type (shown with a raw formatter)."""
    lines = ["models (--model TYPE), by family (licence of the official weights; NC = non-commercial only):"]
    for family, specs in specs_by_family().items():
        lines.append(f"  {family}")
        width = max(len(spec.name) for spec in specs)
        for spec in specs:
            default = " [default]" if spec.name == DEFAULT_MODEL else ""
            kind = "metres" if spec.depth_kind == "metric" else "relative"
            licence = f"{spec.licence}, NC" if spec.non_commercial else spec.licence
            lines.append(f"    {spec.name:<{width}}  {spec.description} ({kind}), ~{spec.size_mb:,} MB, "
                         f"{spec.speed}, {licence}{default}")
    return "\n".join(lines)
