"""Where a run's numbers came from: the machine, the threads, the code.

Someone comparing two results records needs to know whether they ran the same code on
the same kind of machine. This module answers with the standard library only (the
reproducibility layer never imports torch at import time; torch is asked only when the
run has already imported it):

- :func:`device_name` (CPU model or GPU name) and :func:`device_kind` (what the
  execution cache keys on: ``cpu-x86_64`` or ``cuda:<GPU name>``);
- :func:`thread_count` (torch's intra-op threads, else ``$OMP_NUM_THREADS``, else the cores);
- :func:`git_commit` (of the checkout the `accel` package lives in, if any);
- :func:`accel_source_hash` (all of ``accel/**/*.py``) and :func:`imported_modules` (every
  local source module the run imported, with a hash of its file: what the cache validates).
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../accel
THREADS_ENV = "ACCEL_NUM_THREADS"


def file_hash(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _torch_cuda() -> Any:
    """torch, if this process has imported it and sees a GPU (never imports torch itself)."""
    torch = sys.modules.get("torch")
    try:
        return torch if torch is not None and torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a broken CUDA setup is "no GPU" for provenance
        return None


def device_name() -> str:
    """The GPU's name when this run used one (torch imported, CUDA visible), else the CPU model."""
    torch = _torch_cuda()
    if torch is not None:
        return f"{torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    return _cpu_model()


@lru_cache(maxsize=1)
def device_kind() -> str:
    """What the execution cache keys on: ``cuda:<GPU name>`` on a GPU machine, else ``cpu-<arch>``.

    Asked in the building process, which has not imported torch: ``nvidia-smi`` answers
    when it exists (it is quick); without it (or with ``CUDA_VISIBLE_DEVICES`` empty) the
    machine is a CPU machine as far as the book's kernels are concerned.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "" or not Path("/dev/nvidiactl").exists():
        return f"cpu-{platform.machine()}"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    except (OSError, subprocess.SubprocessError):
        names = []
    return f"cuda:{names[0]}" if names else f"cpu-{platform.machine()}"


def thread_count() -> int:
    """torch's intra-op thread count when torch is imported, else what a kernel would get."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    for var in (THREADS_ENV, "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


@lru_cache(maxsize=4)
def git_commit(path: str | os.PathLike = PACKAGE_DIR) -> str | None:
    """``HEAD`` of the git checkout containing ``path`` (``+dirty`` when files differ), else None."""
    try:
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def accel_source_hash(package_dir: str | os.PathLike = PACKAGE_DIR) -> str:
    """One hash of every ``.py`` file of the `accel` package (paths and contents, sorted)."""
    root = Path(package_dir)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _installed_roots() -> tuple[str, ...]:
    """Folders of installed code (stdlib, site-packages): pinned by constraints.txt, not hashed."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            roots.add(sysconfig.get_paths()[key])
        except KeyError:
            pass
    return tuple(str(Path(r).resolve()) + os.sep for r in roots if r)


def imported_modules(modules: dict[str, Any] | None = None) -> dict[str, dict[str, str]]:
    """Every imported module whose source is local (``accel.*``, a project module on the path).

    name -> ``{"file": absolute path, "sha256": hash of the file}``. Installed packages
    and the standard library are left out: their versions are pinned, and the cache keys
    on the pins. The execution cache re-hashes these files to decide whether a cached
    chapter is still valid, so an edit to ``accel/optim/`` invalidates exactly the
    chapters that imported it.
    """
    installed = _installed_roots()
    found: dict[str, dict[str, str]] = {}
    for name, module in sorted((modules if modules is not None else dict(sys.modules)).items()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        ours = name == "accel" or name.startswith("accel.")
        if (not ours and str(path).startswith(installed)) or not path.is_file():
            continue
        if name == "__main__" or "ipykernel" in name or name.startswith("_"):
            continue
        found[name] = {"file": str(path), "sha256": file_hash(path)}
    return found


def provenance() -> dict[str, Any]:
    """The fields a results record carries so two runs can be compared."""
    return {"device": device_name(), "threads": thread_count(), "git_commit": git_commit(),
            "accel_source_hash": accel_source_hash(), "modules": imported_modules()}
