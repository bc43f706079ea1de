# kind for users: a rollout under load on a real (throwaway) cluster.
# Included by the top Makefile. Needs docker and kind on PATH.
#   make kind-up      create the cluster (NodePort 30080 mapped to 127.0.0.1:30080)
#   make kind-load    build the sample app's image and load it into the cluster
#   make kind-demo    best-practice and no-prestop on the cluster, then cleanup
#   make kind-down    delete the cluster
#   make kind-e2e     all of the above, executed on this machine (docker and kind set up by the project),
#                     then the node drains on a multi-node kind cluster (docs/kind.md)
KIND          ?= kind
# The node image: empty means kind's own default (what users get). make
# kind-e2e sets the image it builds locally (deploy/kind/scripts, docs/kind.md).
KIND_IMAGE    ?=
KIND_CONFIG   ?= deploy/kind/kind-config.yaml
KIND_CLUSTER  ?= rollout-harness
KIND_CONTEXT  := kind-$(KIND_CLUSTER)
KIND_NODEPORT := 30080
SAMPLE_IMAGE  ?= localhost/rollout-harness-sample-app:0.1.0
KIND_SET      := --set kubernetes.context=$(KIND_CONTEXT) --set kubernetes.nodePort=$(KIND_NODEPORT) \
                 --set kubernetes.imagePullPolicy=IfNotPresent --set app.image=$(SAMPLE_IMAGE)

.PHONY: kind-up kind-load kind-load-generator kind-demo kind-down kind-help kind-e2e kind-images
help: kind-help
kind-help:
	@echo "make kind-up          create a kind cluster ($(KIND_CLUSTER)) with NodePort $(KIND_NODEPORT) on 127.0.0.1"
	@echo "make kind-load        docker build sample-app/ and kind load it ($(SAMPLE_IMAGE))"
	@echo "make kind-load-generator  build the generator image (traffic.generators) and kind load its archive"
	@echo "make kind-demo        best-practice + no-prestop on kind (PLATFORM=kubernetes), then cleanup"
	@echo "make kind-down        delete the kind cluster"
	@echo "make kind-e2e         set up dockerd+kind+images here (cached), kind-up, kind-load, best-practice and"
	@echo "                      no-prestop on kind, then the node drains on a 3-node kind cluster, kind-down, stop"
	@echo "                      dockerd; fails if the host is not as found (KIND_E2E_PHASES=\"single multi\")"

kind-up:
	@command -v $(KIND) >/dev/null || { echo "kind not found: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"; exit 2; }
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster $(KIND_CLUSTER) already exists"; \
	else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_CONFIG) $(if $(KIND_IMAGE),--image $(KIND_IMAGE)) --wait 120s; \
	fi

kind-load:
	@command -v docker >/dev/null || { echo "docker not found: kind-load builds the image with docker"; exit 2; }
	docker build -t $(SAMPLE_IMAGE) sample-app/
	$(KIND) load docker-image $(SAMPLE_IMAGE) --name $(KIND_CLUSTER)

# traffic.generators: the generator image (built without docker, as a docker-archive
# tarball) loaded into the kind nodes; scenarios then set kubernetes.imagePullPolicy.
kind-load-generator:
	$(MAKE) --no-print-directory generator-image
	$(KIND) load image-archive "$${ROLLOUT_HARNESS_CACHE:-$$HOME/.cache/rollout-harness}/cluster/v1.34.4/images/generator.tar" --name $(KIND_CLUSTER)

kind-demo: $(STAMP)
	@rc=0; for s in best-practice no-prestop; do \
	  $(VENV)/bin/rollout-harness run scenarios/$$s.yaml --platform kubernetes $(KIND_SET) || rc=$$?; \
	done; \
	$(VENV)/bin/rollout-harness cleanup --context $(KIND_CONTEXT); \
	echo "run dirs: reports/best-practice/ reports/no-prestop/ (no-prestop is expected to fail its gate; last exit $$rc)"

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# The targets above, for real on this machine (no registry): see docs/kind.md.
kind-e2e: $(STAMP)
	bash deploy/kind/scripts/e2e.sh

# Only the builds of kind-e2e (no daemon, no host change): kind, kubeadm,
# coredns, crictl, the node image and the sample app's base image.
kind-images:
	bash deploy/kind/scripts/setup.sh
