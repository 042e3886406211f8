"""Every script in scripts/: ``--help`` and ``-h`` print its usage and do nothing else; an unknown option
is one line and does nothing; cuda_toolkit_from_wheels.sh deletes only folders it made.

The scripts are found by listing scripts/, so a new one is covered without editing this file. Each runs
in a sandbox: HOME, XDG_CACHE_HOME, DGN_AM_CACHE_DIR and TMPDIR in a fresh temporary folder, another
one as the working directory, and PATH led by stand-ins for pip, apt-get, git, cmake and the like that
only record that they were called (so a script that would install or download fails here instead).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from dgn_am.common.cliargs import ArgumentParser

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_DIR = ROOT / "scripts"
SCRIPTS = sorted(p for p in SCRIPT_DIR.iterdir() if p.is_file() and p.suffix in (".sh", ".py"))
KNOWN = {"setup.sh", "test.sh", "install_caffe.sh", "cuda_toolkit_from_wheels.sh", "main_job.sh", "example1.sh",
         "make_prototxts.py", "benchmark.py", "mini_ablation.py", "test_container.sh", "test_slurm.sh"}
#: Commands no script may run for --help; the stand-ins only write a line to tripwire.log.
TRIPWIRES = ("python", "python3", "pip", "pip3", "apt", "apt-get", "dpkg", "sudo", "cmake", "make", "git", "curl",
             "wget", "nvcc", "rm")
SKIP_NAMES = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache"}
HELP_NAMES = {"--help", "-h", "--no-such-option"}
UNKNOWN = "--no-such-option"


def _tree(root: Path) -> dict[str, tuple]:
    """Every path under root (but .git, .venv and caches) with its kind, size and mtime."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_NAMES)
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
            found[str(path.relative_to(root))] = (kind, 0 if kind == "dir" else st.st_size, st.st_mtime_ns)
            if kind == "link":
                found[str(path.relative_to(root))] += (os.readlink(path),)
    return found


def _venv_state() -> tuple:
    """What pip installing or removing something in the running environment would change."""
    state = []
    for d in (Path(sysconfig.get_paths()["purelib"]), Path(sys.prefix) / "bin"):
        if d.is_dir():
            state.append((str(d), d.stat().st_mtime_ns, sorted(p.name for p in d.iterdir())))
    return tuple(state)


def _checkout_state() -> tuple:
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored=matching"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return status, _tree(ROOT), _venv_state()


