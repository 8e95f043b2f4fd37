"""Supervised training with information dynamics.

    python -m trainers.supervised --config trainers/configs/supervised.py:digits --workdir DIR

Presets: `digits` (embedded, the demo), `cifar10_wrn28_2`, `cifar100_wrn28_8` (the papers').

Override any field with `--config.<key>=<value>`, e.g. `--config.mi_weight=0.1`.
Append `,runlocal` to a preset (`...:cifar10_wrn28_2,runlocal`) for a few-step smoke run.
"""

import ml_collections


def get_config(arg: str = "digits") -> ml_collections.ConfigDict:
    preset, *flags = arg.split(",")
    c = ml_collections.ConfigDict()
    c.dataset = "digits"
    c.model = "small_cnn"
    c.data_dir = ml_collections.FieldReference(None, field_type=str)  # TFDS default when None
    c.seed = 0  # parameter initialization (and data order unless data_seed ≥ 0)
    c.data_seed = -1  # data order/augmentation; -1: same as seed (LMC: same seed, new data_seed)
    c.num_devices = 0  # 0: all local devices

    # The papers' optimizer: SGD, momentum 0.9, weight decay 5e-4, lr 0.03 cosine, batch 64.
    c.batch_size = 64
    c.learning_rate = 0.03
    c.momentum = 0.9
    c.weight_decay = 5e-4
    c.num_steps = 1500

    # Loss: CE with label smoothing − mi_weight·MI + hdr_weight·|ΔH| (infotheory.losses).
    c.label_smoothing = 0.0
    c.mi_weight = 0.0
    c.hdr_weight = 0.0

    c.eval_every = 100
    c.eval_batch_size = 64  # also the batch size of the papers' batch-averaged eval/batch_* values
    c.interplay_method = "auto"  # whole-split interplay: "exact" | "lanczos" | "auto"
    c.checkpoint_every = 500
    c.keep_checkpoints = 0  # 0 keeps all (trainers.analyze reads them)
    c.log_every = 50  # NaN check and progress-bar loss

    if preset == "digits":
        pass
    elif preset in ("cifar10_wrn28_2", "cifar100_wrn28_8"):
        c.dataset, c.model = (
            ("cifar10", "wrn28_2")
            if preset.startswith("cifar10_")
            else (
                "cifar100",
                "wrn28_8",
            )
        )
        c.num_steps = 2**18
        c.eval_every = 4096
        c.checkpoint_every = 8192
        c.keep_checkpoints = 0
        c.log_every = 256
    else:
        raise ValueError(f"unknown preset {preset!r}: digits, cifar10_wrn28_2, cifar100_wrn28_8.")
    if "runlocal" in flags:
        c.num_steps, c.eval_every, c.checkpoint_every, c.log_every = 20, 10, 10, 5
    return c
