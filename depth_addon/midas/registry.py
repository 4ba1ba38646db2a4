"""The one table of depth model types (MiDaS and Depth Anything V2).

Every row is a ``ModelSpec`` written with keywords: what the user sees (label, family, licence,
size and speed hints), what the depth means (``depth_kind``), the input transform, where the
official weights come from, and the network's ``Architecture`` -- the style of ml-depth-pro's
config dict: network module, timm model name, hook indices, feature dims, input size, decoder
arguments and the rule that maps official checkpoint keys onto today's timm. The UI's enum
items, the CLI's choices and help, the weights manager and ``load_model`` all read this table;
nothing else branches on model names, and this module never imports torch.

Adding a model type is adding a row (plus a module in ``depth_addon.midas.nets`` only if its
backbone is new).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_MIDAS_RELEASES = "https://github.com/isl-org/MiDaS/releases/download"
_HF_DEPTH_ANYTHING = "https://huggingface.co/depth-anything"

DEVICES = ("auto", "cpu", "cuda", "mps")   # "auto": CUDA, else Apple MPS, else the CPU
PRECISIONS = ("fp32", "fp16", "bf16")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)

# What a model's output means (the geometry's depth kinds, see depth_addon.geometry.depth):
# "inverse": relative inverse depth / disparity, larger = nearer, unknown scale and shift;
# "metric": distance along the camera axis in metres.
OUTPUT_KINDS = ("inverse", "metric")

MIT = "MIT"
APACHE_2 = "Apache-2.0"
CC_BY_NC_4 = "CC-BY-NC-4.0"
# Licences that forbid commercial use: the UI and CLI say so before a download.
NON_COMMERCIAL_LICENCES = frozenset({CC_BY_NC_4})


@dataclass(frozen=True)
class Architecture:
    """How one model type's network is built and how its official checkpoint maps onto it.

    ``network``: the module in ``depth_addon.midas.nets`` whose ``build(spec)`` makes it.
    ``timm_name``: the timm (>= 1.0) architecture of the backbone (None: built by the module).
    ``hooks``: the backbone blocks whose outputs feed the decoder (module-specific form: block
    indices, or (stage, block) pairs for LeViT). ``features``: channels of the feature maps
    entering the decoder, finest first. ``img_size``: the fixed input size of backbones that
    need one (timm ``img_size``). ``backbone_args`` / ``decoder``: further keyword arguments of
    the backbone and the decoder.

    Key-remap rule, applied to the keys under ``timm_prefix`` with that prefix removed (timm's
    ``checkpoint_filter_fn`` style, see ``nets._timm.remap_official_keys``): the module's
    ``rename_legacy_keys`` if ``legacy_timm`` (checkpoints saved by timm 0.6.13), then saved
    buffers named in ``computed_buffers`` (timm now computes them) are checked against ours and
    dropped, and ``unused_keys`` (in the official file, unused by inference) are accepted and
    dropped.
    """

    network: str
    timm_name: str | None = None
    hooks: tuple = ()
    features: tuple[int, ...] = ()
    img_size: int | None = None
    backbone_args: Mapping[str, Any] = field(default_factory=dict)
    decoder: Mapping[str, Any] = field(default_factory=dict)
    timm_prefix: str = "pretrained.model."
    legacy_timm: bool = False
    computed_buffers: tuple[str, ...] = ()
    unused_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """One official model type (a row of the table).

    ``family``: the group shown together in the UI and CLI help. ``depth_kind``: what
    ``predict`` returns (``OUTPUT_KINDS``). ``licence``: of the official weights (SPDX id).
    ``size_mb`` / ``speed``: hints for choosing (download size; CPU speed class of one prediction
    at the official input size relative to ``midas_v21_small_256``, from ``scripts/bench_inference.py``:
    fastest 1x, fast < 8x, medium < 25x, slow < 80x, slowest beyond).
    Transform: ``net_w`` x ``net_h``, ``keep_aspect_ratio``, ``resize_method``
    (``"minimal"``, ``"upper_bound"``, ``"lower_bound"`` as in MiDaS' ``Resize``),
    ``ensure_multiple_of``, ``mean`` / ``std``; ``output_resize`` is how ``predict`` resizes
    the raw output to the photo (``"bicubic"``: MiDaS ``run.py``; ``"bilinear_aligned"``:
    Depth Anything's ``infer_image``, align_corners=True).
    ``sha256`` may be a full digest or a prefix; ``None`` means unknown and the download is
    accepted on size alone. ``tensor_count`` / ``value_count``: tensors and values in the
    official state_dict, a fingerprint naming the right type when a checkpoint does not fit.
    """

    name: str
    label: str
    family: str
    description: str
    arch: Architecture
    url: str
    net_w: int
    net_h: int
    keep_aspect_ratio: bool
    resize_method: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    licence: str
    size_mb: int
    speed: str
    depth_kind: str = "inverse"
    ensure_multiple_of: int = 32
    output_resize: str = "bicubic"
    size_bytes: int | None = None
    sha256: str | None = None
    tensor_count: int | None = None
    value_count: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def max_depth(self) -> float | None:
        """Metric types: the largest distance the network can output, in metres."""
        return self.arch.decoder.get("max_depth")

    @property
    def non_commercial(self) -> bool:
        return self.licence in NON_COMMERCIAL_LICENCES

    @property
    def summary(self) -> str:
        """One line for menus and help: description, size, speed and licence."""
        kind = "metric depth in metres" if self.depth_kind == "metric" else "relative depth"
        note = ", non-commercial use only" if self.non_commercial else ""
        return f"{self.description}, {kind}; ~{self.size_mb:,} MB, {self.speed}; licence {self.licence}{note}"


MIDAS = "MiDaS"
DEPTH_ANYTHING_V2 = "Depth Anything V2"
FAMILIES = (MIDAS, DEPTH_ANYTHING_V2)

# Shared by every row of a family.
_MIDAS_V31 = dict(family=MIDAS, licence=MIT, mean=HALF_MEAN, std=HALF_STD, resize_method="minimal")
_DPT = dict(features=256, non_negative=True)            # official DPTDepthModel defaults
_TIMM06_SWIN = dict(network="swin", legacy_timm=True,
                    computed_buffers=("attn_mask", "relative_position_index", "relative_coords_table"))
_BEIT = dict(network="beit", computed_buffers=("relative_position_index",))
_DAV2 = dict(family=DEPTH_ANYTHING_V2, net_w=518, net_h=518, keep_aspect_ratio=True, resize_method="lower_bound",
             ensure_multiple_of=14, mean=IMAGENET_MEAN, std=IMAGENET_STD, output_resize="bilinear_aligned")
_DINOV2 = dict(network="dinov2", img_size=518, timm_prefix="pretrained.", unused_keys=("mask_token",))
_DINOV2_S = dict(_DINOV2, timm_name="vit_small_patch14_dinov2", hooks=(2, 5, 8, 11), features=(48, 96, 192, 384),
                 decoder=dict(features=64))
_DINOV2_B = dict(_DINOV2, timm_name="vit_base_patch14_dinov2", hooks=(2, 5, 8, 11), features=(96, 192, 384, 768),
                 decoder=dict(features=128))
_DINOV2_L = dict(_DINOV2, timm_name="vit_large_patch14_dinov2", hooks=(4, 11, 17, 23),
                 features=(256, 512, 1024, 1024), decoder=dict(features=256))


def _midas_url(tag: str, name: str) -> str:
    return f"{_MIDAS_RELEASES}/{tag}/{name}.pt"


def _hf_url(repo: str, name: str) -> str:
    return f"{_HF_DEPTH_ANYTHING}/{repo}/resolve/main/{name}.pth"


MODEL_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="midas_v21_small_256", label="MiDaS v2.1 Small", family=MIDAS, licence=MIT,
        description="EfficientNet-Lite3", size_mb=80, speed="fastest",
        arch=Architecture(network="midas_net", timm_name="tf_efficientnet_lite3", features=(32, 48, 136, 384),
                          decoder=dict(features=64, expand=True)),
        url=_midas_url("v2_1", "midas_v21_small_256"), net_w=256, net_h=256, keep_aspect_ratio=True,
        resize_method="upper_bound", mean=IMAGENET_MEAN, std=IMAGENET_STD,
        tensor_count=482, value_count=21_394_729),
    ModelSpec(
        name="midas_v21_384", label="MiDaS v2.1", family=MIDAS, licence=MIT,
        description="ResNeXt-101 WSL", size_mb=420, speed="medium",
        arch=Architecture(network="midas_net", timm_name="resnext101_32x8d", features=(256, 512, 1024, 2048),
                          decoder=dict(features=256, expand=False)),
        url=_midas_url("v2_1", "midas_v21_384"), net_w=384, net_h=384, keep_aspect_ratio=True,
        resize_method="upper_bound", mean=IMAGENET_MEAN, std=IMAGENET_STD,
        tensor_count=666, value_count=105_565_929),
    ModelSpec(
        name="dpt_hybrid_384", label="DPT Hybrid", description="ViT-B + ResNet-50", size_mb=470, speed="medium",
        arch=Architecture(network="vit", timm_name="vit_base_r50_s16_384", hooks=(0, 1, 8, 11),
                          features=(256, 512, 768, 768), backbone_args=dict(readout="project", cnn_stages=2),
                          decoder=_DPT),
        url=_midas_url("v3", "dpt_hybrid_384"), net_w=384, net_h=384, keep_aspect_ratio=True, **_MIDAS_V31,
        tensor_count=368, value_count=123_146_985),
    ModelSpec(
        name="dpt_large_384", label="DPT Large", description="ViT-L/16", size_mb=1300, speed="slow",
        arch=Architecture(network="vit", timm_name="vit_large_patch16_384", hooks=(5, 11, 17, 23),
                          features=(256, 512, 1024, 1024), backbone_args=dict(readout="project"), decoder=_DPT),
        url=_midas_url("v3", "dpt_large_384"), net_w=384, net_h=384, keep_aspect_ratio=True, **_MIDAS_V31,
        tensor_count=368, value_count=344_055_465),
    ModelSpec(
        name="dpt_swin2_tiny_256", label="DPT SwinV2 Tiny", description="SwinV2-T", size_mb=160, speed="fast",
        arch=Architecture(timm_name="swinv2_tiny_window16_256", img_size=256, hooks=(1, 1, 5, 1),
                          features=(96, 192, 384, 768), decoder=_DPT, **_TIMM06_SWIN),
        url=_midas_url("v3_1", "dpt_swin2_tiny_256"), net_w=256, net_h=256, keep_aspect_ratio=False, **_MIDAS_V31,
        tensor_count=273, value_count=43_012_051),
    ModelSpec(
        name="dpt_swin2_base_384", label="DPT SwinV2 Base", description="SwinV2-B", size_mb=400, speed="medium",
        arch=Architecture(timm_name="swinv2_base_window12to24_192to384", img_size=384, hooks=(1, 1, 17, 1),
                          features=(128, 256, 512, 1024), decoder=_DPT, **_TIMM06_SWIN),
        url=_midas_url("v3_1", "dpt_swin2_base_384"), net_w=384, net_h=384, keep_aspect_ratio=False, **_MIDAS_V31,
        tensor_count=477, value_count=109_014_433),
    ModelSpec(
        name="dpt_swin2_large_384", label="DPT SwinV2 Large", description="SwinV2-L", size_mb=830, speed="slow",
        arch=Architecture(timm_name="swinv2_large_window12to24_192to384", img_size=384, hooks=(1, 1, 17, 1),
                          features=(192, 384, 768, 1536), decoder=_DPT, **_TIMM06_SWIN),
        url=_midas_url("v3_1", "dpt_swin2_large_384"), net_w=384, net_h=384, keep_aspect_ratio=False, **_MIDAS_V31,
        tensor_count=477, value_count=220_047_389),
    ModelSpec(
        name="dpt_swin_large_384", label="DPT Swin Large", description="Swin-L", size_mb=830, speed="slow",
        arch=Architecture(timm_name="swin_large_patch4_window12_384", img_size=384, hooks=(1, 1, 17, 1),
                          features=(192, 384, 768, 1536), decoder=_DPT, **_TIMM06_SWIN),
        url=_midas_url("v3_1", "dpt_swin_large_384"), net_w=384, net_h=384, keep_aspect_ratio=False, **_MIDAS_V31,
        tensor_count=414, value_count=216_310_493),
    ModelSpec(
        name="dpt_beit_base_384", label="DPT BEiT Base", description="BEiT-B/16", size_mb=450, speed="medium",
        arch=Architecture(timm_name="beit_base_patch16_384", hooks=(2, 5, 8, 11), features=(96, 192, 384, 768),
                          decoder=_DPT, **_BEIT),
        url=_midas_url("v3_1", "dpt_beit_base_384"), net_w=384, net_h=384, keep_aspect_ratio=True, **_MIDAS_V31,
        tensor_count=283, value_count=115_526_837),
    ModelSpec(
        name="dpt_beit_large_384", label="DPT BEiT Large 384", description="BEiT-L/16", size_mb=1300, speed="slow",
        arch=Architecture(timm_name="beit_large_patch16_384", hooks=(5, 11, 17, 23),
                          features=(256, 512, 1024, 1024), decoder=_DPT, **_BEIT),
        url=_midas_url("v3_1", "dpt_beit_large_384"), net_w=384, net_h=384, keep_aspect_ratio=True, **_MIDAS_V31,
        tensor_count=487, value_count=352_328_897),
    ModelSpec(
        name="dpt_beit_large_512", label="DPT BEiT Large 512", description="BEiT-L/16 at 512, best MiDaS quality",
        size_mb=1500, speed="slowest",
        arch=Architecture(timm_name="beit_large_patch16_512", hooks=(5, 11, 17, 23),
                          features=(256, 512, 1024, 1024), decoder=_DPT, **_BEIT),
        url=_midas_url("v3_1", "dpt_beit_large_512"), net_w=512, net_h=512, keep_aspect_ratio=True, **_MIDAS_V31,
        tensor_count=487, value_count=370_229_441),
    ModelSpec(
        name="dpt_levit_224", label="DPT LeViT", description="LeViT-384, fastest DPT", size_mb=200, speed="fastest",
        arch=Architecture(network="levit", timm_name="levit_384", img_size=224, hooks=((0, 1), (1, 0), (2, 0)),
                          features=(384, 512, 768), legacy_timm=True, computed_buffers=("attention_bias_idxs",),
                          # official model_loader: head 64 -> 8, a transposed-conv stem, refinenet3 built at 7
                          decoder=dict(_DPT, head_features_1=64, head_features_2=8, refinenet3_size=7)),
        url=_midas_url("v3_1", "dpt_levit_224"), net_w=224, net_h=224, keep_aspect_ratio=False, **_MIDAS_V31,
        tensor_count=465, value_count=50_912_367),
    ModelSpec(
        name="dpt_next_vit_large_384", label="DPT Next-ViT Large", description="Next-ViT-L", size_mb=290,
        speed="medium",
        arch=Architecture(network="next_vit", hooks=(2, 6, 36, 39), features=(96, 256, 512, 1024), decoder=_DPT),
        url=_midas_url("v3_1", "dpt_next_vit_large_384"), net_w=384, net_h=384, keep_aspect_ratio=True,
        **_MIDAS_V31, tensor_count=962, value_count=72_341_086),
    ModelSpec(
        name="depth_anything_v2_vits", label="Depth Anything V2 Small", description="DINOv2 ViT-S",
        size_mb=99, speed="medium", licence=APACHE_2, arch=Architecture(**_DINOV2_S),
        url=_hf_url("Depth-Anything-V2-Small", "depth_anything_v2_vits"), **_DAV2,
        tensor_count=239, value_count=24_785_089),
    ModelSpec(
        name="depth_anything_v2_vitb", label="Depth Anything V2 Base", description="DINOv2 ViT-B",
        size_mb=390, speed="slow", licence=CC_BY_NC_4, arch=Architecture(**_DINOV2_B),
        url=_hf_url("Depth-Anything-V2-Base", "depth_anything_v2_vitb"), **_DAV2,
        tensor_count=239, value_count=97_470_785),
    ModelSpec(
        name="depth_anything_v2_vitl", label="Depth Anything V2 Large", description="DINOv2 ViT-L",
        size_mb=1340, speed="slowest", licence=CC_BY_NC_4, arch=Architecture(**_DINOV2_L),
        url=_hf_url("Depth-Anything-V2-Large", "depth_anything_v2_vitl"), **_DAV2,
        tensor_count=407, value_count=335_315_649),
    ModelSpec(
        name="depth_anything_v2_metric_hypersim_vits", label="Depth Anything V2 Metric Indoor Small",
        description="DINOv2 ViT-S, indoor (Hypersim), up to 20 m", size_mb=99, speed="medium",
        licence=APACHE_2, depth_kind="metric",
        arch=Architecture(**dict(_DINOV2_S, decoder=dict(features=64, max_depth=20.0))),
        url=_hf_url("Depth-Anything-V2-Metric-Hypersim-Small", "depth_anything_v2_metric_hypersim_vits"), **_DAV2,
        tensor_count=239, value_count=24_785_089),
    ModelSpec(
        name="depth_anything_v2_metric_hypersim_vitl", label="Depth Anything V2 Metric Indoor Large",
        description="DINOv2 ViT-L, indoor (Hypersim), up to 20 m", size_mb=1340, speed="slowest",
        licence=CC_BY_NC_4, depth_kind="metric",
        arch=Architecture(**dict(_DINOV2_L, decoder=dict(features=256, max_depth=20.0))),
        url=_hf_url("Depth-Anything-V2-Metric-Hypersim-Large", "depth_anything_v2_metric_hypersim_vitl"), **_DAV2,
        tensor_count=407, value_count=335_315_649),
    ModelSpec(
        name="depth_anything_v2_metric_vkitti_vitl", label="Depth Anything V2 Metric Outdoor Large",
        description="DINOv2 ViT-L, outdoor (Virtual KITTI 2), up to 80 m", size_mb=1340, speed="slowest",
        licence=CC_BY_NC_4, depth_kind="metric",
        arch=Architecture(**dict(_DINOV2_L, decoder=dict(features=256, max_depth=80.0))),
        url=_hf_url("Depth-Anything-V2-Metric-VKITTI-Large", "depth_anything_v2_metric_vkitti_vitl"), **_DAV2,
        tensor_count=407, value_count=335_315_649),
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in MODEL_SPECS}
MODEL_TYPES: tuple[str, ...] = tuple(MODELS)
DEFAULT_MODEL = "midas_v21_small_256"


def get_spec(model_type: str) -> ModelSpec:
    """Look up a model type, with an error listing the valid names."""
    try:
        return MODELS[model_type]
    except KeyError:
        raise ValueError(
            f"unknown model type {model_type!r}; choose one of: {', '.join(MODEL_TYPES)}"
        ) from None


def specs_by_family() -> dict[str, list[ModelSpec]]:
    """The table's rows grouped by ``family``, families and rows in table order."""
    groups: dict[str, list[ModelSpec]] = {}
    for spec in MODELS.values():
        groups.setdefault(spec.family, []).append(spec)
    return groups


def licence_notice(spec: ModelSpec) -> str | None:
    """What to tell a user before downloading weights whose licence forbids commercial use; else None."""
    if not spec.non_commercial:
        return None
    return (f"the {spec.label} weights are licensed {spec.licence}: non-commercial use only "
            f"(choose a model under {MIT} or {APACHE_2} for commercial work)")


def matching_model_types(state_dict: Mapping[str, Any]) -> list[str]:
    """Model types whose official state_dict has as many tensors and values as ``state_dict``
    (a mapping of names to tensors; only their ``numel()`` is used)."""
    tensors = len(state_dict)
    values = sum(int(t.numel()) for t in state_dict.values())
    return [s.name for s in MODELS.values() if s.tensor_count == tensors and s.value_count == values]
