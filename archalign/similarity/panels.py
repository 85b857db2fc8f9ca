"""Named model panels: ready-made lists of architectures to compare.

A panel entry is a model spec that :func:`archalign.similarity_matrix`
accepts: a timm name, or ``"torchvision:<name>"`` for torchvision builders
(built with ``weights=None``). ``paper44`` lists the NeuRN paper's models
(arXiv 2505.06881, a mix of Keras applications and PyTorch Hub) as their
closest timm / torchvision equivalents; the ones with none are kept in
``PAPER44_UNAVAILABLE`` with the reason and the ONNX export that would fill the row,
never dropped silently.
"""
from __future__ import annotations

from archalign.utils.errors import UsageError

__all__ = ["PANELS", "PAPER44_UNAVAILABLE", "panel", "list_panels", "paper_labels"]

# ~24 architectures across families, each fast to trace on the meta device.
_DEFAULT = [
    "resnet18", "resnet50", "wide_resnet50_2", "resnext50_32x4d", "resnest50d",
    "densenet121", "vgg11", "vgg16", "vgg19", "inception_v3", "legacy_xception",
    "mobilenetv2_100", "mobilenetv3_small_100", "efficientnet_b0", "efficientnet_b3",
    "ghostnet_100", "mnasnet_100", "regnetx_002", "regnety_008", "convnext_tiny",
    "vit_tiny_patch16_224", "deit_small_patch16_224", "swin_tiny_patch4_window7_224",
    "mixer_b16_224",
]

# timm's small test_* architectures: real, distinct designs (a residual conv net, a
# bring-your-own-blocks net, a normaliser-free net, the CoAtNet conv + attention
# hybrid) that train to convergence on 4,000 digits in 1-2 minutes each on two CPU
# cores. The first panel (resnet10t, resnet18, regnetx_002, mobilenetv3_small_100,
# vit_tiny) needed far longer than the demo's budget; test_convnext (96.4% source
# test), test_efficientnet (95.8%) and test_vit (83.4%) did not converge in 800 steps
# (the main job trains 600).
_CPU = ["test_resnet", "test_byobnet", "test_coatnet", "test_nfnet"]

# paper model -> spec
_PAPER44 = {
    "MobileNet": "mobilenetv1_100",
    "MobileNetV2": "mobilenetv2_100",
    "ResNet50": "resnet50",
    "ResNet101": "resnet101",
    "ResNet152": "resnet152",
    "ResNet50V2": "resnetv2_50",
    "ResNet101V2": "resnetv2_101",
    "ResNet152V2": "resnetv2_152",
    "Xception": "legacy_xception",
    "InceptionV3": "inception_v3",
    "InceptionResNetV2": "inception_resnet_v2",
    "VGG11": "vgg11",
    "VGG16": "vgg16",
    "VGG19": "vgg19",
    "DenseNet121": "densenet121",
    "DenseNet169": "densenet169",
    "DenseNet201": "densenet201",
    "NASNetLarge": "nasnetalarge",
    **{f"EfficientNetB{i}": f"efficientnet_b{i}" for i in range(8)},
    "SqueezeNet": "torchvision:squeezenet1_0",
    "ShuffleNet": "torchvision:shufflenet_v2_x1_0",
    "WideResNet": "wide_resnet50_2",
    "GoogLeNet": "torchvision:googlenet",
    # same architecture as ResNet50, different weights: kept so the panel matches
    "ResNet-SSL": "resnet50.fb_ssl_yfcc100m_ft_in1k",
    "FCN-ResNet101": "torchvision:fcn_resnet101",
    "ResNeSt": "resnest50d",
    "GhostNet": "ghostnet_100",
    "ResNeXt": "resnext101_32x8d",
    "DeepLabV3": "torchvision:deeplabv3_resnet101",
    "ViT": "vit_base_patch16_224",
}

PAPER44_UNAVAILABLE = {
    "NASNetMobile": "no NASNet-A Mobile in timm or torchvision (timm has only nasnetalarge); "
                    "an ONNX export fills it: tf.keras.applications.NASNetMobile via tf2onnx",
    "ProxylessNAS": "not in timm or torchvision (PyTorch Hub only, needs a download); an ONNX "
                    "export fills it: torch.onnx.export of the hub model",
    "IBN-Net": "not in timm or torchvision (PyTorch Hub only, needs a download); an ONNX "
               "export fills it: torch.onnx.export of the hub model",
    "U-Net": "no U-Net builder in timm or torchvision; an ONNX export fills it (any U-Net, "
             "e.g. segmentation_models_pytorch's, through torch.onnx.export)",
    "MiDaS": "not in timm or torchvision (PyTorch Hub only, needs a download); an ONNX export "
             "fills it: the MiDaS releases ship .onnx files",
    "CORnet": "not in timm or torchvision (separate package, not on PyPI); an ONNX export "
              "fills it: torch.onnx.export of the cornet package's model",
}
# Every missing row can be filled by an ONNX file: pass it beside the panel,
# e.g. ``archalign matrix --panel paper44 onnx:exports/NASNetMobile.onnx``.

PANELS = {
    "default": _DEFAULT,
    "cpu": _CPU,
    "paper44": list(_PAPER44.values()),
}


def list_panels() -> list[str]:
    return sorted(PANELS)


def panel(name: str) -> list[str]:
    """The model specs of a named panel."""
    try:
        return list(PANELS[name])
    except KeyError:
        raise UsageError(f"unknown panel {name!r}; choose from {list_panels()}") from None


def paper_labels() -> dict[str, str]:
    """paper44 spec -> the paper's name for it (for plot labels)."""
    return {spec: label for label, spec in _PAPER44.items()}
