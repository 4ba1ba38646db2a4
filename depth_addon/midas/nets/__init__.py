"""MiDaS architectures, one module per family; imported lazily by ``..model.build_network``.

Each model type's ``ModelSpec.builder`` names ``"module:function"`` here; the function takes no
arguments and returns an ``nn.Module`` whose ``state_dict`` keys (after its optional
``remap_official_keys``) are the official checkpoint's. ``forward`` maps a normalised
``(B, 3, h, w)`` image to the ``(B, h, w)`` raw inverse depth.

    blocks.py     shared decoder blocks (fusion blocks, depth head, reassemble heads)
    dpt.py        DPTDepthModel (any backbone)      midas_net.py  MiDaS v2.1 (ResNeXt, EfficientNet-Lite3)
    vit.py        ViT-L / ViT-B+R50 hybrid          swin.py, beit.py, levit.py, next_vit.py
    _timm.py      timm model creation with user-facing errors

This package imports torch; only its modules' functions are looked up through the table.
"""
