"""The wheel: what ``pip install`` puts on a machine, and what stays in the repository's checkout.

The installed bus is ``adapters``, ``bus``, ``schemas``, ``signing`` and the ``run_bus`` module
(the ``bus`` command). The demo and the benchmark are not in it: their commands are still listed
by ``bus --help``, and say that they run from a checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "run_bus.py",
           "adapters", "bus", "schemas", "signing", "demo", "bench"]  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of its sources (the build writes in the tree)."""
    tree = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tree / name,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        else:
            shutil.copy2(ROOT / name, tree / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps",
         "--quiet", "--wheel-dir", str(out)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    [built] = out.glob("*.whl")
    return built


@pytest.mark.timeout(150)
def test_the_wheel_holds_the_bus_and_not_the_demo_or_the_bench(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        declared = archive.read(entry_points).decode()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"adapters", "bus", "schemas", "signing", "run_bus.py"}
    assert "bench" not in declared and "demo" not in declared  # no entry point into them
    assert "bus = run_bus:main" in declared


@pytest.mark.timeout(150)
def test_the_demo_and_the_bench_of_an_installed_bus_say_they_run_from_a_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    # the wheel's modules first; outside the checkout, so only what the wheel holds is ours
    run = "import sys; sys.path.insert(0, sys.argv.pop(1)); import run_bus; run_bus.main()"
    for command in ("demo", "bench"):
        done = subprocess.run(
            [sys.executable, "-c", run, str(site), command, "--no-keep" if command == "demo"
             else "--quick"],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == (
            f"`{command}` runs from a checkout of the repository: python run_bus.py {command}"
        )
        listed = subprocess.run(
            [sys.executable, "-c", run, str(site), command, "--help"],
            capture_output=True, text=True, cwd=tmp_path, timeout=60, check=True,
        )
        assert "Usage:" in listed.stdout
