"""The generator Job as rendered, the in-cluster URL, and the schedule split."""

import json

import pytest

from harness.model.generators import Generators
from harness.platforms.kubernetes.generators import JOB_NAME, Share, render_job, target_url
from harness.traffic.schedule import scheduled_ns

SVC = {"metadata": {"name": "sample-app"},
       "spec": {"clusterIP": "198.19.4.5", "ports": [{"port": 8080, "nodePort": 30123}]}}
ING = {"metadata": {"name": "traefik"},
       "spec": {"clusterIP": "198.19.7.7", "ports": [{"name": "api", "port": 9000}, {"name": "web", "port": 80}]}}


@pytest.mark.parametrize("target,url", [
    ("service", "http://198.19.4.5:8080/work"),
    ("nodePort", "http://{host_ip}:30123/work"),
    ("ingress", "http://198.19.7.7:80/work"),
])
def test_target_url(target, url):
    assert target_url(Generators(count=2, target=target), service=SVC, ingress=ING, path="/work") == url


def test_a_headless_service_has_no_clusterip_to_hit():
    with pytest.raises(ValueError, match="no ClusterIP"):
        target_url(Generators(count=1), service={"spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
                   ingress=None, path="/")


def test_one_indexed_job_no_replacement_bounded():
    gen = Generators(count=3, cpu="250m")
    job = render_job(gen, namespace="ns1", run_label="run-1", spec={"engine": {"url": "u"}, "max_duration": 9},
                     pull_policy="Never", deadline_s=600)
    s = job["spec"]
    assert job["kind"] == "Job" and job["metadata"]["name"] == JOB_NAME and job["metadata"]["namespace"] == "ns1"
    assert s["completionMode"] == "Indexed" and s["completions"] == 3 and s["parallelism"] == 3
    assert s["backoffLimitPerIndex"] == 0 and s["activeDeadlineSeconds"] == 600
    pod = s["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    c = pod["containers"][0]
    assert c["image"] == gen.image and c["imagePullPolicy"] == "Never"
    assert c["resources"]["requests"]["cpu"] == "250m"
    env = {e["name"]: e for e in c["env"]}
    assert json.loads(env["RH_GENERATOR"]["value"]) == {"engine": {"url": "u"}, "max_duration": 9}
    assert env["RH_GENERATORS"]["value"] == "3"
    assert env["HOST_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    # the app's pod watch selects the run label: generator pods must not carry it
    assert "rollout-harness.io/run" not in s["template"]["metadata"]["labels"]
    assert s["template"]["metadata"]["labels"]["rollout-harness.io/generator-of"] == "run-1"


@pytest.mark.parametrize("count,total", [(1, 10), (3, 10), (3, 3000), (7, 5), (4, 0)])
def test_the_shares_make_the_whole_schedule_once(count, total):
    rate, start = 1500.0, 10**9
    shares = [Share(i, count) for i in range(count)]
    seqs = sorted(s for sh in shares for s in sh.seqs(total))
    assert seqs == list(range(total))
    assert sum(sh.size(total) for sh in shares) == total
    merged = sorted(scheduled_ns(s, start_ns=start, rate=rate) for sh in shares for s in sh.seqs(total))
    assert merged == [scheduled_ns(s, start_ns=start, rate=rate) for s in range(total)]
    # each share is evenly spread: generator i sends at rate/count, offset by i/rate
    if total >= 2 * count:
        times = [scheduled_ns(s, start_ns=start, rate=rate) for s in shares[-1].seqs(total)]
        gaps = {b - a for a, b in zip(times, times[1:])}
        assert max(gaps) - min(gaps) <= 1 and abs(min(gaps) - count * 1e9 / rate) <= 1
