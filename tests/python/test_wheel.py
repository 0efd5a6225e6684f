"""The wheel: typed (stubs match the native module), and installable into a clean virtual
environment where the documented example runs with nothing else set up."""

import glob
import os
import pathlib
import subprocess
import sys

import shequ

ROOT = pathlib.Path(__file__).resolve().parents[2]


def wheel():
    found = sorted(glob.glob(os.environ.get("SHEQU_WHEEL", str(ROOT / "target/wheels/shequ-*.whl"))))
    assert found, "build the wheel first: scripts/build-wheel"
    return os.path.abspath(found[-1])


def test_stubs_match_the_native_module(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "shequ._core"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success" in r.stdout


def test_the_package_and_the_example_type_check(tmp_path):
    example = ROOT / "python" / "examples" / "sample_city.py"
    for target in (["-p", "shequ"], [str(example)]):
        r = subprocess.run(
            [sys.executable, "-m", "mypy", "--ignore-missing-imports", *target],
            capture_output=True, text=True, cwd=tmp_path,
        )
        assert r.returncode == 0, r.stdout + r.stderr


def test_the_installed_package_is_the_wheel():
    pkg = pathlib.Path(shequ.__file__).parent
    assert (pkg / "py.typed").is_file() and (pkg / "_core.pyi").is_file()
    assert "site-packages" in str(pkg), pkg


def test_clean_venv_pip_install_then_the_documented_example(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", f"shequ[geo] @ file://{wheel()}"], check=True
    )
    out = tmp_path / "walk"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJ", "GDAL", "PYTHON"))}
    r = subprocess.run(
        [str(py), str(ROOT / "python" / "examples" / "sample_city.py"), str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Model(1 streets, 7 communities, 28 grids" in r.stdout
    png = out / "coverage_map.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(shequ, extraglobs={"shequ": shequ})
    assert result.attempted >= 4
    assert result.failed == 0
