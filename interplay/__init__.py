"""Interplay: the information interplay between a network's representations and its head.

Three subpackages, each importable on its own:

* `interplay.infotheory`: pure, jittable metrics (matrix entropy, mutual
  information, MIR, HDR, their Neural-Collapse values, losses);
* `interplay.models`: Flax Linen classifiers that return `(logits, features)`;
* `interplay.trainers`: the experiments, run as `python -m interplay.trainers.NAME`.
"""
