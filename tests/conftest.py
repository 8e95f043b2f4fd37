"""Test setup: 8 fake CPU devices (set before JAX is imported), no persistent compilation
cache, one OpenBLAS thread, the hypothesis profile, and one TFDS data directory per test
process."""

import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# No persistent compilation cache, in the tests or in the subprocesses and notebook kernels
# that inherit this environment: with it, a worker died about once in three full runs inside
# jaxlib's serialization of a freshly compiled CPU executable (`put_executable_and_time`,
# docs/testing.md). Without it that code never runs; the price is compiling each step anew.
os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"
# One OpenBLAS thread (scipy's, which jaxlib's CPU LAPACK calls): its idle worker threads
# spin, and beside a second busy process on 2 cores they took the CPU from the computation
# itself (the grokking notebook: 49 s alone, 59 s with one thread beside a busy core, over
# 10 min with OpenBLAS's default threads; docs/testing.md).
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "interplay", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("interplay")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
    """TFDS data directory shared by the tests of a process: each dataset is built once."""
    return str(tmp_path_factory.mktemp("tfds"))