def _diff(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    return ([f"created {p}" for p in sorted(after.keys() - before.keys())]
            + [f"deleted {p}" for p in sorted(before.keys() - after.keys())]
            + [f"changed {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]])


@dataclass
class Sandbox:
    root: Path
    env: dict[str, str]
    cwd: Path

    def run(self, *cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), cwd=self.cwd, env=env or self.env, capture_output=True, text=True,
                              timeout=120, check=False)

    def run_untouched(self, script: Path, *args: str) -> subprocess.CompletedProcess:
        """Run a script and assert that it changed nothing in the checkout or the sandbox."""
        checkout, sandbox = _checkout_state(), _tree(self.root)
        proc = self.run(*_command(script), *args)
        checkout_after, sandbox_after = _checkout_state(), _tree(self.root)
        what = f"{script.name} {' '.join(args)}: rc {proc.returncode}\n{proc.stderr[-2000:]}"
        assert not (self.root / "tripwire.log").exists(), f"{what}\nran: {(self.root / 'tripwire.log').read_text()}"
        assert _diff(sandbox, sandbox_after) == [], f"{what}\nin the sandbox (HOME, caches, TMPDIR, cwd)"
        assert _diff(checkout[1], checkout_after[1]) == [], f"{what}\nin the checkout"
        assert checkout_after[0] == checkout[0], f"{what}\ngit status changed:\n{checkout_after[0]}"
        assert checkout_after[2] == checkout[2], f"{what}\nthe Python environment changed"
        for tree in (sandbox_after, checkout_after[1]):
            odd = [p for p in tree if HELP_NAMES & set(Path(p).parts)]
            assert odd == [], f"{what}\nmade {odd}"
        return proc


def _command(script: Path) -> list[str]:
    return ["bash", str(script)] if script.suffix == ".sh" else [sys.executable, str(script)]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    root = tmp_path / "sandbox"
    dirs = {name: root / name for name in ("home", "cache", "tmp", "cwd", "bin")}
    for d in dirs.values():
        d.mkdir(parents=True)
    log = root / "tripwire.log"
    for name in TRIPWIRES:
        shim = dirs["bin"] / name
        shim.write_text(f'#!/bin/sh\necho "{name} $*" >>"{log}"\nexit 97\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DGN_AM_", "CUDA_", "PIP_", "VIRTUAL_ENV"))}
    env.update(HOME=str(dirs["home"]), XDG_CACHE_HOME=str(dirs["cache"]),
               DGN_AM_CACHE_DIR=str(dirs["cache"] / "dgn-am"), TMPDIR=str(dirs["tmp"]),
               DGN_AM_NETS=str(root / "nets"), PYTHONDONTWRITEBYTECODE="1",
               GLOG_minloglevel="2", PATH=f"{dirs['bin']}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}")
    return Sandbox(root, env, dirs["cwd"])


def test_scripts_are_found():
    names = {p.name for p in SCRIPTS}
    assert KNOWN <= names, KNOWN - names
    # A script in scripts/ is a .sh or .py file, so that the tests below cover it (patches live in a folder).
    loose = [p.name for p in SCRIPT_DIR.iterdir() if p.is_file() and p.suffix not in (".sh", ".py")]
    assert loose == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_usage_and_does_nothing(script: Path, sandbox: Sandbox):
    texts = []
    for flag in ("--help", "-h"):
        proc = sandbox.run_untouched(script, flag)
        assert proc.returncode == 0, (flag, proc.returncode, proc.stderr[-2000:])
        assert proc.stderr == "", (flag, proc.stderr[-2000:])
        assert script.name in proc.stdout and len(proc.stdout.strip().splitlines()) >= 2, proc.stdout
        assert "set -euo" not in proc.stdout  # the header comment, not the code after it
        texts.append(proc.stdout)
    assert texts[0] == texts[1]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_unknown_option_is_one_line_and_does_nothing(script: Path, sandbox: Sandbox):
    proc = sandbox.run_untouched(script, UNKNOWN)
    assert proc.returncode != 0 and proc.stdout == "", (proc.returncode, proc.stdout[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and UNKNOWN in lines[0] and "--help" in lines[0], proc.stderr
    if script.suffix == ".py":
        assert lines[0] == f"{script.name}: error: unrecognized arguments: {UNKNOWN}; see '{script.name} --help'"


@pytest.mark.parametrize("script, args", [
    ("main_job.sh", ["-out"]),                # a folder may not start with '-'
    ("example1.sh", ["out", "-out"]),
    ("example1.sh", ["out", "more"]),
    ("cuda_toolkit_from_wheels.sh", ["out", "-cuda"]),
    ("cuda_toolkit_from_wheels.sh", ["out", "cuda", "more"]),
    ("setup.sh", ["out"]),
    ("test_container.sh", ["image"]),
    ("test_slurm.sh", ["grid.toml"]),
    ("install_caffe.sh", ["--python", "--cuda"]),
    ("benchmark.py", ["--batches", "0"]),
    ("benchmark.py", ["--batches", "4,x"]),
    ("mini_ablation.py", ["--seeds", "0,x"]),
    ("mini_ablation.py", ["--variants", "plain,nope"]),
    ("make_prototxts.py", ["out"]),
], ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_bad_arguments_are_one_line(script: str, args: list[str], sandbox: Sandbox):
    proc = sandbox.run_untouched(SCRIPT_DIR / script, *args)
    assert proc.returncode != 0 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--help" in lines[0], proc.stderr


# --- cuda_toolkit_from_wheels.sh ------------------------------------------------------------------

CUDA_SCRIPT = SCRIPT_DIR / "cuda_toolkit_from_wheels.sh"
MARKER = ".dgn-am-cuda-toolkit"

FAKE_PYTHON = """\
#!{python}
# Stands in for python3: `-m pip download` writes two small wheels (or fails when FAKE_PIP != ok),
# `-m zipfile` is the real one; every call is logged.
import os, runpy, sys, zipfile
from pathlib import Path

args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(" ".join(args) + "\\n")
if args[:2] == ["-m", "pip"]:
    if os.environ.get("FAKE_PIP") != "ok":
        sys.exit("ERROR: no network")
    d = Path(args[args.index("-d") + 1])
    d.mkdir(parents=True, exist_ok=True)
    wheels = {{"cublas": ["include/cublas_v2.h", "lib/libcublas.so.12"],
              "curand": ["include/curand.h", "lib/libcurand.so.10"]}}
    if any(a.startswith("nvidia-cuda-nvcc==") for a in args):  # the compiler too, laid out as CUDA 13's wheels
        wheels["cu13"] = ["bin/nvcc", "bin/ptxas", "nvvm/bin/cicc", "include/cuda_runtime.h", "lib/libcudart.so.13"]
    for name, files in wheels.items():
        with zipfile.ZipFile(d / f"nvidia_{{name}}-1.0-py3-none-any.whl", "w") as z:
            for file in files:
                z.writestr(f"nvidia/{{name}}/{{file}}", "fake\\n")
elif args[:2] == ["-m", "zipfile"]:
    sys.argv = ["zipfile", *args[2:]]
    runpy.run_module("zipfile", run_name="__main__", alter_sys=True)
else:
    sys.exit(97)
"""


@dataclass
class FakeCuda:
    runtime: Path
    pip_log: Path
    env: dict[str, str]

    def calls(self) -> list[str]:
        return self.pip_log.read_text().splitlines() if self.pip_log.exists() else []


@pytest.fixture
def fake_cuda(sandbox: Sandbox, tmp_path: Path) -> FakeCuda:
    """A CUDA runtime folder with an nvcc that does nothing, and a python3 whose pip needs no network."""
    runtime = tmp_path / "cuda"
    for sub in ("bin", "nvvm", "include", "lib64"):
        (runtime / sub).mkdir(parents=True)
    (runtime / "bin" / "nvcc").write_text("#!/bin/sh\nexit 0\n")
    (runtime / "bin" / "nvcc").chmod(0o755)
    (runtime / "include" / "cuda_runtime.h").write_text("// fake\n")
    (runtime / "lib64" / "libcudart.so.12").write_text("fake\n")
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    log = tmp_path / "python3-calls.log"
    (fake_bin / "python3").write_text(FAKE_PYTHON.format(python=sys.executable, log=str(log)))
    (fake_bin / "python3").chmod(0o755)
    env = dict(sandbox.env, PATH=f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", FAKE_PIP="ok")
    return FakeCuda(runtime, log, env)


def _user_folder(path: Path) -> dict[str, tuple]:
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("mine\n")
    (path / "sub" / "data.bin").write_bytes(b"\0" * 10)
    return _tree(path)


@pytest.mark.parametrize("nvcc", ["present", "missing"])
def test_cuda_toolkit_refuses_a_folder_it_did_not_make(nvcc: str, sandbox: Sandbox, fake_cuda: FakeCuda):
    out = sandbox.root.parent / "my-folder"
    before = _user_folder(out)
    runtime = fake_cuda.runtime if nvcc == "present" else sandbox.root.parent / "no-cuda"
    proc = sandbox.run("bash", str(CUDA_SCRIPT), str(out), str(runtime), env=fake_cuda.env)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(out) in proc.stderr or (nvcc == "missing" and "nvcc" in proc.stderr), proc.stderr
    assert _tree(out) == before and (out / "notes.txt").read_text() == "mine\n"
    assert fake_cuda.calls() == []  # refused before pip
    assert list((sandbox.root / "tmp").iterdir()) == []  # and before mktemp


def test_cuda_toolkit_without_nvcc_touches_nothing(sandbox: Sandbox, fake_cuda: FakeCuda):
    out = sandbox.root.parent / "toolkit"
    proc = sandbox.run("bash", str(CUDA_SCRIPT), str(out), str(sandbox.root.parent / "no-cuda"), env=fake_cuda.env)
    assert proc.returncode != 0 and "nvcc" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() and fake_cuda.calls() == [] and list((sandbox.root / "tmp").iterdir()) == []


def test_cuda_toolkit_refuses_a_file(sandbox: Sandbox, fake_cuda: FakeCuda):
    out = sandbox.root.parent / "a-file"
    out.write_text("keep\n")
    proc = sandbox.run("bash", str(CUDA_SCRIPT), str(out), str(fake_cuda.runtime), env=fake_cuda.env)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert out.read_text() == "keep\n" and fake_cuda.calls() == []


def test_cuda_toolkit_marks_reuses_and_rebuilds_only_its_own_folder(sandbox: Sandbox, fake_cuda: FakeCuda):
    out = sandbox.root.parent / "toolkit"
    out.mkdir()  # an empty folder is taken as it is

    def build(pip: str = "ok") -> subprocess.CompletedProcess:
        return sandbox.run("bash", str(CUDA_SCRIPT), str(out), str(fake_cuda.runtime),
                           env=dict(fake_cuda.env, FAKE_PIP=pip))

    proc = build()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert (out / MARKER).is_file() and (out / ".complete").is_file()
    assert (out / "include" / "cublas_v2.h").is_file() and (out / "include" / "cuda_runtime.h").is_file()
    assert os.readlink(out / "lib64" / "libcublas.so") == "libcublas.so.12"
    assert (out / "bin").resolve() == (fake_cuda.runtime / "bin").resolve()
    assert list((sandbox.root / "tmp").iterdir()) == []  # its temporary folder is gone
    assert len(fake_cuda.calls()) == 3  # pip download, and unzipping two wheels

    assert build().stdout.strip() == str(out) and len(fake_cuda.calls()) == 3  # finished: reused, no pip

    # Unfinished (no .complete): rebuilt, but only once the wheels are in; until then it is left alone.
    (out / ".complete").unlink()
    (out / "stray.txt").write_text("old\n")
    failed = build(pip="fail")
    assert failed.returncode != 0 and "download" in failed.stderr
    assert (out / "stray.txt").is_file() and (out / MARKER).is_file()
    assert build().returncode == 0
    assert not (out / "stray.txt").exists() and (out / MARKER).is_file() and (out / ".complete").is_file()


def test_cuda_toolkit_from_wheels_alone(sandbox: Sandbox, fake_cuda: FakeCuda):
    # No CUDA_RUNTIME: nvcc, cicc and the runtime come from the pinned wheels, executable, in a toolkit's layout.
    out = sandbox.root.parent / "toolkit"
    proc = sandbox.run("bash", str(CUDA_SCRIPT), str(out), env=fake_cuda.env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    download = fake_cuda.calls()[0].split()
    assert {"nvidia-cuda-nvcc==13.0.88", "nvidia-nvvm==13.0.88", "nvidia-cuda-runtime==13.0.96",
            "nvidia-cublas==13.0.2.14", "nvidia-curand==10.4.0.35"} <= set(download), download
    for tool in ("bin/nvcc", "bin/ptxas", "nvvm/bin/cicc"):
        assert (out / tool).is_file() and not (out / tool).is_symlink() and os.access(out / tool, os.X_OK), tool
    assert (out / "include" / "cuda_runtime.h").is_file() and (out / "include" / "curand.h").is_file()
    assert os.readlink(out / "lib") == "lib64" and os.readlink(out / "lib64" / "libcudart.so") == "libcudart.so.13"
    assert (out / ".complete").is_file() and list((sandbox.root / "tmp").iterdir()) == []


def test_cuda_toolkit_refuses_an_empty_runtime_argument(sandbox: Sandbox, fake_cuda: FakeCuda):
    out = sandbox.root.parent / "toolkit"
    proc = sandbox.run("bash", str(CUDA_SCRIPT), str(out), "", env=fake_cuda.env)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1 and "CUDA_RUNTIME" in proc.stderr
    assert not out.exists() and fake_cuda.calls() == []


# --- slurm/sweep.sbatch: the array task's shard -----------------------------------------------------

SBATCH = SCRIPT_DIR / "slurm" / "sweep.sbatch"


def _sbatch(tmp_path: Path, *args: str, **slurm: str) -> subprocess.CompletedProcess:
    """The job script as a task would run it, with SLURM's variables and a dgn-am that prints what it got."""
    fake = tmp_path / "dgn-am"
    fake.write_text('#!/bin/sh\necho "threads=$OPENBLAS_NUM_THREADS args=$*"\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "OPENBLAS_"))}
    env.update(DGN_AM=str(fake), **{f"SLURM_{k.upper()}": v for k, v in slurm.items()})
    return subprocess.run(["bash", str(SBATCH), *args], capture_output=True, text=True, env=env, check=False)


@pytest.mark.parametrize("array, shard", [
    (dict(array_task_id="2", array_task_min="0", array_task_max="3", array_task_count="4"), "2/4"),
    (dict(array_task_id="5", array_task_min="1", array_task_max="8", array_task_count="8"), "4/8"),  # --array=1-8
    (dict(array_task_id="6", array_task_min="0", array_task_max="14", array_task_step="2",
          array_task_count="8"), "3/8"),  # --array=0-14:2
    ({}, None),  # not an array: the whole grid
])
def test_sbatch_task_runs_its_shard(tmp_path: Path, array: dict, shard: str | None):
    proc = _sbatch(tmp_path, "--units", "0-9", "--output_dir", "out", cpus_per_task="3", **array)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    expected = "--units 0-9 --output_dir out" + (f" --shard {shard}" if shard else "") + " --quiet"
    assert line == f"threads=3 args=sweep {expected}", line


def test_sbatch_gallery_job_and_threads(tmp_path: Path):
    # The gallery job may itself run from an array's environment: it takes no shard. One thread by default.
    proc = _sbatch(tmp_path, "--gallery-only", "--output_dir", "out", array_task_id="1", array_task_min="0",
                   array_task_max="3", array_task_count="4")
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == (
        "threads=1 args=sweep --gallery-only --output_dir out --quiet")


@pytest.mark.parametrize("args, slurm, says", [
    (["--units", "1"], dict(array_task_id="3", array_task_min="0", array_task_max="7", array_task_count="3"),
     "regular range"),  # --array=0,3,7
    (["--shard", "0/2"], {}, "--shard is set from the array task id"),
    (["--shard=0/2"], {}, "--shard is set from the array task id"),
])
def test_sbatch_refuses_what_it_cannot_shard(tmp_path: Path, args: list[str], slurm: dict, says: str):
    proc = _sbatch(tmp_path, *args, **slurm)
    assert proc.returncode == 2 and proc.stdout == "" and says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_sbatch_help_and_its_directives():
    text = SBATCH.read_text()
    directives = [ln for ln in text.splitlines() if ln.startswith("#SBATCH")]
    assert "#SBATCH --job-name=dgn-am-sweep" in directives
    body = text.splitlines()
    # sbatch reads #SBATCH lines only before the first command.
    first_command = next(i for i, ln in enumerate(body) if ln and not ln.startswith("#"))
    assert all(body.index(d) < first_command for d in directives)
    proc = subprocess.run(["bash", str(SBATCH), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "sbatch --array=0-7" in proc.stdout and "#SBATCH" not in proc.stdout


# --- dgn_am.common.cliargs ----------------------------------------------------------------------


def _error(parser: ArgumentParser, args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(args)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, err
    return err.rstrip("\n")


def test_cliargs_error_is_one_line(capsys):
    p = ArgumentParser(prog="tool")
    p.add_argument("--n", type=int, default=1)
    assert p.parse_args(["--n", "3"]).n == 3
    assert _error(p, ["--n", "x"], capsys) == "tool: error: argument --n: invalid int value: 'x'; see 'tool --help'"
    assert _error(p, ["--bogus"], capsys) == "tool: error: unrecognized arguments: --bogus; see 'tool --help'"
    with pytest.raises(SystemExit):
        p.error("two\nlines")
    assert capsys.readouterr().err == "tool: error: two lines; see 'tool --help'\n"


def test_cliargs_subparsers_inherit_it(capsys):
    p = ArgumentParser(prog="tool")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("target")
    assert type(run) is ArgumentParser
    assert _error(p, ["run"], capsys) == (
        "tool run: error: the following arguments are required: target; see 'tool run --help'")
    assert _error(p, [], capsys).startswith("tool: error: the following arguments are required: command")


def test_cliargs_help_still_prints_usage(capsys):
    p = ArgumentParser(prog="tool", description="Does a thing.")
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tool") and "Does a thing." in out

