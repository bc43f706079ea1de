"""How many request records per second the generators' record path carries
on the project cluster, and how late they arrive (docs/generators.md).

    .venv/bin/python bench/logstream.py --kubeconfig .cache/cluster/kubeconfig [--seconds 10] [--rows 2000]

Runs harness.traffic.wirebench in one pod of the generator image, writing
synthetic record batches as fast as it can, and reads them back:
  log     through the API server's pod log stream (follow), as harness.fleet does;
  tcp     over TCP straight to a collector socket this process opens on the
          node IP (198.18.0.1, the project cluster's node bridge): the alternative.
Latency is reader arrival - writer's CLOCK_MONOTONIC stamp (the pod and this
process share the node's monotonic clock on the one-node cluster). Needs
the cluster up (under the k8s lock); deletes its namespace at the end.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.model.generators import GENERATOR_IMAGE  # noqa: E402
from harness.platforms.kubernetes.client import load_api  # noqa: E402
from harness.traffic.recordwire import Reassembler  # noqa: E402

NODE_IP = "198.18.0.1"


def pod(name: str, args: list[str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "generator", "image": GENERATOR_IMAGE, "imagePullPolicy": "Never",
                                     "command": ["python", "-m", "harness.traffic.wirebench", *args]}]}}


class Counter:
    def __init__(self):
        self.r = Reassembler()
        self.rows = 0
        self.bytes = 0
        self.lat: list[float] = []
        self.first = self.last = None
        self.stamps: dict[int, int] = {}
        self.done = threading.Event()

    def feed(self, line: str) -> None:
        now = time.monotonic_ns()
        self.bytes += len(line) + 1
        for kind, item in self.r.feed(line):
            if kind == "status":
                if item.get("event") == "bench":
                    self.stamps[item["n"]] = item["t"]
                elif item.get("event") == "bench_done":
                    self.done.set()
            else:
                n = max(self.stamps) if self.stamps else None
                if n is not None:
                    self.lat.append((now - self.stamps[n]) / 1e6)
                self.rows += item.num_rows
                self.first = self.first or now
                self.last = now

    def result(self, name: str) -> dict:
        span = ((self.last or 0) - (self.first or 0)) / 1e9 or 1e-9
        lat = np.array(self.lat or [0.0])
        return {"path": name, "records": self.rows, "records_per_s": round(self.rows / span),
                "MB_per_s": round(self.bytes / span / 1e6, 2), "bytes_per_record": round(self.bytes / max(self.rows, 1), 1),
                "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                               "p99": round(float(np.percentile(lat, 99)), 1), "max": round(float(lat.max()), 1)},
                "torn": self.r.torn + self.r.bad}


def wait_running(api, ns, name, deadline=90):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        p = api.get("pods", ns, name)
        if p.get("status", {}).get("phase") in ("Running", "Succeeded", "Failed"):
            return
        time.sleep(0.2)
    raise SystemExit(f"pod {name} did not start")


def via_log(api, ns, seconds, rows) -> dict:
    c = Counter()
    api.create("pods", ns, pod("bench-log", ["--seconds", str(seconds), "--rows", str(rows)]))
    wait_running(api, ns, "bench-log")
    stream = api.pod_log(ns, "bench-log", "generator")
    t = threading.Thread(target=lambda: [c.feed(x["line"]) for x in stream], daemon=True)
    t.start()
    c.done.wait(seconds + 60)
    stream.close()
    return c.result("pod log stream (API server, follow)")


def via_tcp(api, ns, seconds, rows) -> dict:
    c = Counter()
    srv = socket.socket()
    srv.bind((NODE_IP, 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    api.create("pods", ns, pod("bench-tcp", ["--seconds", str(seconds), "--rows", str(rows),
                                             "--tcp", f"{NODE_IP}:{port}"]))
    srv.settimeout(120)
    conn, _ = srv.accept()
    with conn, conn.makefile("r", encoding="ascii") as f:
        for line in f:
            c.feed(line)
            if c.done.is_set():
                break
    srv.close()
    return c.result("TCP to a collector on the node IP")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rows", type=int, default=2000)
    a = ap.parse_args()
    api = load_api(kubeconfig=a.kubeconfig, context=None)
    ns = f"rh-logbench-{secrets.token_hex(3)}"
    api.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": ns, "labels": {"app.kubernetes.io/managed-by": "rollout-harness"}}})
    try:
        for fn in (via_log, via_tcp):
            print(json.dumps(fn(api, ns, a.seconds, a.rows)), flush=True)
    finally:
        api.delete_namespace(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
