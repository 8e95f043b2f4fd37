"""Supervised training with information dynamics.

    python -m interplay.trainers.supervised \
        --config interplay/trainers/configs/supervised.py:digits --workdir DIR

Override any field with `--config.<key>=<value>`, e.g. `--config.mi_weight=0.1`.
Append `,runlocal` to a preset (`...:cifar10_wrn28_2,runlocal`) for a few-step smoke run;
`--config.fake_data=True` runs any preset offline on TFDS mock data.
"""

import ml_collections

from interplay.trainers import configs

PRESETS = {
    "digits": "small CNN on scikit-learn's digits (embedded, the demo)",
    "cifar10_wrn28_2": "the papers' CIFAR-10 WRN-28-2",
    "cifar100_wrn28_8": "the papers' CIFAR-100 WRN-28-8",
}

#: Fields that may change when a run continues in the same workdir.
RESUMABLE = (
    "num_steps",
    "eval_every",
    "checkpoint_every",
    "log_every",
    "keep_checkpoints",
    "data_dir",
    "num_devices",
    "eval_batch_size",
)


def base() -> ml_collections.ConfigDict:
    """The fields every classifier trainer has: data, devices, the papers' SGD, eval cadence."""
    c = ml_collections.ConfigDict()
    c.dataset = "digits"
    c.model = "small_cnn"
    c.data_dir = configs.placeholder(str)  # TFDS default when None
    c.fake_data = False  # TFDS mock data: offline smoke runs of any preset
    c.seed = 0  # parameter initialization (and data order unless data_seed is set)
    c.data_seed = configs.placeholder(int)  # data order/augmentation; None: seed
    c.num_devices = configs.placeholder(int)  # None: all local devices

    # The papers' optimizer: SGD, momentum 0.9, weight decay 5e-4, lr 0.03 cosine, batch 64.
    c.batch_size = 64
    c.learning_rate = 0.03
    c.momentum = 0.9
    c.weight_decay = 5e-4
    c.num_steps = 1500

    # Conventions where reference codes differ (the semi-supervised presets take USB's).
    c.decay_every_param = True  # False: no decay on 1-D parameters (biases, BatchNorm), as USB
    c.ema_momentum = 0.0  # > 0: keep an EMA of the weights and evaluate it (USB: 0.999)
    c.bn_momentum = 0.9  # Flax BatchNorm momentum of the running statistics (USB: 0.999)
    c.model_style = "flax"  # "usb": USB's WideResNet biases, initializers and BatchNorm ε
    c.normalize_inputs = False  # True: standardize by the dataset's mean and std (USB)

    c.eval_every = 100
    c.eval_batch_size = 64  # also the batch size of the papers' batch-averaged eval/batch_* values
    c.interplay_method = "auto"  # whole-split interplay: "exact" | "lanczos" | "auto"
    c.checkpoint_every = 500
    c.keep_checkpoints = configs.placeholder(
        int
    )  # None keeps all (interplay.trainers.analyze reads them)
    c.log_every = 50  # training metrics (means since the last row) and NaN check
    return c


def get_config(arg: str = "digits") -> ml_collections.ConfigDict:
    preset, flags = configs.parse(arg, PRESETS)
    c = base()
    # Loss: CE with label smoothing − mi_weight·MI + hdr_weight·|ΔH| (interplay.infotheory.losses).
    c.label_smoothing = 0.0
    # Softmax temperature τ of the loss (CE of logits / τ; [B]'s study). Predictions, hence
    # accuracy, do not depend on τ; eval/loss is the CE of the raw logits (τ = 1).
    c.temperature = 1.0
    c.mi_weight = 0.0
    c.hdr_weight = 0.0

    if preset != "digits":
        c.dataset, c.model = {
            "cifar10_wrn28_2": ("cifar10", "wrn28_2"),
            "cifar100_wrn28_8": ("cifar100", "wrn28_8"),
        }[preset]
        c.num_steps = 2**18
        c.eval_every = 4096
        c.checkpoint_every = 8192
        c.log_every = 256
    if "runlocal" in flags:
        c.num_steps, c.eval_every, c.checkpoint_every, c.log_every = 20, 10, 10, 5
    c.lock()
    return c
