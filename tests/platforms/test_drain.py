"""The drain steps (harness.platforms.drain.run_drain) with fake time: the
429 retry every 5 s, the timeout, the wait for deletion, the uncordon."""

from __future__ import annotations

import heapq

import anyio
import pytest

from harness.platforms.drain import run_drain


class FakeTime:
    """A virtual clock: ``sleep`` waits until the clock reaches its wake time;
    ``run`` advances the clock to the earliest sleeper whenever every task
    is blocked, so concurrent tasks see one consistent time."""

    def __init__(self):
        self.t_ns = 0
        self._sleepers: list[tuple[int, int, anyio.Event]] = []
        self._seq = 0

    def now(self) -> int:
        return self.t_ns

    async def sleep(self, s: float) -> None:
        ev = anyio.Event()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.t_ns + int(s * 1e9), self._seq, ev))
        await ev.wait()

    async def run(self, coro_fn):
        result = []

        async def body():
            result.append(await coro_fn())
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(body)
            while True:
                await anyio.wait_all_tasks_blocked()
                if not self._sleepers:
                    await anyio.sleep(0)
                    continue
                at, _, ev = heapq.heappop(self._sleepers)
                self.t_ns = max(self.t_ns, at)
                ev.set()
        return result[0]


class FakeCluster:
    """Pods per node; evictions answered by ``answers`` (pod -> list of codes,
    the last repeated); an evicted pod is gone after ``terminate_s``."""

    def __init__(self, time: FakeTime, pods_on: dict[str, list[str]], answers: dict[str, list[int]],
                 terminate_s: float = 2.0):
        self.time, self.placement, self.answers, self.terminate_s = time, pods_on, answers, terminate_s
        self.cordoned: set[str] = set()
        self.log: list[tuple] = []
        self.evicted_at: dict[str, int] = {}
        self.fail_uncordon: set[str] = set()

    async def cordon(self, node):
        was = node in self.cordoned
        self.cordoned.add(node)
        self.log.append(("cordon", node))
        return not was

    async def uncordon(self, node):
        if node in self.fail_uncordon:
            raise RuntimeError(f"uncordon {node}: connection refused")
        self.cordoned.discard(node)
        self.log.append(("uncordon", node))

    async def pods_on(self, node):
        return list(self.placement.get(node, []))

    async def evict(self, pod):
        seq = self.answers.get(pod, [201])
        code = seq.pop(0) if len(seq) > 1 else seq[0]
        self.log.append(("evict", pod, code, self.time.now()))
        if code == 201:
            self.evicted_at[pod] = self.time.now()
            return 201, "evicted", {}
        return code, "Cannot evict pod as it would violate the pod's disruption budget.", {"disruptions_allowed": 0}

    async def gone(self, pod):
        at = self.evicted_at.get(pod)
        return at is not None and self.time.now() - at >= self.terminate_s * 1e9


def drain(cluster, time, nodes, timeout_s=60.0, **kw):
    events = []

    async def main():
        return await run_drain(cluster, nodes, timeout_s=timeout_s, now=time.now, sleep=time.sleep,
                               emit=lambda kind, pod, **d: events.append((str(kind), pod, time.now(), d)), **kw)

    return anyio.run(time.run, main), events


def test_429_is_retried_every_5s_until_allowed():
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a", "b"]}, {"a": [201], "b": [429, 429, 201]})
    res, events = drain(c, t, ["n1"])
    tries_b = [e[3] for e in c.log if e[0] == "evict" and e[1] == "b"]
    assert tries_b == [0, 5_000_000_000, 10_000_000_000]
    assert res.complete and sorted(res.evicted) == ["a", "b"]
    assert res.refusals == 2 and res.requests == 4
    kinds = [e[0] for e in events]
    assert kinds[0] == "node_cordoned" and kinds[-1] == "node_uncordoned"
    assert kinds.count("eviction_refused") == 2 and kinds.count("evicted") == 2
    # the drain waits until the last evicted pod is gone (b evicted at 10 s, gone 2 s later)
    assert res.ended_ns >= 12_000_000_000
    assert c.cordoned == set()


def test_a_pdb_that_never_allows_times_out_and_still_uncordons():
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a"]}, {"a": [429]})
    res, events = drain(c, t, ["n1"], timeout_s=30)
    assert not res.complete and res.timed_out
    assert res.evicted == [] and "a" in res.blocked
    # tries at 0, 5, ..., 30 s at most; none after the timeout
    tries = [e[3] for e in c.log if e[0] == "evict"]
    assert tries == [i * 5_000_000_000 for i in range(len(tries))] and tries[-1] <= 30_000_000_000
    assert res.refusals == len(tries) >= 6
    assert ("uncordon", "n1") in c.log and c.cordoned == set()
    assert "did not finish within 30s" in res.failure_text(30)


