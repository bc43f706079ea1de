"""Traefik's configuration as the harness writes it, and its API read back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from harness.model.scenario import Ingress
from harness.platforms.ingress import traefik

REPO = Path(__file__).resolve().parents[3]


def test_the_pinned_version_is_the_one_proxy_build_builds():
    gomod = (REPO / "proxy" / "go.mod").read_text()
    assert re.search(rf"^require github.com/traefik/traefik/v3 {re.escape(traefik.TRAEFIK_VERSION)}$", gomod, re.M)


def test_binary_path_is_versioned_in_the_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("ROLLOUT_HARNESS_TRAEFIK", raising=False)
    monkeypatch.setenv("ROLLOUT_HARNESS_CACHE", str(tmp_path))
    assert traefik.binary_path() == tmp_path / "traefik" / traefik.TRAEFIK_VERSION / "bin" / "traefik"
    monkeypatch.setenv("ROLLOUT_HARNESS_TRAEFIK", "/opt/traefik")
    assert traefik.binary_path() == Path("/opt/traefik")


def test_dynamic_config_routes_everything_to_the_upstreams_without_retries_by_default():
    cfg = traefik.dynamic_config(["127.0.0.1:9001", "127.0.0.1:9002"], Ingress())
    http = cfg["http"]
    assert http["routers"]["app"] == {"rule": "PathPrefix(`/`)", "service": "app", "entryPoints": ["web"]}
    lb = http["services"]["app"]["loadBalancer"]
    assert lb["servers"] == [{"url": "http://127.0.0.1:9001"}, {"url": "http://127.0.0.1:9002"}]
    # Traefik's own defaults: idle 90 s, dial 30 s, no response-header limit
    assert http["serversTransports"]["upstream"]["forwardingTimeouts"] == {"idleConnTimeout": "90000ms",
                                                                          "dialTimeout": "30000ms"}
    assert "middlewares" not in http


def test_retries_and_idle_timeout_options():
    cfg = traefik.dynamic_config([], Ingress(retries=3, upstream_idle_timeout_seconds=0.5))
    http = cfg["http"]
    assert http["routers"]["app"]["middlewares"] == ["retry"]
    assert http["middlewares"]["retry"] == {"retry": {"attempts": 3}}
    assert http["serversTransports"]["upstream"]["forwardingTimeouts"]["idleConnTimeout"] == "500ms"
    assert http["services"]["app"]["loadBalancer"]["servers"] == []


def test_bounded_dial_and_response_header_timeouts():
    cfg = traefik.dynamic_config([], Ingress(dial_timeout_seconds=1, response_header_timeout_seconds=4.5))
    assert cfg["http"]["serversTransports"]["upstream"]["forwardingTimeouts"] == {
        "idleConnTimeout": "90000ms", "dialTimeout": "1000ms", "responseHeaderTimeout": "4500ms"}


def test_write_dynamic_config_replaces_the_file(tmp_path):
    traefik.write_dynamic_config(tmp_path, ["127.0.0.1:9001"], Ingress())
    traefik.write_dynamic_config(tmp_path, [], Ingress())
    assert [p.name for p in tmp_path.iterdir()] == ["route.yaml"]
    assert yaml.safe_load((tmp_path / "route.yaml").read_text())["http"]["services"]["app"]["loadBalancer"]["servers"] == []


def test_static_args_log_json_with_the_request_id_and_files_when_asked(tmp_path):
    args = traefik.static_args(web="127.0.0.1:1", api="127.0.0.1:2", provider=["--providers.file.directory=/x"],
                               log_dir=str(tmp_path))
    assert "--accessLog.format=json" in args and "--accessLog.fields.headers.names.X-Request-Id=keep" in args
    assert f"--accessLog.filePath={tmp_path / 'access.log'}" in args
    assert "--entryPoints.web.address=127.0.0.1:1" in args and "--providers.file.directory=/x" in args
    stdout = traefik.static_args(web=":80", api=":9000", provider=[], log_dir=None)
    assert not any(a.startswith(("--accessLog.filePath", "--log.filePath")) for a in stdout)


def test_api_servers_reads_the_service_answer():
    body = json.dumps({"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9001"}, {"url": "http://10.1.2.3:8080/"}]},
                       "status": "enabled", "name": "app@file"}).encode()
    assert traefik.api_servers(body) == {"127.0.0.1:9001", "10.1.2.3:8080"}
    assert traefik.api_servers(b'{"loadBalancer": {}}') == set()
    assert traefik.api_servers(b"<html>") is None


def test_an_ingress_run_without_the_proxy_built_is_bad_input_and_leaves_no_run_dir(tmp_path):
    """No Traefik binary is a missing prerequisite, not a failed run: exit 2,
    the fix named, nothing half-written."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    env = {**os.environ, "ROLLOUT_HARNESS_TRAEFIK": str(tmp_path / "no-traefik")}
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "scenarios/ingress-best-practice.yaml",
                           "--out", str(out), "-q"], capture_output=True, text=True, env=env, timeout=240,
                          cwd=Path(__file__).resolve().parents[3])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "make traefik" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not out.exists()
