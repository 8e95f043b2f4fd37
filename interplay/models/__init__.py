"""Flax Linen classifiers: every `__call__(x, train)` returns `(logits, features)`.

`features` is the penultimate representation that the Dense layer named
`head` reads; `head(params)` returns its class vectors as rows `(C, d)`.
BatchNorm statistics live in the `batch_stats` collection.
"""

from interplay.models.classifiers import MLP, SmallCNN, get_model, head
from interplay.models.resnet import ResNet18, WideResNet

__all__ = ["MLP", "ResNet18", "SmallCNN", "WideResNet", "get_model", "head"]
