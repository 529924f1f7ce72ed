"""Compiled kernels shipped with the source, so that the first run after an install does not compile.

numba compiles the kernels of :mod:`sim.rules` and :mod:`sim.record_kernels` the first time they run
and caches the machine code next to the source (``sim/__pycache__``, ``cache=True``). Compiling takes
about 20 s on the machines this project is developed on, so a fresh clone's first ``uv run dsim``
took several times as long as the next one. This module makes that cache portable and ships it:

* **A portable target.** By default numba compiles for the host's exact CPU (its name and feature
  list are part of every cache entry's key), so a cache is valid only on the machine that wrote it.
  :func:`select_portable_target` (called by :func:`prepare`, which the two kernel modules call
  before they import numba) asks numba to compile for the x86-64-v3 level instead (AVX2, FMA:
  Intel since 2013, AMD since 2015) whenever the host has those features, so that one cache serves
  every such machine. Machines without them,
  other architectures, a process that imported numba before ``sim``, and users who set
  ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` themselves (or ``DSIM_NATIVE_KERNELS=1``) keep numba's
  default: the host's own CPU, compiled on first use.
* **The shipped cache.** ``sim/kernel_cache/`` holds numba's cache files (index ``.nbi`` and code
  ``.nbc``) for the two kernel files, built by ``uv run python -m sim.kernel_cache`` for the portable
  target. numba (0.68, the locked version) stamps each index with a SHA-256 of the source file's
  contents, so a clone's files match whatever their modification times. :func:`install_shipped_cache`
  (called by :func:`prepare` when the portable target is in use) copies an index and its code files
  into ``sim/__pycache__`` when that folder has none for the current source, and only when the
  shipped one was built from the current source and by this numba version; otherwise numba
  compiles as before. ``tests/test_kernel_cache.py``
  fails when a kernel file changes without the shipped cache being rebuilt.
"""

from __future__ import annotations

import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SHIPPED = PACKAGE / "kernel_cache"
# The files whose compiled functions are cached (cache=True).
KERNEL_SOURCES = ("rules.py", "record_kernels.py", "uniforms.py")
# x86-64-v3 (the x86-64 psABI's third level) and its features, spelled as LLVM spells them.
PORTABLE_CPU = "x86-64-v3"
PORTABLE_FEATURES = ("+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fxsr,+lzcnt,+mmx,+movbe,"
                     "+popcnt,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave")
NATIVE_ENV = "DSIM_NATIVE_KERNELS"


def select_portable_target() -> bool:
    """Compile for :data:`PORTABLE_CPU` (sets ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES``, inherited
    by subprocesses) when that is safe and has not been decided otherwise; returns whether it did."""
    if ("numba" in sys.modules or os.environ.get("NUMBA_CPU_NAME") or os.environ.get("NUMBA_CPU_FEATURES")
            or os.environ.get(NATIVE_ENV, "") not in ("", "0")):
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        import llvmlite.binding as ll

        host = {name for name, present in ll.get_host_cpu_features().items() if present}
    except Exception:  # noqa: BLE001 - no feature list: keep numba's default
        return False
    if not {f[1:] for f in PORTABLE_FEATURES.split(",")} <= host:
        return False
    os.environ["NUMBA_CPU_NAME"] = PORTABLE_CPU
    os.environ["NUMBA_CPU_FEATURES"] = PORTABLE_FEATURES
    return True


def read_index(path: Path):
    """``(numba version, source stamp, entry keys)`` of a numba cache index file, or None if it is
    missing or unreadable (numba's format: the version pickled, then the pickled stamp and entries;
    ``numba.core.caching.IndexDataCacheFile``)."""
    try:
        with open(path, "rb") as f:
            version = pickle.load(f)
            stamp, overloads = pickle.loads(f.read())
    except Exception:  # noqa: BLE001 - missing, truncated or from another numba: not usable
        return None
    return version, stamp, set(overloads)


