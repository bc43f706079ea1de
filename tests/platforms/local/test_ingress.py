"""The local ingress hop without the proxy: what it writes for Traefik's file
provider and the events it stamps when the proxy's view (read back from its
API) changes. The real proxy runs in test_ingress_run.py."""

from __future__ import annotations

import yaml

from harness.model.clock import RunClock
from harness.model.events import EventWriter, read_events
from harness.model.routing import Route
from harness.model.scenario import Ingress
from harness.platforms.local.ingress import LocalIngress
from harness.platforms.local.process import PortAllocator


def make(tmp_path) -> tuple[LocalIngress, EventWriter]:
    events = EventWriter(tmp_path / "events.jsonl")
    ing = LocalIngress(opts=Ingress(retries=1), host="127.0.0.1", ports=PortAllocator("127.0.0.1"),
                       run_dir=tmp_path, clock=RunClock.start(), events=events)
    return ing, events


def test_set_upstreams_writes_the_view_for_the_file_provider(tmp_path):
    ing, _ = make(tmp_path)
    ing.set_upstreams({"api-1": Route("127.0.0.1", 9001, "api-1"), "api-2": Route("127.0.0.1", 9002, "api-2")})
    cfg = yaml.safe_load((tmp_path / "ingress" / "dynamic" / "route.yaml").read_text())
    servers = cfg["http"]["services"]["app"]["loadBalancer"]["servers"]
    assert servers == [{"url": "http://127.0.0.1:9001"}, {"url": "http://127.0.0.1:9002"}]
    assert cfg["http"]["middlewares"]["retry"] == {"retry": {"attempts": 1}}
    assert not ing.settled  # written, not yet seen in the proxy
    assert ing.url("/work") == f"http://127.0.0.1:{ing.web_port}/work"
    assert ing.resolver().pick() == Route("127.0.0.1", ing.web_port, None)


def test_the_proxy_view_becomes_ingress_hop_events_with_its_reaction(tmp_path):
    ing, events = make(tmp_path)
    ing.set_upstreams({"api-1": Route("127.0.0.1", 9001, "api-1"), "api-2": Route("127.0.0.1", 9002, "api-2")})
    written = ing._written_ns
    ing._apply(written + 5_000_000, {"127.0.0.1:9001", "127.0.0.1:9002"})
    assert ing.settled and ing.visible_pods() == {"api-1", "api-2"}
    ing.set_upstreams({"api-2": Route("127.0.0.1", 9002, "api-2")})
    ing._apply(ing._written_ns + 1_500_000_000, {"127.0.0.1:9001", "127.0.0.1:9002"})  # not yet applied
    assert not ing.settled
    ing._apply(ing._written_ns + 2_000_000_000, {"127.0.0.1:9002"})
    events.close()
    got = [(e["pod"], e["kind"], e["detail"]["hop"], e["detail"]["upstream"], e["detail"]["reaction_ms"])
           for e in read_events(tmp_path)]
    assert got == [("api-1", "endpoint_added", "ingress", "127.0.0.1:9001", 5.0),
                   ("api-2", "endpoint_added", "ingress", "127.0.0.1:9002", 5.0),
                   ("api-1", "endpoint_removed", "ingress", "127.0.0.1:9001", 2000.0)]
    assert ing.settled and ing.reactions_ms == [5.0, 2000.0]
