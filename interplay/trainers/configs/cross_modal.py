"""Few-shot cross-modal prompt tuning with paper [B]'s CMA loss.

    python -m interplay.trainers.cross_modal \
        --config interplay/trainers/configs/cross_modal.py:digits --workdir DIR

`digits` builds its two-modality stand-in offline (see `interplay.trainers.cross_modal`);
`--config.features=FILE.npz` reads features exported from any CLIP instead.
"""

import ml_collections

from interplay.trainers import configs

PRESETS = {
    "digits": "digits CNN features × class-mean images through a frozen MLP (offline)",
    "digits_former": "the same data under the project's former protocol (before CoOp's setup)",
}

#: Fields that may change when a run continues in the same workdir.
RESUMABLE = ("num_steps", "eval_every", "checkpoint_every", "log_every", "data_dir")


def get_config(arg: str = "digits") -> ml_collections.ConfigDict:
    preset, _ = configs.parse(arg, PRESETS)
    c = ml_collections.ConfigDict()
    c.features = configs.placeholder(str)  # .npz; None: the digits stand-in, built in data_dir
    c.data_dir = configs.placeholder(str)  # TFDS default when None
    c.encoder_steps = 300  # training steps of the digits CNN that gives the image features
    c.shots = 16  # labeled examples per class, drawn from the train split by seed
    c.seed = 0  # the few-shot subset, the batch order and the context's initialization
    c.projection_seed = 0  # the frozen text-side projection (the same for every seed)

    # CoOp's prompt: 16 context tokens shared by the classes, N(0, 0.02²); "class_vector": the
    # project's former prompt, one context vector per class from 0, added to its embedding.
    c.prompt = "coop"
    c.num_context_tokens = 16
    c.context_init_std = 0.02
    c.class_specific_context = False  # CoOp's CSC: True gives each class its own tokens

    # CoOp's optimizer (Dassl's defaults): SGD, momentum 0.9, weight decay 5e-4, batch 32,
    # one warm-up epoch at 1e-5, then lr 0.002 cosine; CLIP's logit scale. The project's former
    # optimizer: weight_decay=0, warmup_epochs=0, num_steps=500.
    c.batch_size = 32  # min(batch_size, C · shots) per step
    c.learning_rate = 0.002
    c.momentum = 0.9
    c.weight_decay = 5e-4
    c.warmup_epochs = 1
    c.warmup_lr = 1e-5
    c.num_steps = configs.placeholder(int)  # None: CoOp's 50/100/200 epochs at 1/2–4/8–16 shots
    c.logit_scale = 100.0
    c.cma_weight = 0.0  # λ in (1 − λ)·CE + λ·L_cma
    c.cma_normalize = "log_group"  # each group's entropy / log(its size), as skingorz/CMA; "none"

    if preset == "digits_former":
        c.update(prompt="class_vector", weight_decay=0.0, warmup_epochs=0, num_steps=500)
        c.cma_normalize = "none"

    c.eval_every = 100
    c.checkpoint_every = 500
    c.log_every = 50
    c.lock()
    return c