def test_no_uncordon_when_asked():
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a"]}, {})
    res, _ = drain(c, t, ["n1"], uncordon=False)
    assert res.complete and c.cordoned == {"n1"}


def test_an_evicted_pod_that_never_goes_times_out():
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a"]}, {}, terminate_s=1000)
    res, _ = drain(c, t, ["n1"], timeout_s=20)
    assert res.timed_out and res.blocked == {"a": "evicted but still terminating"}


@pytest.mark.parametrize("nodes", [["n1", "n2"]])
def test_every_node_is_cordoned_before_any_eviction(nodes):
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a"], "n2": ["b"]}, {})
    res, _ = drain(c, t, nodes)
    first_evict = next(i for i, e in enumerate(c.log) if e[0] == "evict")
    assert {e[1] for e in c.log[:first_evict] if e[0] == "cordon"} == {"n1", "n2"}
    assert sorted(res.evicted) == ["a", "b"]


def test_evict_mode_cordons_nothing_and_evicts_only_the_pods_named():
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a", "b"]}, {"b": [429, 201]})
    res, events = drain(c, t, [], pods=["b"])
    assert res.complete and res.evicted == ["b"] and res.refusals == 1
    assert not any(e[0] in ("cordon", "uncordon") for e in c.log)
    assert {e[1] for e in c.log if e[0] == "evict"} == {"b"}
    assert "node_cordoned" not in [e[0] for e in events]


def cut_short(cluster, time, nodes, at_s, **kw):
    """The drain cancelled at ``at_s`` (Ctrl-C / SIGTERM: the runner cancels the
    disruption): what run_drain left behind, and its events."""
    events, results = [], []

    async def main():
        async with anyio.create_task_group() as tg:
            async def drainer():
                results.append(await run_drain(cluster, nodes, timeout_s=60, now=time.now, sleep=time.sleep,
                                               emit=lambda kind, pod, **d: events.append((str(kind), pod, d)), **kw))
            tg.start_soon(drainer)
            await time.sleep(at_s)
            tg.cancel_scope.cancel()
        return results

    return anyio.run(time.run, main), events


@pytest.mark.parametrize("uncordon", [True, False])
def test_a_drain_cut_short_gives_back_the_nodes_it_cordoned(uncordon):
    """Ctrl-C in the middle of the 429 retries: the nodes are uncordoned even
    with uncordon=False (that keeps them cordoned only after a finished drain)."""
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a"], "n2": ["b"]}, {"a": [429], "b": [429]})
    results, events = cut_short(c, t, ["n1", "n2"], at_s=12, uncordon=uncordon)
    assert results == []  # cancelled: run_drain did not return
    assert c.cordoned == set() and ("uncordon", "n1") in c.log and ("uncordon", "n2") in c.log
    assert [e[2] for e in events if e[0] == "node_uncordoned"] == [{"node": "n1", "cut_short": True},
                                                                   {"node": "n2", "cut_short": True}]
    # no eviction after the cancel
    assert max(e[3] for e in c.log if e[0] == "evict") <= 10_000_000_000


def test_a_node_cordoned_before_the_drain_stays_cordoned():
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a"]}, {})
    c.cordoned.add("n1")
    res, events = drain(c, t, ["n1"])
    assert res.complete and res.cordoned == [] and c.cordoned == {"n1"} and ("uncordon", "n1") not in c.log
    assert [e[3] for e in events if e[0] == "node_cordoned"] == [{"node": "n1", "already_cordoned": True}]


def test_an_uncordon_that_fails_is_recorded_and_the_other_nodes_still_go_back():
    t = FakeTime()
    c = FakeCluster(t, {"n1": ["a"], "n2": ["b"]}, {})
    c.fail_uncordon = {"n1"}
    res, events = drain(c, t, ["n1", "n2"])
    assert res.complete and c.cordoned == {"n1"}
    assert res.left_cordoned == {"n1": "RuntimeError: uncordon n1: connection refused"}
    assert res.as_dict()["left_cordoned"] == res.left_cordoned and res.as_dict()["cordoned"] == ["n1", "n2"]
    assert [e[3]["node"] for e in events if e[0] == "node_uncordoned"] == ["n2"]
