# rollout-harness — every target sets itself up from this repo's own files.
#   make demo   a real rollout under load on the embedded local platform (no cluster)
#   make test   the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
S ?= best-practice
PLATFORM ?= local
SCENARIOS := $(basename $(notdir $(wildcard scenarios/*.yaml)))

.PHONY: install test bench bench-repeat demo scenario scenarios clean help

help:
	@echo "make install          create .venv, install rollout-harness (+ test deps), build the engine hot path"
	@echo "make test             run the tests (no cluster needed; e2e tests skip with a reason)"
	@echo "make demo             best-practice vs no-prestop on the local platform, then a comparison"
	@echo "make demo ALL=1       best-practice vs every shipped mistake (about 5 minutes)"
	@echo "make scenario S=NAME  run one shipped scenario (PLATFORM=local|kubernetes)"
	@echo "make scenarios        run every shipped scenario"
	@echo "make bench            engine vs wrk, open-loop accuracy, analysis speed"
	@echo "make bench-repeat     10 best-practice rollouts in one invocation (run --repeat 10 --lanes 2), timed"
	@echo "make corpus           the corpus of real servers x configurations (docs/corpus.md)"
	@echo "make chromium         install Debian's chromium (the report's headless-browser test)"
	@echo "make traefik          build the ingress proxy (Traefik) into the cache (traffic.via: ingress)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,corpus,fast]'
	@touch $@

# The engine's compiled hot path (harness/traffic/hotpath.pyx, Cython from PyPI), when a
# C compiler is there; without one the engine runs its pure-Python path (docs/engine.md).
HOTPATH := harness/traffic/hotpath$(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))" 2>/dev/null)
$(HOTPATH): harness/traffic/hotpath.pyx harness/traffic/plainhttp.pxi $(STAMP)
	@$(PY) scripts/build_hotpath.py

install: $(STAMP) $(HOTPATH)

# The ingress runs in the suite need Traefik, built from the Go module proxy:
# built here when Go is installed; without Go those tests skip, naming the fix.
test: install
	@if command -v go >/dev/null; then $(MAKE) --no-print-directory traefik; \
	 else echo "note: no Go toolchain: the ingress (Traefik) runs will skip; install Go, then make traefik"; fi
	$(PY) -m pytest -q

# The ingress proxy (traffic.via: ingress): Traefik built from the Go module proxy
# into ${ROLLOUT_HARNESS_CACHE:-~/.cache/rollout-harness}/traefik/<version> (proxy/build.sh).
.PHONY: traefik
traefik:
	@bash proxy/build.sh >/dev/null

bench: install
	$(PY) bench/run.py

bench-repeat: install
	$(PY) bench/repeat.py

demo: install
	$(PY) scripts/demo.py $(if $(ALL),--all)

scenario: install
	$(VENV)/bin/rollout-harness run scenarios/$(S).yaml --platform $(PLATFORM)

scenarios: install
	@rc=0; for s in $(SCENARIOS); do \
	  $(VENV)/bin/rollout-harness run scenarios/$$s.yaml --platform $(PLATFORM) || rc=$$?; \
	done; echo "last non-zero exit: $$rc (failing gates are expected for the mistake scenarios)"

# Debian's chromium renders the report in tests/report/test_browser.py (skipped without it).
.PHONY: chromium
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) build *.egg-info

# The real single-node cluster for e2e tests (issue: cluster) and kind targets.
-include cluster/cluster.mk
-include deploy/kind/kind.mk
include corpus/corpus.mk
