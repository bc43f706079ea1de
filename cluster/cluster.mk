# The project's own single-node Kubernetes for end-to-end tests (issue 6).
# Included by the top Makefile. Everything runs as root on this machine; the
# build cache is shared across checkouts, runtime state lives in .cache/cluster.
CLUSTER_VERSION := v1.34.4
CLUSTER_CACHE   := $${ROLLOUT_HARNESS_CACHE:-$$HOME/.cache/rollout-harness}/cluster/$(CLUSTER_VERSION)
KUBECTL         := $(shell echo "$${ROLLOUT_HARNESS_CACHE:-$$HOME/.cache/rollout-harness}")/cluster/$(CLUSTER_VERSION)/bin/kubectl
KUBECONFIG_E2E  := $(CURDIR)/.cache/cluster/kubeconfig
export KUBECTL

.PHONY: cluster-up cluster-down cluster-status cluster-check cluster-verify images generator-image e2e

help: cluster-help
.PHONY: cluster-help
cluster-help:
	@echo "make cluster-up       build (cached) and start a real single-node Kubernetes; kubeconfig .cache/cluster/kubeconfig"
	@echo "make cluster-down     stop it and remove everything it added to the host"
	@echo "make cluster-status   daemons, node and pods"
	@echo "make cluster-check    acceptance: 4 replicas, rollout restart, all 4 pods answer on 127.0.0.1:<nodePort>"
	@echo "make cluster-verify   snapshot host, up, check, down with pods running, compare host (figures)"
	@echo "make images           build the pause and sample-app images (imported if the cluster runs)"
	@echo "make generator-image  build the generator pods' image (traffic.generators; docs/generators.md)"
	@echo "make e2e              cluster-up, the e2e tests, cluster-down"

cluster-up:
	bash cluster/scripts/up.sh

cluster-down:
	bash cluster/scripts/down.sh

cluster-status:
	@bash cluster/scripts/status.sh

cluster-check:
	KUBECTL=$(KUBECTL) python3 cluster/scripts/acceptance.py

cluster-verify:
	bash cluster/scripts/verify.sh

images:
	bash cluster/scripts/install-deps.sh
	bash cluster/scripts/build-node.sh
	bash cluster/images/build-images.sh
	@if [ -S .cache/cluster/containerd/containerd.sock ]; then bash cluster/scripts/images.sh import; \
	 else echo "[cluster] containerd not running: make cluster-up imports the images"; fi

# The generator pods' image alone (cluster-up builds it too): archive under
# $(CLUSTER_CACHE)/images/generator.tar, imported when the cluster runs.
generator-image:
	bash cluster/scripts/install-deps.sh
	bash cluster/images/build-images.sh generator
	@if [ -S .cache/cluster/containerd/containerd.sock ]; then bash cluster/scripts/images.sh import; fi

# up, tests, down; down runs even when up or the tests fail, and the first failure is the exit code.
e2e: $(STAMP)
	@rc=0; bash cluster/scripts/up.sh || rc=$$?; \
	if [ $$rc -eq 0 ]; then ROLLOUT_HARNESS_KUBECONFIG=$(KUBECONFIG_E2E) KUBECONFIG=$(KUBECONFIG_E2E) $(PY) -m pytest -m e2e tests/e2e -q --durations=25 || rc=$$?; fi; \
	bash cluster/scripts/down.sh || { [ $$rc -ne 0 ] || rc=1; }; exit $$rc
