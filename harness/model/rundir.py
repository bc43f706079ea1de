"""The run dir: every stage's output is a file here, so a run can be
re-analysed, re-rendered or gated later, and a crash still leaves data.

    reports/<scenario>/<run-id>/
      manifest.json        scenario as loaded, platform, versions, host, clock anchor,
                           run status, and under "generator" what the traffic
                           generator was asked vs achieved (harness.model.summary)
      requests/*.arrow     request records (harness.model.requests)
      events.jsonl         lifecycle events (harness.model.events)
      logs/<pod>.log       app output per pod
      summary.json         analysis result; one writer, harness.analysis.write_summary
      index.html, *.png, junit.xml   the report
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform as _platform
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.json"
LOGS_DIR = "logs"


def new_run_id(now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid() % 10000:04d}"


def default_run_dir(scenario_name: str, base: str | os.PathLike = "reports") -> Path:
    return Path(base) / scenario_name / new_run_id()


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON via a temp file + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def host_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": _platform.platform(),
        "cpus": os.cpu_count(),
    }


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("rollout-harness", "httptools", "uvloop", "pyarrow", "pandas", "kubernetes", "uvicorn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def update_manifest(run_dir: str | os.PathLike, **fields: Any) -> dict[str, Any]:
    """Merge fields into manifest.json (atomically)."""
    p = Path(run_dir) / MANIFEST_FILE
    data = read_json(p) if p.exists() else {}
    data.update(fields)
    write_json_atomic(p, data)
    return data
