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
        text = p.read_text()
        assert text.startswith("--- a/") or "\n--- a/" in text  # a unified diff, after its header if any
        assert text.count("\n+++ b/") + text.startswith("+++ b/") >= 1


def test_dockerfile_lints_clean_and_uses_the_install_script():
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    # A Debian base users can pull, replaceable by --build-arg (the container test's own mmdebstrap base).
    arg = next(ln for ln in lines if ln.startswith("ARG BASE_IMAGE="))
    base = arg.split("=", 1)[1]
    assert base.startswith("debian:") and base.endswith("-slim") and ":latest" not in base
    assert lines.index(arg) < lines.index("FROM ${BASE_IMAGE}") == min(i for i, ln in enumerate(lines)
                                                                     if ln.startswith("FROM "))
    assert "nvidia/" not in base and "cuda_toolkit_from_wheels.sh" in text
    assert "scripts/setup.sh --cuda" in text
    assert 'ENTRYPOINT ["/opt/dgn-am/.venv/bin/dgn-am"]' in text
    assert 'CMD ["demo", "--evaluate", "--output_dir", "/out/demo"]' in text  # the main job by default


def test_dockerfile_builds_caffe_before_it_copies_the_code():
    # Editing the Python code must not rebuild Caffe: the Caffe layer sees only what its build reads.
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln and not ln.startswith("#")]
    caffe_run = next(i for i, ln in enumerate(lines) if ln.startswith("RUN scripts/install_caffe.sh --cuda"))
    copies = [(i, src) for i, ln in enumerate(lines) if ln.startswith("COPY ") for src in ln.split()[1:-1]]
    before = [src.rstrip("/") for i, src in copies if i < caffe_run]
    assert before and all(src.startswith("scripts/") for src in before), before
    assert "scripts" not in before and any(src == "." for i, src in copies if i > caffe_run)
    # Everything the install script reads is copied before it runs, and nothing else of scripts/lib.
    sourced = {"scripts/" + ln.split('"$here/')[1].split('"')[0] for ln in INSTALL.read_text().splitlines()
               if ln.startswith("source ")}
    assert sourced and sourced | {"scripts/install_caffe.sh", "scripts/caffe-patches"} <= set(before), before
    assert {src for src in before if src.startswith("scripts/lib")} == sourced


CUDA_LIB = ROOT / "scripts" / "lib" / "cuda.sh"


def _archs(tmp_path: Path, listing: str | None) -> str:
    nvcc = tmp_path / "nvcc"
    body = f"echo '{listing}'" if listing is not None else "echo 'nvcc fatal: Unknown option' >&2; exit 1"
    nvcc.write_text(f"#!/bin/sh\n[ \"$1\" = --list-gpu-code ] || exit 3\n{body}\n")
    nvcc.chmod(0o755)
    proc = subprocess.run(["bash", "-c", f'source "{CUDA_LIB}"; default_cuda_archs "{nvcc}"'],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_cuda_architectures_are_every_one_from_pascal_on(tmp_path):
    listing = "sm_50 sm_52 sm_60 sm_61 sm_62 sm_70 sm_72 sm_75 sm_87 sm_90 sm_100 sm_110 sm_103 sm_120 sm_121"
    got = _archs(tmp_path, listing)
    if os.uname().machine == "x86_64":  # Jetson and Thor GPUs sit only beside ARM CPUs
        assert got == "60 61 70 75 90 100 103 120"
    else:
        assert got == "60 61 62 70 72 75 87 90 100 103 110 120 121"
    # CUDA 13.0's own list, as the image's nvcc prints it.
    cuda13 = "sm_75 sm_80 sm_86 sm_87 sm_88 sm_89 sm_90 sm_100 sm_110 sm_103 sm_120 sm_121"
    if os.uname().machine == "x86_64":
        assert _archs(tmp_path, cuda13) == "75 80 86 88 89 90 100 103 120"
    assert _archs(tmp_path, None) == "61 70 75 80 86 89 90"  # an nvcc that cannot list them


def test_docker_context_keeps_the_miniature_model():
    # Downloaded models stay out of the image; the committed miniature ones (the main job's) go in.
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert "nets/*/" in rules and "!nets/mini/" in rules
    assert rules.index("!nets/mini/") > rules.index("nets/*/")  # later rules win


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci and "scripts/test.sh" in (ROOT / "README.md").read_text()
