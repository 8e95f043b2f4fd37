"""The wheel installs one root, `interplay`, whose trainer runs anywhere, beside any `models/`."""

import os
import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).parent.parent


def test_wheel_installs_every_subpackage_and_runs_outside_the_checkout(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("interplay-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "interplay").rglob("*.py")}
    assert {
        "interplay/trainers/data/__init__.py",
        "interplay/trainers/configs/supervised.py",
    } <= sources
    assert sources <= names, sorted(sources - names)
    roots = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert roots == {"interplay"}  # nothing that a user's own package could shadow or be

    site = tmp_path / "site"  # the wheel alone; its dependencies come from this environment
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    outside = tmp_path / "elsewhere"  # a user's project with packages of the common names
    for package in ("models", "trainers", "infotheory"):
        (outside / package).mkdir(parents=True)
        (outside / package / "__init__.py").write_text(f'raise ImportError("user\'s {package}")')
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "JAX_NUM_CPU_DEVICES": "1",
        "TFDS_DATA_DIR": str(tmp_path / "tfds"),
    }
    config = site / "interplay" / "trainers" / "configs" / "supervised.py"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "interplay.trainers.supervised",
            f"--config={config}:digits,runlocal",
            "--workdir",
            "run",
            "--config.model=mlp",
        ],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"written to {pathlib.Path('run')}/" in done.stdout
    assert (outside / "run" / "dynamics.png").exists()
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import interplay.trainers.data; print(interplay.trainers.data.__file__)",
        ],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site))
    shadowed = subprocess.run(  # the trap is live: from there, `models` is the user's
        [sys.executable, "-c", "import models"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "ImportError: user's models" in shadowed.stderr
