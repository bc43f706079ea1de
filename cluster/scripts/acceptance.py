#!/usr/bin/env python3
"""The e2e cluster's own acceptance check (issue 6's "done when").

On a running cluster: deploy the sample app, scale it to 4 replicas, run
`kubectl rollout restart` and wait for it, then send a bounded number of
requests to 127.0.0.1:<nodePort> and check that every one of the 4 current
pods answered (X-Pod-Name). Prints the figures; exit 0 only if all held.
Traffic goes to 127.0.0.1 only; the loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CLUSTER = Path(__file__).resolve().parents[1]
REPO = CLUSTER.parent
STATE = Path(os.environ.get("CLUSTER_STATE", REPO / ".cache" / "cluster"))
NAMESPACE = "rh-accept"
REPLICAS = 4
REQUESTS = 200
DEADLINE_S = 60.0
PROXY_SYNC_S = 2.0  # kube-proxy's minSyncPeriod is 1 s


def kubectl(*args: str, stdin: str | None = None) -> str:
    cmd = [os.environ.get("KUBECTL", "kubectl"), "--kubeconfig", str(STATE / "kubeconfig"), *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"acceptance: {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def manifest() -> str:
    env = dict(os.environ, NAMESPACE=NAMESPACE, REPLICAS="1",
               SAMPLE_APP_IMAGE="localhost/rollout-harness-sample-app:0.1.0")
    template = (CLUSTER / "config" / "sample-app.yaml.tmpl").read_text()
    return subprocess.run(["envsubst"], input=template, capture_output=True, text=True,
                          env=env, check=True).stdout


def timed(label: str, func) -> float:
    start = time.monotonic()
    func()
    took = time.monotonic() - start
    print(f"{label}: {took:.1f} s")
    return took


def current_pods() -> set[str]:
    pods = json.loads(kubectl("-n", NAMESPACE, "get", "pods", "-l", "app=sample-app", "-o", "json"))
    return {p["metadata"]["name"] for p in pods["items"] if not p["metadata"].get("deletionTimestamp")}


def ready_endpoints() -> set[str]:
    slices = json.loads(kubectl("-n", NAMESPACE, "get", "endpointslices", "-l",
                                "kubernetes.io/service-name=sample-app", "-o", "json"))
    return {ep["targetRef"]["name"] for sl in slices["items"] for ep in sl.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready") and ep.get("targetRef")}


def hit(port: int) -> dict[str, int]:
    """REQUESTS requests, each on a new connection (so kube-proxy picks an endpoint)."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + DEADLINE_S
    for _ in range(REQUESTS):
        if time.monotonic() > deadline:
            break
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            pod = resp.getheader("X-Pod-Name") or f"<status {resp.status}, no header>"
        except OSError as exc:
            pod = f"<error {type(exc).__name__}>"
        finally:
            conn.close()
        seen[pod] = seen.get(pod, 0) + 1
    return seen


def main() -> int:
    # A namespace left from an earlier check may still be terminating.
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--timeout=120s")
    rollout = ("-n", NAMESPACE, "rollout", "status", "deploy/sample-app", "--timeout=300s")
    timed("deploy (1 replica)", lambda: (kubectl("apply", "-f", "-", stdin=manifest()),
                                          kubectl(*rollout)))
    timed(f"scale to {REPLICAS}", lambda: (kubectl("-n", NAMESPACE, "scale", "deploy/sample-app",
                                                   f"--replicas={REPLICAS}"), kubectl(*rollout)))
    before = current_pods()
    timed("rollout restart", lambda: (kubectl("-n", NAMESPACE, "rollout", "restart",
                                              "deploy/sample-app"), kubectl(*rollout)))
    # Old pods may still be terminating for a moment after the rollout completes.
    deadline = time.monotonic() + 60
    while len(pods := current_pods()) != REPLICAS and time.monotonic() < deadline:
        time.sleep(1)
    # The rollout is complete before kube-proxy has programmed the last endpoint:
    # wait for the EndpointSlice to list every pod ready, then one proxy sync.
    deadline = time.monotonic() + 60
    while ready_endpoints() != pods and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(PROXY_SYNC_S)
    port = int(kubectl("-n", NAMESPACE, "get", "svc", "sample-app", "-o",
                       "jsonpath={.spec.ports[0].nodePort}"))
    seen = hit(port)
    print(f"pods after restart: {sorted(pods)} (none of {sorted(before)})")
    print(f"{sum(seen.values())} requests to 127.0.0.1:{port}: " + json.dumps(seen, sort_keys=True))
    if not os.environ.get("ACCEPTANCE_KEEP"):  # kept: cluster-verify tears down with pods running
        kubectl("delete", "namespace", NAMESPACE, "--wait=false")
    ok = set(seen) == pods and len(pods) == REPLICAS and not (pods & before)
    print("acceptance:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
