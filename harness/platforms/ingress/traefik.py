"""Traefik as the ingress hop: where its binary is, the static configuration
both platforms start it with, and the dynamic configuration of the run's
route (the local platform writes it for the file provider; on a cluster the
Kubernetes Ingress provider builds the same from an Ingress).

Pure functions of the scenario and addresses, so they are tested without
running the proxy; ``api_servers`` reads back which upstreams the running
proxy routes to (its API), which is how the harness sees the ingress's own
view of the endpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from harness.model.ingresslog import ACCESS_LOG, PROXY_LOG
from harness.model.scenario import Ingress

#: the version proxy/build.sh builds (proxy/go.mod pins it; a test checks they agree)
TRAEFIK_VERSION = "v3.6.12"
#: names in the dynamic configuration
SERVICE = "app"
ROUTER = "app"
TRANSPORT = "upstream"
RETRY = "retry"
#: the access-log header the harness keeps: the engine's request seq
KEEP_HEADER = "X-Request-Id"


def cache_root() -> Path:
    return Path(os.environ.get("ROLLOUT_HARNESS_CACHE") or Path.home() / ".cache" / "rollout-harness")


def binary_path() -> Path:
    """ROLLOUT_HARNESS_TRAEFIK, or the one `make traefik` built into the cache."""
    env = os.environ.get("ROLLOUT_HARNESS_TRAEFIK")
    if env:
        return Path(env)
    return cache_root() / "traefik" / TRAEFIK_VERSION / "bin" / "traefik"


def static_args(*, web: str, api: str, provider: list[str], log_dir: str | None) -> list[str]:
    """Command-line (static) configuration. ``web``/``api`` are listen
    addresses; ``provider`` the provider flags; ``log_dir`` None = stdout
    (a container's log), else the access log and debug log go to files there."""
    args = [
        f"--entryPoints.web.address={web}",
        f"--entryPoints.traefik.address={api}",
        "--api=true", "--api.insecure=true", "--api.dashboard=false",
        "--ping=true",
        "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
        "--accessLog=true", "--accessLog.format=json", "--accessLog.bufferingSize=0",
        "--accessLog.fields.defaultMode=keep", "--accessLog.fields.headers.defaultMode=drop",
        f"--accessLog.fields.headers.names.{KEEP_HEADER}=keep",
        # DEBUG: Traefik logs why each upstream attempt failed only at this level
        "--log.level=DEBUG", "--log.format=json",
        *provider,
    ]
    if log_dir is not None:
        args += [f"--accessLog.filePath={Path(log_dir) / ACCESS_LOG}", f"--log.filePath={Path(log_dir) / PROXY_LOG}"]
    return args


def _ms(seconds: float) -> str:
    return f"{int(round(seconds * 1000))}ms"


def idle_timeout(opts: Ingress) -> str:
    return _ms(opts.upstream_idle_timeout_seconds)


def forwarding_timeouts(opts: Ingress) -> dict[str, str]:
    """serversTransport ``forwardingTimeouts`` (Traefik's names) for the run's
    upstream transport; a zero response-header timeout is left out (no limit)."""
    out = {"idleConnTimeout": idle_timeout(opts), "dialTimeout": _ms(opts.dial_timeout_seconds)}
    if opts.response_header_timeout_seconds:
        out["responseHeaderTimeout"] = _ms(opts.response_header_timeout_seconds)
    return out


def dynamic_config(upstreams: list[str], opts: Ingress) -> dict[str, Any]:
    """The file provider's configuration: one router for every path, one
    service over ``upstreams`` (host:port), the retry middleware when asked."""
    router: dict[str, Any] = {"rule": "PathPrefix(`/`)", "service": SERVICE, "entryPoints": ["web"]}
    cfg: dict[str, Any] = {"http": {
        "routers": {ROUTER: router},
        "services": {SERVICE: {"loadBalancer": {
            "servers": [{"url": f"http://{u}"} for u in upstreams],
            "passHostHeader": True,
            "serversTransport": TRANSPORT,
        }}},
        "serversTransports": {TRANSPORT: {"forwardingTimeouts": forwarding_timeouts(opts)}},
    }}
    if opts.retries:
        router["middlewares"] = [RETRY]
        cfg["http"]["middlewares"] = {RETRY: {"retry": {"attempts": opts.retries}}}
    return cfg


def write_dynamic_config(directory: Path, upstreams: list[str], opts: Ingress) -> None:
    """Replace the watched file atomically (the proxy never reads half a file);
    the temporary file is written beside the watched directory, not in it, so
    the proxy sees one change per write."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.route.yaml.tmp"
    tmp.write_text(yaml.safe_dump(dynamic_config(upstreams, opts), sort_keys=True), encoding="utf-8")
    os.replace(tmp, directory / "route.yaml")


def api_servers(body: bytes) -> set[str] | None:
    """host:port of every server in one ``/api/http/services/<name>`` answer
    (None when the body is not that JSON). A ``fenced`` server is left out:
    Traefik's Kubernetes providers keep a terminating endpoint that is still
    ``serving`` in the service as fenced, listed by the API but given no new
    requests, so for the proxy's routing it is already removed.
    """
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    servers = ((data.get("loadBalancer") or {}).get("servers")) or []
    out = set()
    for s in servers:
        url = str(s.get("url", "")) if isinstance(s, dict) else ""
        if "://" in url and not s.get("fenced"):
            out.add(url.split("://", 1)[1].rstrip("/"))
    return out
