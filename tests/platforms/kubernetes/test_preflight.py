"""Preflight: each failure names the fix, with exit 2 (configuration) or 3
(cluster not usable); the Role manifest grants exactly what is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import EXIT_BAD_INPUT, EXIT_INCONCLUSIVE, BadInput, PlatformError
from harness.platforms.kubernetes import preflight
from harness.platforms.kubernetes.client import KubeError, load_api
from tests.platforms.kubernetes.fakekube import FakeKube

ROLE = Path(__file__).resolve().parents[3] / "deploy" / "rbac" / "role.yaml"


def role_rules() -> set[tuple[str, str, str]]:
    docs = [d for d in yaml.safe_load_all(ROLE.read_text()) if d and d["kind"] == "Role"]
    return {(g, r, v) for rule in docs[0]["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


def test_role_grants_exactly_the_verbs_preflight_checks():
    checked = {(p.group, p.resource + (f"/{p.subresource}" if p.subresource else ""), v)
               for p in preflight.PERMISSIONS for v in p.verbs}
    assert role_rules() == checked


class Denying(FakeKube):
    def __init__(self, denied: set[tuple[str, str]]):
        super().__init__()
        self.denied = denied

    def access_review(self, namespace, verb, resource, group, subresource=""):
        res = resource + (f"/{subresource}" if subresource else "")
        return ((verb, res) not in self.denied), "no RBAC policy matched"


def test_missing_permission_names_verb_resource_and_the_role():
    api = Denying({("watch", "pods"), ("get", "pods/log")})
    with pytest.raises(BadInput) as err:
        preflight.check_access(api, "team-a", mode="target", per_run_namespace=False)
    text = str(err.value)
    assert "watch pods" in text and "get pods/log" in text and "deploy/rbac/role.yaml" in text
    assert err.value.exit_code == EXIT_BAD_INPUT


def test_target_mode_needs_no_create():
    api = Denying({("create", "deployments"), ("create", "services"), ("create", "poddisruptionbudgets")})
    preflight.check_access(api, "team-a", mode="target", per_run_namespace=False)


def test_namespace_per_run_needs_namespace_verbs_and_says_how_to_avoid_them():
    api = Denying({("create", "namespaces")})
    with pytest.raises(BadInput, match="kubernetes.namespace"):
        preflight.check_access(api, "rh-1", mode="managed", per_run_namespace=True)


def test_api_down_is_inconclusive():
    class Down(FakeKube):
        def version(self):
            raise KubeError("cannot reach the API server https://127.0.0.1:6443: connection refused")

    with pytest.raises(PlatformError, match="does not answer") as err:
        preflight.check_api(Down(), context="kind-rollout-harness")
    assert err.value.exit_code == EXIT_INCONCLUSIVE


@pytest.mark.parametrize("images,outcome", [
    (None, "not checked"),
    (["localhost/rollout-harness-sample-app:0.1.0"], "present"),
    (["docker.io/library/busybox:1"] * 50, "not conclusive"),
    (["docker.io/library/busybox:1"], BadInput),
], ids=["nodes-not-listable", "present", "truncated-list", "absent"])
def test_image_check(images, outcome):
    class Nodes(FakeKube):
        def node_images(self):
            return images

    image = "localhost/rollout-harness-sample-app:0.1.0"
    if outcome is BadInput:
        with pytest.raises(BadInput, match="make kind-load"):
            preflight.check_image(Nodes(), image, "Never")
    else:
        assert outcome in preflight.check_image(Nodes(), image, "Never")


def test_unknown_context_is_bad_input_listing_the_contexts(tmp_path):
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}]}))
    with pytest.raises(BadInput, match=r"no context 'kind-x'.*contexts there: a"):
        load_api(kubeconfig=str(cfg), context="kind-x")
    assert load_api(kubeconfig=str(cfg), context=None).context == "a"


def test_missing_kubeconfig_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="kubernetes.kubeconfig"):
        load_api(kubeconfig=str(tmp_path / "absent"), context=None)


def test_a_drain_needs_evictions_and_node_patch_others_do_not():
    api = Denying({("create", "pods/eviction"), ("patch", "nodes")})
    preflight.check_access(api, "team-a", mode="target", per_run_namespace=False)  # no drain: fine
    with pytest.raises(BadInput) as err:
        preflight.check_access(api, "team-a", mode="target", per_run_namespace=False, drain=True)
    text = str(err.value)
    assert "create pods/eviction" in text and "patch nodes" in text and "rollout-harness-drain" in text
