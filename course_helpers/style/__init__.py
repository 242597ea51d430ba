"""Lesson 4.1 — style transfer (风格转移), by optimization and in one pass (notebook 06).

*By optimization* (Gatys, Ecker & Bethge 2016): a fixed network describes an image by its
feature maps.  The **content** of an image is its feature map at one layer; its **style** is
the Gram matrices (channel-by-channel correlations, which forget *where* things are) at
several layers.  Starting from noise, we change the pixels until the image's content matches
the photo and its style matches the painting or texture.

*In one pass* (Johnson, Alahi & Fei-Fei 2016): a small feed-forward network is trained once,
with the same loss, to turn any photo into that style; afterwards one forward pass replaces
hundreds of optimization steps.

The parts: :mod:`.extractors` (the fixed networks and their feature sub-models),
:mod:`.losses` (Gram matrix, style and content losses), :mod:`.transfer` (the optimization),
:mod:`.stylizer` (the one-pass network) and :mod:`.explorer` (plots and widgets).  Training
the shipped one-pass network is maintainer tooling, apart from the lessons::

    python -m course_helpers.tools.stylizer train      # about 10 minutes on 2 CPU cores
    python -m course_helpers.tools.stylizer evaluate   # its style-loss figures
"""
from .explorer import (plot_convergence, plot_result, style_explorer, upload_widget,
                       uploaded_images)
from .extractors import (OFFLINE_LAYERS, OFFLINE_NAME, VGG19_LAYERS,
                         default_extractor, default_layers, feature_model, offline_extractor,
                         vgg19_extractor)
from .losses import content_loss, gram_matrix, squared_variation, style_loss
from .stylizer import (STYLIZER_NAME, TRAIN_COMMAND, build_transform_net, load_stylizer,
                       speed_comparison, style_images, stylize, stylizer_record,
                       stylizer_style_image)
from .transfer import style_transfer

__all__ = [
    "OFFLINE_LAYERS", "OFFLINE_NAME", "STYLIZER_NAME", "TRAIN_COMMAND", "VGG19_LAYERS",
    "build_transform_net", "content_loss", "default_extractor", "default_layers",
    "feature_model", "gram_matrix", "load_stylizer", "offline_extractor", "plot_convergence",
    "plot_result", "speed_comparison", "squared_variation", "style_explorer", "style_images",
    "style_loss", "style_transfer", "stylize", "stylizer_record", "stylizer_style_image",
    "upload_widget", "uploaded_images", "vgg19_extractor",
]

_MOVED = {"train_stylizer": "course_helpers.tools.stylizer",
          "training_images": "course_helpers.tools.stylizer",
          "TRAIN_DEFAULTS": "course_helpers.tools.stylizer",
          "main": "course_helpers.tools.stylizer",
          "total_variation": "course_helpers.ascent"}


def __getattr__(name):
    if name in _MOVED:
        where = _MOVED[name]
        extra = (" (the smoothness term of style transfer is ch.style.squared_variation)"
                 if name == "total_variation" else " (maintainer tooling, apart from the lessons)")
        raise AttributeError(f"ch.style.{name} has moved: use {where}.{name}{extra}.")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
