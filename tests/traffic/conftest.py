"""Every engine test here runs on both connection paths: the compiled hot path
(harness/traffic/hotpath.pyx, what `make install` builds) and the pure-Python
one (http1.Conn, what runs without a C compiler), with the same exact asserts.

The compiled run is skipped only where no C compiler is found (the pure path
is then the engine); with a compiler and no built module it fails, naming the fix.
"""

from __future__ import annotations

import shutil
import sysconfig

import pytest

from harness.traffic import connections


@pytest.fixture(params=["compiled", "python"], autouse=True)
def conn_path(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(connections, "HOTPATH", None)
    elif connections.HOTPATH is None:
        cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
        if not (shutil.which(cc) or shutil.which("cc")):
            pytest.skip("no C compiler here: the engine runs its pure-Python path (tested as [python])")
        pytest.fail("the compiled hot path is not built (or ROLLOUT_HARNESS_PURE_PYTHON=1 is set): run make install")
    return request.param
