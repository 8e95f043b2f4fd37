"""Semi-supervised training (FixMatch, FreeMatch) with the interplay term on pseudo-labels.

    python -m interplay.trainers.semisupervised \
        --config interplay/trainers/configs/semisupervised.py:digits_40 --workdir DIR

Override any field with `--config.<key>=<value>`, e.g. `--config.algorithm=fixmatch
--config.mi_weight=0.1`. Append `,runlocal` to a preset for a few-step smoke run;
`--config.fake_data=True` runs the CIFAR presets offline on TFDS mock data.
The defaults follow USB's classic-CV configs (microsoft/Semi-supervised-learning).
"""

import ml_collections

from interplay.trainers import configs
from interplay.trainers.configs import supervised

PRESETS = {
    "digits_40": "4 labels per class of the embedded digits (the default)",
    "digits_20": "2 labels per class of the embedded digits",
    "digits_100": "10 labels per class of the embedded digits",
    "cifar10_40": "CIFAR-10, 4 labels per class, WRN-28-2",
    "cifar10_250": "CIFAR-10, 25 labels per class, WRN-28-2",
    "cifar10_4000": "CIFAR-10, 400 labels per class, WRN-28-2",
    "cifar100_400": "CIFAR-100, 4 labels per class, WRN-28-8",
    "cifar100_2500": "CIFAR-100, 25 labels per class, WRN-28-8",
}

ALGORITHMS = ("supervised", "fixmatch", "freematch")

#: Fields that may change when a run continues in the same workdir: the supervised trainer's.
RESUMABLE = supervised.RESUMABLE


def get_config(arg: str = "digits_40") -> ml_collections.ConfigDict:
    preset, flags = configs.parse(arg, PRESETS)
    name, labels = preset.split("_")
    c = supervised.base()

    # Which examples are labeled: num_labels_per_class of each class drawn with label_seed
    # (None: seed) from the train split minus the validation examples, which are drawn first
    # with validation_seed and belong to neither pool. The rest of the train split is unlabeled.
    c.label_seed = configs.placeholder(int)
    c.num_validation_per_class = 10
    c.validation_seed = 0

    c.algorithm = "freematch"  # supervised | fixmatch | freematch
    c.mu = 7  # unlabeled examples per labeled one in a step
    c.unlabeled_weight = 1.0  # λ_u of the consistency loss on confident pseudo-labels
    c.threshold = 0.95  # FixMatch's fixed confidence threshold
    c.ema_decay = 0.999  # FreeMatch's EMA of the thresholds
    c.fairness_weight = 0.001  # FreeMatch's λ_f of the self-adaptive fairness term

    # The interplay term on the kept unlabeled samples: −mi_weight·MI + hdr_weight·|ΔH| of the
    # weak-view features against the head vectors of their pseudo-labels.
    c.mi_weight = 0.0
    c.hdr_weight = 0.0

    # USB's optimizer is the papers' SGD with lr 0.03·cos(7πk / 16K) and batch 64. The digits
    # presets take batch 16 (their 20–100 labeled examples would repeat 1–3 times in a batch
    # of 64): 112 unlabeled examples at mu = 7.
    c.batch_size = 16
    c.num_steps = 3000
    c.eval_every = 250
    c.checkpoint_every = 1000
    c.num_eval_unlabeled = 1024  # unlabeled examples whose features are measured at each eval

    # USB's conventions: an EMA of the weights (momentum 0.999) is evaluated, 1-D parameters
    # are not decayed, BatchNorm averages over ≈ 1 000 steps, USB's WideResNet details,
    # inputs standardized by the dataset's mean and std.
    c.ema_momentum = 0.999
    c.decay_every_param = False
    c.bn_momentum = 0.999
    c.model_style = "usb"
    c.normalize_inputs = True
    c.randaugment = "usb"  # USB's 14 operations, PIL's semantics; "dm_pix": the former 8

    c.num_labels_per_class = int(labels) // (100 if name == "cifar100" else 10)
    if name != "digits":
        c.dataset = name
        c.batch_size = 64
        c.model = "wrn28_2" if name == "cifar10" else "wrn28_8"
        c.weight_decay = 5e-4 if name == "cifar10" else 1e-3
        c.num_validation_per_class = 0  # USB's protocol: the test split only
        c.num_steps = 2**20
        c.eval_every = 5120
        c.checkpoint_every = 5120
        c.log_every = 256
        c.num_eval_unlabeled = 10_000
    if "runlocal" in flags:
        c.num_steps, c.eval_every, c.checkpoint_every, c.log_every = 20, 10, 10, 5
    c.lock()
    return c
