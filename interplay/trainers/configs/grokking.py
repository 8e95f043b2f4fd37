"""Grokking (a ∘ b) mod p with a one-layer transformer, full-batch AdamW.

    python -m interplay.trainers.grokking \
        --config interplay/trainers/configs/grokking.py:default --workdir DIR
    python -m interplay.trainers.grokking \
        --config interplay/trainers/configs/grokking.py:small --workdir DIR

Default: p = 113, a + b, 30 % train, AdamW lr 1e-3, weight decay 1.0,
betas (0.9, 0.98). `small` is p = 23 (60 % train, lr 3e-3; seed 0 groks at
step 2 400 with Nanda's initialization) for notebooks and tests. `,runlocal`
shrinks either to a smoke run.

    python -m interplay.trainers.grokking \
        --config interplay/trainers/configs/grokking.py:default --workdir DIR \
        --config.num_seeds=5 --config.grokfast=True

trains seeds `seed … seed + 4` together (vmapped; `DIR/seed_<s>/` per seed) with
Grokfast's EMA gradient filter before AdamW.
"""

import ml_collections

from interplay.trainers import configs

PRESETS = {
    "default": "p = 113, a + b, 30 % train: the papers' task",
    "small": "p = 23, 60 % train: groks in about 2 400 steps",
}

#: Fields that may change when a run continues in the same workdir.
RESUMABLE = ("num_steps", "steps_after_grok", "checkpoint_every", "data_dir")


def get_config(arg: str = "default") -> ml_collections.ConfigDict:
    preset, flags = configs.parse(arg, PRESETS)
    c = ml_collections.ConfigDict()
    c.p = 113
    c.operation = "add"
    c.train_fraction = 0.3
    c.split_seed = 0
    c.data_dir = configs.placeholder(str)
    c.seed = 0  # parameter initialization (the split is split_seed's)
    c.num_seeds = 1  # > 1: seeds seed … seed + num_seeds − 1 trained together, vmapped

    c.width = 128
    c.num_heads = 4
    c.head_dim = 32
    c.mlp_dim = 512
    c.layer_norm = False
    # Nanda et al.'s initialization (plain normal, std 1/√width; the unembedding over all 114
    # tokens, std 1/√114); "flax": Flax's defaults, the unembedding over the 113 classes.
    c.model_style = "nanda"

    c.learning_rate = 1e-3
    c.warmup_steps = 10
    c.weight_decay = 1.0
    c.b1 = 0.9
    c.b2 = 0.98
    # Grokfast (Lee et al., 2024): g ← g + lamb·EMA_alpha(g) before AdamW.
    c.grokfast = False
    c.grokfast_alpha = 0.98
    c.grokfast_lamb = 2.0

    c.num_steps = 30_000  # full-batch steps = epochs
    c.eval_every = 100  # steps fused into one jitted call; metrics after each
    c.steps_after_grok = 5_000  # keep going after test accuracy reaches 99 %, then stop
    c.grok_threshold = 0.99
    c.checkpoint_every = 1_000
    c.interplay_samples = configs.placeholder(int)  # fixed subset per split; None: whole split
    c.interplay_samples = 1024
    # Interplay of each representation (comma-separated; grokking.REPRESENTATIONS,
    # each also as <name>_centred: its mean over the measured samples removed) with the
    # unembedding, on each sample set (grokking.SAMPLES).
    c.representations = (
        "features,features_centred,attention,attention_centred,mlp_hidden,mlp_hidden_centred"
    )
    c.samples = "train,test,table,batch"

    if preset == "small":
        c.p, c.train_fraction, c.learning_rate = 23, 0.6, 3e-3
        # 3 000 steps: with Nanda's initialization seed 0 groks at step 2 400
        c.num_steps, c.eval_every, c.steps_after_grok, c.checkpoint_every = 3_000, 50, 200, 500
    if "runlocal" in flags:
        c.num_steps, c.eval_every, c.steps_after_grok, c.checkpoint_every = 100, 50, 0, 100
    c.lock()
    return c
