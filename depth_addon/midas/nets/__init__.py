"""Depth network architectures, one module per backbone family; imported lazily by ``..model.build_network``.

Each model type's ``ModelSpec.arch.network`` names a module here whose ``build(spec)`` returns
an ``nn.Module`` built from the table row (timm name, hooks, feature dims, decoder arguments),
whose ``state_dict`` keys are the official checkpoint's after ``_timm.remap_official_keys``
(the row's key-remap rule; modules of timm 0.6.13-era backbones add ``rename_legacy_keys``).
``forward`` maps a normalised ``(B, 3, h, w)`` image to the ``(B, h, w)`` raw depth.

    blocks.py     shared decoder blocks (fusion blocks, depth head, reassemble heads)
    dpt.py        DPTDepthModel (MiDaS v3/v3.1 decoder, any backbone)
    midas_net.py  MiDaS v2.1 (ResNeXt, EfficientNet-Lite3)
    vit.py        ViT-L / ViT-B+R50 hybrid          swin.py, beit.py, levit.py, next_vit.py
    dinov2.py     Depth Anything V2 (timm DINOv2 + its DPT head)
    _timm.py      timm model creation with user-facing errors, the official-key remap

This package imports torch; the table never does.
"""
