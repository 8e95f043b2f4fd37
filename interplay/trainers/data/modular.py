"""TFDS builder `modular_arithmetic`: `a ∘ b mod p` as tokens `a b =` (array_record, offline).

Each config fixes the prime p, the operation and the train/test split (fraction
and seed). Tokens are `[a, b, p]` (`p` is the `=` token, vocabulary p + 1) and
the label is `(a ∘ b) mod p`. Division uses `b ≠ 0` (`a / b = a·b^{p−2}`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

OPERATIONS = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
    "div": lambda a, b, p: (a * pow(int(b), p - 2, p)) % p,
    "sq_sum": lambda a, b, p: (a * a + b * b) % p,
}


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % k for k in range(2, int(p**0.5) + 1))


@dataclasses.dataclass
class ModularConfig(tfds.core.BuilderConfig):
    """A prime, an operation and a split."""

    p: int = 113
    operation: str = "add"
    train_fraction: float = 0.3
    split_seed: int = 0


def modular_config(
    p: int = 113, operation: str = "add", train_fraction: float = 0.3, split_seed: int = 0
) -> ModularConfig:
    """Validated config named e.g. `p113_add_train30_seed0`."""
    if not _is_prime(p):
        raise ValueError(f"p must be prime, got {p}.")
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {sorted(OPERATIONS)}, got {operation!r}.")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}.")
    name = f"p{p}_{operation}_train{round(train_fraction * 100)}_seed{split_seed}"
    return ModularConfig(
        name=name, p=p, operation=operation, train_fraction=train_fraction, split_seed=split_seed
    )


def pairs(p: int, operation: str) -> np.ndarray:
    """All operand pairs `(a, b)` of the task, `(N, 2)`, in lexicographic order."""
    a, b = np.meshgrid(np.arange(p), np.arange(1 if operation == "div" else 0, p), indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def split_indices(
    num_pairs: int, train_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/test indices: the first `round(f·N)` of a seeded permutation."""
    order = np.random.default_rng(seed).permutation(num_pairs)
    cut = round(train_fraction * num_pairs)
    return np.sort(order[:cut]), np.sort(order[cut:])


class ModularArithmetic(tfds.core.GeneratorBasedBuilder):
    """Modular arithmetic of the grokking literature (Power et al., 2022)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [modular_config(p, op) for p in (97, 113) for op in OPERATIONS]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "tokens": tfds.features.Tensor(shape=(3,), dtype=np.int32),
                    "label": tfds.features.ClassLabel(num_classes=self.builder_config.p),
                }
            ),
            supervised_keys=("tokens", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        c = self.builder_config
        all_pairs = pairs(c.p, c.operation)
        train, test = split_indices(len(all_pairs), c.train_fraction, c.split_seed)
        return {
            "train": self._generate_examples(all_pairs[train]),
            "test": self._generate_examples(all_pairs[test]),
        }

    def _generate_examples(self, operands):
        c = self.builder_config
        op = OPERATIONS[c.operation]
        for a, b in operands:
            yield (
                f"{a}_{b}",
                {"tokens": np.array([a, b, c.p], np.int32), "label": int(op(int(a), int(b), c.p))},
            )


def load(config: ModularConfig, data_dir: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Both splits as arrays `{"train": {"tokens", "label"}, "test": …}` (built if needed)."""
    registered = config.name in ModularArithmetic.builder_configs  # TFDS wants their name
    builder = ModularArithmetic(
        config=config.name if registered else config, data_dir=data_dir, file_format="array_record"
    )
    builder.download_and_prepare()
    out = {}
    for split, source in builder.as_data_source().items():
        examples = [source[i] for i in range(len(source))]
        out[split] = {
            "tokens": np.stack([e["tokens"] for e in examples]).astype(np.int32),
            "label": np.array([e["label"] for e in examples], np.int32),
        }
    return out
