"""The project's own scaffolding: the Caffe install script, its cache and patches, the Dockerfile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import caffe

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "scripts" / "install_caffe.sh"


def _install(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(INSTALL), "--python", sys.executable, *args], capture_output=True,
                          text=True, env=env or dict(os.environ), check=False)


def test_print_prefix_is_the_build_in_use():
    proc = _install("--print-prefix")
    assert proc.returncode == 0, proc.stderr
    prefix = Path(proc.stdout.strip())
    assert Path(caffe.__file__).resolve().is_relative_to(prefix.resolve())
    assert (prefix / ".complete").is_file() and (prefix / "build.json").is_file()


def test_second_run_uses_the_cache():
    proc = _install()
    assert proc.returncode == 0, proc.stderr
    assert "cached build" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == _install("--print-prefix").stdout.strip()


def test_cuda_without_nvcc_is_refused():
    env = dict(os.environ, CUDA_HOME="/nonexistent")
    cuda = _install("--cuda", "--print-prefix", env=env)
    assert cuda.returncode != 0 and "nvcc" in cuda.stderr and cuda.stderr.count("\n") == 1


def test_wrong_tarball_is_refused(tmp_path):
    fake = tmp_path / "caffe.tar.gz"
    fake.write_bytes(b"not caffe")
    env = dict(os.environ, DGN_AM_CACHE_DIR=str(tmp_path / "cache"), DGN_AM_CAFFE_TARBALL=str(fake))
    proc = _install(env=env)
    assert proc.returncode != 0
    assert "sha256" in proc.stderr and "e0eb3f06" in proc.stderr
    assert not list((tmp_path / "cache" / "caffe").glob("*/.complete"))


def test_unknown_option_is_one_line():
    proc = _install("--bogus")
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0 and "--bogus" in proc.stderr


def test_patches_apply_and_are_listed_in_readme():
    readme = (ROOT / "README.md").read_text()
    patches = sorted((ROOT / "scripts" / "caffe-patches").glob("*.patch"))
    assert patches
    for p in patches:
        assert p.name in readme, f"{p.name} is not explained in README.md"
        assert p.read_text().startswith("--- a/")


def test_dockerfile_lints_clean_and_uses_the_install_script():
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "Dockerfile").read_text()
    base = next(ln.split()[1] for ln in text.splitlines() if ln.startswith("FROM "))
    assert base.startswith("nvidia/cuda:") and "devel" in base and not base.endswith(":latest")
    assert "scripts/setup.sh --cuda" in text
    assert 'ENTRYPOINT ["/opt/dgn-am/.venv/bin/dgn-am"]' in text
    assert 'CMD ["demo", "--evaluate"]' in text  # the main job by default


def test_docker_context_keeps_the_miniature_model():
    # Downloaded models stay out of the image; the committed miniature ones (the main job's) go in.
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert "nets/*/" in rules and "!nets/mini/" in rules
    assert rules.index("!nets/mini/") > rules.index("nets/*/")  # later rules win


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci and "scripts/test.sh" in (ROOT / "README.md").read_text()