def source_stamp(source: Path):
    """The stamp numba gives a source file's cache index: the SHA-256 of its contents."""
    from numba.core.caching import _hash_source_file

    st = source.stat()
    return _hash_source_file(str(source), st.st_mtime, st.st_size)


def _source_of(index: Path) -> Path:
    return PACKAGE / (index.name.split(".", 1)[0] + ".py")


def install_shipped_cache(target: Path | None = None) -> list[str]:
    """Copy the shipped cache entries that are current (this numba, this source) into ``target``
    (default ``sim/__pycache__``, numba's cache folder for these files) wherever ``target`` lacks
    them; returns the index files copied. Does nothing when ``NUMBA_CACHE_DIR`` points numba
    elsewhere or the folder cannot be written."""
    if not SHIPPED.is_dir() or (target is None and os.environ.get("NUMBA_CACHE_DIR")):
        return []
    import numba

    target = PACKAGE / "__pycache__" if target is None else Path(target)
    copied = []
    stamps: dict[Path, object] = {}
    for index in sorted(SHIPPED.glob("*.nbi")):
        source = _source_of(index)
        if not source.is_file():
            continue
        if source not in stamps:
            stamps[source] = source_stamp(source)
        shipped, present = read_index(index), read_index(target / index.name)
        if shipped is None or shipped[:2] != (numba.__version__, stamps[source]):
            continue  # built from another source or numba: numba compiles
        if present is not None and present[:2] == shipped[:2] and shipped[2] <= present[2]:
            continue  # the folder already has these entries
        # (a current index without them, e.g. compiled for this machine's own CPU before, is replaced)
        try:
            target.mkdir(exist_ok=True)
            for data in SHIPPED.glob(index.name[:-len(".nbi")] + ".*.nbc"):
                shutil.copyfile(data, target / data.name)
            shutil.copyfile(index, target / index.name)  # last: the index refers to the code files
        except OSError:
            return copied
        copied.append(index.name)
    return copied


_prepared = False


def prepare() -> None:
    """Once per process, before numba is imported (the kernel modules call it first): choose the
    portable target (:func:`select_portable_target`) and, if chosen, install the shipped cache
    (:func:`install_shipped_cache`)."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    if select_portable_target() or os.environ.get("NUMBA_CPU_NAME") == PORTABLE_CPU:
        install_shipped_cache()


BUILD = """
from sim.progress import warm_kernels
warm_kernels(announce=False)
"""


def build(destination: Path = SHIPPED) -> list[str]:
    """Compile every kernel a run calls for the portable target into an empty cache folder (a
    subprocess with ``NUMBA_CACHE_DIR``) and replace ``destination``'s files with its entries for
    the kernel files. Returns the files written."""
    env = dict(os.environ, NUMBA_CPU_NAME=PORTABLE_CPU, NUMBA_CPU_FEATURES=PORTABLE_FEATURES)
    env.pop(NATIVE_ENV, None)
    with tempfile.TemporaryDirectory() as tmp:
        env["NUMBA_CACHE_DIR"] = tmp
        subprocess.run([sys.executable, "-c", BUILD], env=env, check=True, cwd=PACKAGE.parent)
        # the kernels a run calls (their cached code includes the rules they call)
        from . import rules

        stems = tuple(f"rules.{name}-" for name in rules.KERNELS) + ("record_kernels.", "uniforms.fill-")
        files = sorted(p for p in Path(tmp).rglob("*") if p.is_file() and p.name.startswith(stems))
        if not files:
            raise RuntimeError(f"numba wrote no cache files under {tmp}")
        destination.mkdir(exist_ok=True)
        for old in destination.glob("*.nb[ic]"):
            old.unlink()
        for path in files:
            shutil.copyfile(path, destination / path.name)
    return sorted(p.name for p in files)


def main() -> None:
    written = build()
    size = sum((SHIPPED / name).stat().st_size for name in written)
    print(f"wrote {len(written)} files ({size / 2**20:.1f} MiB) to {SHIPPED} for {PORTABLE_CPU}")


if __name__ == "__main__":
    main()
