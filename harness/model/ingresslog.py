"""The ingress proxy's access log (Traefik, JSON lines) as records on the run
clock: the one place that says which upstream pod a proxy 502/503/504 came
from, since such an answer carries no pod header.

Each line Traefik writes (``--accesslog.format=json``, the harness keeps the
``X-Request-Id`` request header, which is the request's ``seq``) becomes::

    {"seq": 17, "start_ns": ..., "end_ns": ..., "status": 502, "origin_status": 0,
     "upstream": "127.0.0.1:40123", "origin_duration_ns": ..., "retries": 0}

``upstream`` is empty when the proxy had no server to send the request to
(its 503 "no available server"). Times are converted from Traefik's
``StartUTC`` (wall clock, nanosecond text) with the run's wall anchor.
"""

from __future__ import annotations

import calendar
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, TypedDict

#: where the platforms put the proxy's files in the run dir
INGRESS_DIR = "ingress"
ACCESS_LOG = "access.log"
PROXY_LOG = "traefik.log"
#: the request header the engine numbers requests with (harness.traffic.http1)
REQUEST_ID_FIELD = "request_X-Request-Id"

_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


class AccessRecord(TypedDict):
    seq: int
    start_ns: int
    end_ns: int
    status: int
    origin_status: int
    upstream: str
    origin_duration_ns: int
    retries: int


def wall_ns(text: str) -> int:
    """RFC 3339 with up to nanosecond fraction -> ns since the epoch
    (datetime keeps only microseconds, Traefik writes nanoseconds)."""
    m = _RFC3339.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return secs * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


def upstream_of(service_url: str, service_addr: str) -> str:
    """host:port of the server the proxy picked ('' when none)."""
    if service_addr:
        return service_addr
    if "://" in service_url:
        return service_url.split("://", 1)[1].split("/", 1)[0]
    return ""


def parse_line(line: str, wall_anchor_ns: int) -> AccessRecord | None:
    """One access-log line -> a record, or None for a line that is not a
    request the engine sent (probes, torn last line, other log output)."""
    try:
        entry = json.loads(line)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(entry, dict) or "DownstreamStatus" not in entry or "StartUTC" not in entry:
        return None
    rid = entry.get(REQUEST_ID_FIELD)
    try:
        seq = int(rid)
        start = wall_ns(str(entry["StartUTC"])) - wall_anchor_ns
    except (TypeError, ValueError):
        return None
    duration = int(entry.get("Duration") or 0)
    return AccessRecord(seq=seq, start_ns=start, end_ns=start + duration,
                        status=int(entry.get("DownstreamStatus") or 0),
                        origin_status=int(entry.get("OriginStatus") or 0),
                        upstream=upstream_of(str(entry.get("ServiceURL") or ""), str(entry.get("ServiceAddr") or "")),
                        origin_duration_ns=int(entry.get("OriginDuration") or 0),
                        retries=int(entry.get("RetryAttempts") or 0))


def parse_lines(lines: Iterable[str], wall_anchor_ns: int) -> list[AccessRecord]:
    return [r for r in (parse_line(x, wall_anchor_ns) for x in lines) if r is not None]


def read_access_log(run_dir: str | os.PathLike, wall_anchor_ns: int) -> list[AccessRecord] | None:
    """The run's access records, or None when the run did not go through an ingress."""
    p = Path(run_dir) / INGRESS_DIR / ACCESS_LOG
    if not p.exists():
        return None
    with open(p, encoding="utf-8", errors="replace") as f:
        return parse_lines(f, wall_anchor_ns)


def proxy_errors(run_dir: str | os.PathLike) -> dict[str, int]:
    """Why the proxy answered 5xx, from its own debug log: error text (addresses
    stripped) -> count. Traefik logs each failed upstream attempt this way."""
    p = Path(run_dir) / INGRESS_DIR / PROXY_LOG
    out: dict[str, int] = {}
    if not p.exists():
        return out
    with open(p, encoding="utf-8", errors="replace") as f:
        for line in f:
            if '"error"' not in line:
                continue
            try:
                entry: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue
            msg, err = str(entry.get("message", "")), str(entry.get("error", ""))
            if not re.match(r"^5\d\d ", msg):
                continue
            key = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "ADDR", err)
            key = re.sub(r"\"[^\"]*\"", "URL", key)
            out[key] = out.get(key, 0) + 1
    return out


def retry_attempts(run_dir: str | os.PathLike) -> int:
    """Retries the proxy made, from its debug log ("New attempt N for request"):
    Traefik v3.6 leaves the access log's RetryAttempts at 0 for them (seen here)."""
    p = Path(run_dir) / INGRESS_DIR / PROXY_LOG
    if not p.exists():
        return 0
    with open(p, encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if '"New attempt ' in line)
