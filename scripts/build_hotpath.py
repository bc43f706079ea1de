#!/usr/bin/env python3
"""Build the engine's compiled hot path (harness/traffic/hotpath.pyx) in place,
for `make install`. Needs Cython (the `fast` extra, from PyPI) and a C
compiler; without either it says so and exits 0: the engine then runs its
pure-Python path (harness.traffic.http1 / connections), which is also what
the tests check the compiled one against (docs/engine.md).

    python scripts/build_hotpath.py          # build if the source is newer
    python scripts/build_hotpath.py --check  # exit 1 unless the built module imports
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "harness" / "traffic" / "hotpath.pyx"
SOURCES = (SOURCE, SOURCE.with_name("plainhttp.pxi"))  # the .pxi is included by the .pyx
TARGET = SOURCE.with_name("hotpath" + sysconfig.get_config_var("EXT_SUFFIX"))


def built() -> bool:
    return TARGET.exists() and all(TARGET.stat().st_mtime >= s.stat().st_mtime for s in SOURCES)


def build() -> str | None:
    """Build; None on success, else why not."""
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
    except ImportError as exc:
        return f"Cython/setuptools not installed ({exc})"
    cc = sysconfig.get_config_var("CC") or "cc"
    if not shutil.which(cc.split()[0]) and not shutil.which("cc"):
        return f"no C compiler ({cc})"
    with tempfile.TemporaryDirectory(prefix="hotpath-") as tmp:
        ext = Extension("harness.traffic.hotpath", [str(SOURCE.relative_to(ROOT))], extra_compile_args=["-O2"])
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            modules = cythonize([ext], build_dir=tmp, quiet=True, language_level=3)
            dist = Distribution({"name": "hotpath", "ext_modules": modules})
            cmd = dist.get_command_obj("build_ext")
            cmd.build_temp = tmp
            cmd.build_lib = str(Path(tmp) / "lib")
            cmd.ensure_finalized()
            cmd.run()
            # a rename, never a rewrite in place: a running engine has the old file mapped
            built_file = Path(cmd.get_ext_fullpath(ext.name))
            staged = TARGET.with_name(TARGET.name + ".new")
            shutil.copy2(built_file, staged)
            os.replace(staged, TARGET)
        except Exception as exc:  # noqa: BLE001 - a failed build leaves the pure-Python path
            return f"build failed: {exc}"
        finally:
            os.chdir(cwd)
    return None


def main() -> int:
    if "--check" in sys.argv:
        sys.path.insert(0, str(ROOT))
        from harness.traffic import connections

        print("compiled hot path:", "yes" if connections.HOTPATH is not None else "no (pure Python)")
        return 0 if connections.HOTPATH is not None else 1
    if built():
        return 0
    why = build()
    if why is not None:
        print(f"note: the engine's compiled hot path was not built: {why}; the engine runs its "
              "pure-Python path (slower: see docs/engine.md)", file=sys.stderr)
        return 0
    print(f"built {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
