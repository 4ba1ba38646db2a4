"""The one table of MiDaS model types.

Everything that differs between official MiDaS models lives in a row here: the
network architecture (a builder name resolved lazily, so this module never imports
torch), the network input size and resize rule, the input normalisation, and where
the official weights come from. The UI's enum items, the CLI's choices, the weights
manager and ``load_model`` all read this table; nothing else branches on model names.
"""

from __future__ import annotations

from dataclasses import dataclass

_RELEASES = "https://github.com/isl-org/MiDaS/releases/download"

DEVICES = ("auto", "cpu", "cuda", "mps")   # "auto": CUDA, else Apple MPS, else the CPU
PRECISIONS = ("fp32", "fp16", "bf16")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ModelSpec:
    """One official MiDaS model type.

    ``builder`` is ``"module:function"`` inside ``depth_addon.midas.nets``; the
    function returns an ``nn.Module`` whose ``state_dict`` keys are the official ones.
    ``resize_method`` is ``"minimal"`` or ``"upper_bound"`` as in MiDaS' ``Resize``.
    ``sha256`` may be a full digest or a prefix (older release names carry 8 hex digits);
    ``None`` means unknown and the download is accepted on size alone.
    ``tensor_count`` / ``value_count``: number of tensors and of values (all tensors, buffers
    included) in the official state_dict; a fingerprint used to name the right model type
    when a checkpoint does not fit the chosen one.
    """

    name: str
    label: str
    description: str
    builder: str
    net_w: int
    net_h: int
    keep_aspect_ratio: bool
    resize_method: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    url: str
    size_bytes: int | None = None
    sha256: str | None = None
    ensure_multiple_of: int = 32
    tensor_count: int | None = None
    value_count: int | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _spec(name, label, description, builder, size, keep_aspect, resize, mean, std, tag, **kw) -> ModelSpec:
    return ModelSpec(
        name=name, label=label, description=description, builder=builder,
        net_w=size, net_h=size, keep_aspect_ratio=keep_aspect, resize_method=resize,
        mean=mean, std=std, url=f"{_RELEASES}/{tag}/{name}.pt", **kw,
    )


MODEL_SPECS: tuple[ModelSpec, ...] = (
    _spec("midas_v21_small_256", "MiDaS v2.1 Small", "EfficientNet-Lite3, fastest, ~80 MB",
          "midas_net:midas_v21_small", 256, True, "upper_bound", IMAGENET_MEAN, IMAGENET_STD, "v2_1",
          tensor_count=482, value_count=21_394_729),
    _spec("midas_v21_384", "MiDaS v2.1", "ResNeXt-101 WSL, ~420 MB",
          "midas_net:midas_v21", 384, True, "upper_bound", IMAGENET_MEAN, IMAGENET_STD, "v2_1",
          tensor_count=666, value_count=105_565_929),
    _spec("dpt_hybrid_384", "DPT Hybrid", "ViT-B + ResNet-50, ~470 MB",
          "vit:dpt_hybrid", 384, True, "minimal", HALF_MEAN, HALF_STD, "v3",
          tensor_count=368, value_count=123_146_985),
    _spec("dpt_large_384", "DPT Large", "ViT-L/16, ~1.3 GB",
          "vit:dpt_large", 384, True, "minimal", HALF_MEAN, HALF_STD, "v3",
          tensor_count=368, value_count=344_055_465),
    _spec("dpt_swin2_tiny_256", "DPT SwinV2 Tiny", "SwinV2-T, fast, ~160 MB",
          "swin:dpt_swin2_tiny_256", 256, False, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=273, value_count=43_012_051),
    _spec("dpt_swin2_base_384", "DPT SwinV2 Base", "SwinV2-B, ~400 MB",
          "swin:dpt_swin2_base_384", 384, False, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=477, value_count=109_014_433),
    _spec("dpt_swin2_large_384", "DPT SwinV2 Large", "SwinV2-L, ~830 MB",
          "swin:dpt_swin2_large_384", 384, False, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=477, value_count=220_047_389),
    _spec("dpt_swin_large_384", "DPT Swin Large", "Swin-L, ~830 MB",
          "swin:dpt_swin_large_384", 384, False, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=414, value_count=216_310_493),
    _spec("dpt_beit_base_384", "DPT BEiT Base", "BEiT-B/16, ~450 MB",
          "beit:dpt_beit_base_384", 384, True, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=283, value_count=115_526_837),
    _spec("dpt_beit_large_384", "DPT BEiT Large 384", "BEiT-L/16, ~1.3 GB",
          "beit:dpt_beit_large_384", 384, True, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=487, value_count=352_328_897),
    _spec("dpt_beit_large_512", "DPT BEiT Large 512", "BEiT-L/16 at 512, best quality, ~1.5 GB",
          "beit:dpt_beit_large_512", 512, True, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=487, value_count=370_229_441),
    _spec("dpt_levit_224", "DPT LeViT", "LeViT-384, fastest DPT, ~200 MB",
          "levit:dpt_levit_224", 224, False, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=465, value_count=50_912_367),
    _spec("dpt_next_vit_large_384", "DPT Next-ViT Large", "Next-ViT-L, ~290 MB",
          "next_vit:dpt_next_vit_large_384", 384, True, "minimal", HALF_MEAN, HALF_STD, "v3_1",
          tensor_count=962, value_count=72_341_086),
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
            f"unknown MiDaS model type {model_type!r}; choose one of: {', '.join(MODEL_TYPES)}"
        ) from None
