"""Test setup: 8 fake CPU devices (set before JAX is imported), a shared compilation cache
and the hypothesis profile."""

import os
import pathlib

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Many tests (and their subprocesses and notebooks, which inherit the environment) compile the
# same train and eval steps: JAX's persistent cache compiles each once per machine.
_CACHE = pathlib.Path(__file__).parent.parent / ".pytest_cache" / "jax"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "interplay", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("interplay")
