"""Matrix-information metrics of the interplay between features and heads.

Pure, jittable functions: no Flax, no I/O, no global state.

Bad input: called eagerly, every entry point raises `ValueError` naming the
problem. Under `jit`/`vmap` shape errors still raise at trace time, while bad
values (NaN/Inf, labels outside `[0, C)`, bad masks, non-PSD kernels) make the
results NaN, never a plausible number; `checkify.checkify(f,
errors=checkify.user_checks)` over any metric or a whole step returns the
eager message as a named error.

Precision: the library's own matrix products run at full float32 on every
backend (`_precision.MATMUL_PRECISION`), not at the TF32 or bf16 passes JAX
defaults to on accelerators; the caller's operations keep theirs.
"""

from interplay.infotheory import clustering, features_dual, losses, scatter
from interplay.infotheory.batch import interplay
from interplay.infotheory.clustering import class_entropies, davies_bouldin_index, silhouette_score
from interplay.infotheory.collapse_optimum import etf_gram, nc_interplay, nc_mir, simplex_etf
from interplay.infotheory.dataset import dataset_interplay
from interplay.infotheory.information import (
    Ratios,
    entropy,
    hdr,
    matrix_entropy,
    mir,
    mutual_information,
    ratios,
)
from interplay.infotheory.kernels import gram, normalize
from interplay.infotheory.results import Interplay
from interplay.infotheory.scatter import ClassScatter

__all__ = [
    "ClassScatter",
    "Interplay",
    "Ratios",
    "class_entropies",
    "clustering",
    "dataset_interplay",
    "davies_bouldin_index",
    "entropy",
    "etf_gram",
    "features_dual",
    "gram",
    "hdr",
    "interplay",
    "losses",
    "matrix_entropy",
    "mir",
    "mutual_information",
    "nc_interplay",
    "nc_mir",
    "normalize",
    "ratios",
    "scatter",
    "silhouette_score",
    "simplex_etf",
]
