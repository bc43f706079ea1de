# kind for users: a rollout under load on a real (throwaway) cluster.
# Included by the top Makefile. Needs docker and kind on PATH.
#   make kind-up      create the cluster (NodePort 30080 mapped to 127.0.0.1:30080)
#   make kind-load    build the sample app's image and load it into the cluster
#   make kind-demo    best-practice and no-prestop on the cluster, then cleanup
#   make kind-down    delete the cluster
KIND          ?= kind
KIND_CLUSTER  ?= rollout-harness
KIND_CONTEXT  := kind-$(KIND_CLUSTER)
KIND_NODEPORT := 30080
SAMPLE_IMAGE  ?= localhost/rollout-harness-sample-app:0.1.0
KIND_SET      := --set kubernetes.context=$(KIND_CONTEXT) --set kubernetes.nodePort=$(KIND_NODEPORT) \
                 --set kubernetes.imagePullPolicy=IfNotPresent --set app.image=$(SAMPLE_IMAGE)

.PHONY: kind-up kind-load kind-demo kind-down kind-help
help: kind-help
kind-help:
	@echo "make kind-up          create a kind cluster ($(KIND_CLUSTER)) with NodePort $(KIND_NODEPORT) on 127.0.0.1"
	@echo "make kind-load        docker build sample-app/ and kind load it ($(SAMPLE_IMAGE))"
	@echo "make kind-demo        best-practice + no-prestop on kind (PLATFORM=kubernetes), then cleanup"
	@echo "make kind-down        delete the kind cluster"

kind-up:
	@command -v $(KIND) >/dev/null || { echo "kind not found: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"; exit 2; }
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster $(KIND_CLUSTER) already exists"; \
	else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config deploy/kind/kind-config.yaml --wait 120s; \
	fi

kind-load:
	@command -v docker >/dev/null || { echo "docker not found: kind-load builds the image with docker"; exit 2; }
	docker build -t $(SAMPLE_IMAGE) sample-app/
	$(KIND) load docker-image $(SAMPLE_IMAGE) --name $(KIND_CLUSTER)

kind-demo: $(STAMP)
	@rc=0; for s in best-practice no-prestop; do \
	  $(VENV)/bin/rollout-harness run scenarios/$$s.yaml --platform kubernetes $(KIND_SET) || rc=$$?; \
	done; \
	$(VENV)/bin/rollout-harness cleanup --context $(KIND_CONTEXT); \
	echo "run dirs: reports/best-practice/ reports/no-prestop/ (no-prestop is expected to fail its gate; last exit $$rc)"

kind-down:
	$(KIND) delete cluster --name $(KIND_CLUSTER)
