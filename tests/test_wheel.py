"""The portable wheel (scripts/build-wheel.sh): abi3 for CPython >= 3.11,
manylinux_2_17, and it installs and runs on a host without Rust.

The wheel is $RINGCAST_WHEEL when set (scripts/test.sh builds it once), else
built here (minutes from a cold cargo cache). It is installed into a fresh
venv with cargo and rustc off PATH and binary packages only (nothing can be
compiled), then `ringcast demo` and a publish/subscribe run from that venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"ringcast-(?P<version>[^-]+)-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl")
# manylinux2014 is manylinux_2_17; either way glibc 2.17 is the floor.
PLATFORM = re.compile(r"manylinux(?:2014|_2_(?P<glibc>\d+))_x86_64")

# Building from scratch is a release build of the whole workspace.
pytestmark = pytest.mark.timeout(1500)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    given = os.environ.get("RINGCAST_WHEEL")
    if given:
        path = Path(given)
        assert path.is_file(), f"RINGCAST_WHEEL={given} is not a file"
        return path
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-wheel.sh"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1400,
        env={**os.environ, "PYTHON": sys.executable},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return Path(done.stdout.splitlines()[-1])


def without_rust(bin_dir: Path) -> str:
    """A PATH of `bin_dir` and the directories of this PATH that hold no
    cargo or rustc (~/.cargo/bin and the like)."""
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"
    dirs = [str(bin_dir)]
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or Path(d) == cargo_home:
            continue
        if shutil.which("cargo", path=d) or shutil.which("rustc", path=d):
            continue
        dirs.append(d)
    path = os.pathsep.join(dirs)
    assert shutil.which("cargo", path=path) is None
    assert shutil.which("rustc", path=path) is None
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel installed, and the environment to run it in."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CARGO", "RUSTUP", "RUSTC", "MATURIN", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = without_rust(root / "bin")
    # Its dependencies (numpy, rich) come from the index like on any host;
    # --only-binary: a source build, which could need a compiler, fails.
    done = subprocess.run(
        [
            str(root / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return root, env


def test_the_wheel_is_abi3_for_311_and_manylinux_2_17(wheel):
    name = NAME.fullmatch(wheel.name)
    assert name, wheel.name
    assert (name["py"], name["abi"]) == ("cp311", "abi3"), wheel.name
    platforms = name["plat"].split(".")
    for platform in platforms:
        tag = PLATFORM.fullmatch(platform)
        assert tag, f"{platform}: not a manylinux x86_64 tag"
        assert int(tag["glibc"] or 17) <= 17, platform
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        tags = re.findall(r"^Tag: (\S+)$", z.read(meta).decode(), re.M)
        assert sorted(tags) == sorted(f"cp311-abi3-{p}" for p in platforms)
        # One library, the extension: nothing bundled beside it.
        libraries = [n for n in names if ".so" in n.rsplit("/", 1)[-1]]
        assert libraries == ["ringcast/_native.abi3.so"], libraries
        native = z.read(libraries[0])
    # What maturin's audit checked, independently: glibc symbols of 2.17 at most.
    versions = {tuple(map(int, v.split(b"."))) for v in re.findall(rb"GLIBC_(2\.[\d.]+)", native)}
    assert versions and max(versions) <= (2, 17), sorted(versions)
    assert b"libpython" not in native  # abi3 extensions do not link the interpreter


def test_installed_without_rust_it_publishes_and_subscribes(venv, ring_dir, tmp_path):
    root, env = venv
    script = """
import numpy as np, ringcast, ringcast._native as native
assert native.__file__.endswith("_native.abi3.so"), native.__file__
assert not hasattr(native.Publisher, "_stop_after_claim")  # no test hooks
Q = np.dtype([("seq", "<u8"), ("px", "<f8")])
with ringcast.Publisher.create("wheel.q", dtype=Q, capacity=1024) as pub:
    with ringcast.Subscriber.attach("wheel.q", start="oldest") as sub:
        pub.publish((1, 99.5))
        pub.publish_batch(np.array([(2, 99.6), (3, 99.7)], Q))
        got = [sub.recv(timeout=5.0) for _ in range(3)]
        assert [int(r["seq"]) for r in got] == [1, 2, 3], got
        assert sub.lost == 0
    pub.unlink()
print(ringcast.__file__)
"""
    done = subprocess.run(
        [str(root / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "RINGCAST_DIR": ring_dir},
        cwd=tmp_path,  # not the source tree: the installed package is imported
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(root), done.stdout


def test_installed_without_rust_the_demo_runs(venv, ring_dir, tmp_path):
    root, env = venv
    demo = [str(root / "bin" / "ringcast"), "demo", "--messages", "20000", "--no-live"]
    done = subprocess.run(
        [*demo, "--dir", ring_dir],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
