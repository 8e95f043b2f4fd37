"""Test setup: 8 fake CPU devices (set before JAX is imported), no persistent compilation
cache, and the hypothesis profile."""

import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# No persistent compilation cache, in the tests or in the subprocesses and notebook kernels
# that inherit this environment: with it, a worker died about once in three full runs inside
# jaxlib's serialization of a freshly compiled CPU executable (`put_executable_and_time`,
# docs/testing.md). Without it that code never runs; the price is compiling each step anew.
os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "interplay", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("interplay")
