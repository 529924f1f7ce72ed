"""The compiled kernels shipped in ``sim/kernel_cache`` (:mod:`sim.kernel_cache`): built from the current
kernel files for the portable target, and enough for a fresh copy of the package to run without
compiling anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from sim import kernel_cache, rules

REBUILD = "rebuild it: uv run python -m sim.kernel_cache"


def _portable_host() -> bool:
    import llvmlite.binding as ll

    host = {name for name, present in ll.get_host_cpu_features().items() if present}
    return {f[1:] for f in kernel_cache.PORTABLE_FEATURES.split(",")} <= host


def _shipped_indexes() -> dict[str, Path]:
    return {p.name.split("-", 1)[0]: p for p in kernel_cache.SHIPPED.glob("*.nbi")}


def test_the_shipped_cache_holds_every_kernel_built_from_the_current_source():
    """Every kernel a run calls (``rules.KERNELS``, the recorder's and the uniforms') has a shipped index
    stamped with this numba's version and the SHA-256 of the current source file, holding an entry for
    the portable target; every code file an index names is shipped. Editing sim/rules.py without
    rebuilding fails here."""
    from numba.core.dispatcher import Dispatcher

    from sim import record_kernels

    indexes = _shipped_indexes()
    wanted = [f"rules.{name}" for name in rules.KERNELS]
    wanted += [f"record_kernels.{name}" for name, value in vars(record_kernels).items()
               if isinstance(value, Dispatcher)]
    wanted += ["uniforms.fill"]
    missing = sorted(set(wanted) - set(indexes))
    assert not missing, f"sim/kernel_cache has no compiled {missing}: {REBUILD}"
    for name in wanted:
        path = indexes[name]
        source = kernel_cache.PACKAGE / (name.split(".")[0] + ".py")
        version, stamp, keys = kernel_cache.read_index(path)
        assert version == numba.__version__, f"{path.name} was built by numba {version}: {REBUILD}"
        assert stamp == kernel_cache.source_stamp(source), \
            f"{path.name} is from an older {source.name}: {REBUILD}"
        targets = {key[1][1:] for key in keys}
        assert (kernel_cache.PORTABLE_CPU, kernel_cache.PORTABLE_FEATURES) in targets, path.name
        stem = path.name[:-len(".nbi")]
        assert list(kernel_cache.SHIPPED.glob(f"{stem}.*.nbc")), f"{stem}: index without code files"


RUN = """
import json
from sim import DeterrenceModel, RunConfig
from sim.progress import _kernel_dispatchers
DeterrenceModel(RunConfig(replications=50, progress=False).replace(scenario={"weeks": 60})).run()
DeterrenceModel(RunConfig(replications=20, progress=False).replace(scenario={"weeks": 30}),
                batch={"credibility": [0.2, 0.8]}).run()
misses = {d.__name__: sum(d.stats.cache_misses.values()) for d in _kernel_dispatchers()}
print(json.dumps({name: n for name, n in misses.items() if n}))
"""


@pytest.mark.skipif(not _portable_host(), reason="this machine cannot run x86-64-v3 code")
def test_a_fresh_copy_of_the_package_runs_without_compiling(tmp_path):
    """A copy of sim/ without any numba cache of its own (a fresh clone), run in a new process with no
    numba settings: a plain run and a batch load every kernel from the shipped cache (numba counts no
    cache miss), and the cache files land in the copy's __pycache__. With the install step switched
    off (``install_shipped_cache`` a no-op) the same run misses, so the check can fail."""
    copy = tmp_path / "sim"
    shutil.copytree(kernel_cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_") and k != kernel_cache.NATIVE_ENV}
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}, out.stderr[-2000:]
    assert list((copy / "__pycache__").glob("rules.dprk_act-*.nbi"))

    shutil.rmtree(copy / "__pycache__")
    for index in (copy / "kernel_cache").glob("rules.dprk_act-*.nbi"):
        index.unlink()  # the shipped entry is gone: numba must compile that kernel
    out = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"dprk_act": 1}


def test_a_stale_or_foreign_shipped_index_is_not_installed(tmp_path, monkeypatch):
    """An index stamped with another source's hash is left alone (numba would treat it as empty and
    compile anyway); an index already present with the shipped entries is not rewritten."""
    shipped = tmp_path / "shipped"
    shutil.copytree(kernel_cache.SHIPPED, shipped)
    monkeypatch.setattr(kernel_cache, "SHIPPED", shipped)
    target = tmp_path / "cache"
    copied = kernel_cache.install_shipped_cache(target)
    assert copied and sorted(copied) == sorted(p.name for p in shipped.glob("*.nbi"))
    assert kernel_cache.install_shipped_cache(target) == []  # already there

    index = next(shipped.glob("rules.dprk_act-*.nbi"))
    version, _, _ = kernel_cache.read_index(index)
    import pickle

    with open(index, "rb") as f:
        pickle.load(f)
        _, overloads = pickle.loads(f.read())
    with open(index, "wb") as f:
        pickle.dump(version, f, protocol=-1)
        f.write(pickle.dumps((b"another source", overloads)))
    (target / index.name).unlink()
    assert kernel_cache.install_shipped_cache(target) == []
    assert not (target / index.name).exists()
