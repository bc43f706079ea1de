# The corpus of real servers (docs/corpus.md). Every server is installed by
# these rules and cached by version under $ROLLOUT_HARNESS_CACHE/corpus:
#   Python  gunicorn, hypercorn   pip, pyproject's `corpus` extra (make install)
#   Go      net/http              go build (Debian's golang-go if no go)
#   Node    http                  Debian's nodejs if no node
#   JVM     com.sun.net.httpserver javac (Debian's openjdk-17-jdk-headless if none)
#   C       nginx                 apt-get download + dpkg -x (no service started)
CORPUS_CACHE := $(shell echo "$${ROLLOUT_HARNESS_CACHE:-$$HOME/.cache/rollout-harness}")/corpus
CORPUS_APT    = { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1); }

.PHONY: corpus corpus-servers corpus-go corpus-node corpus-jdk corpus-nginx corpus-fixtures

corpus-go:
	@command -v go >/dev/null || $(call CORPUS_APT,golang-go)
	@v=$$(go env GOVERSION) && out="$(CORPUS_CACHE)/go-nethttp/$$v" && src=corpus/servers/go-nethttp && \
	if [ ! -x "$$out/server" ] || [ "$$src/main.go" -nt "$$out/server" ]; then \
	  mkdir -p "$$out" && (cd $$src && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$$out/server" .) && echo "built $$out/server"; fi && \
	echo "GO_NETHTTP=$$out/server" > "$(CORPUS_CACHE)/go.env"

corpus-node:
	@command -v node >/dev/null || $(call CORPUS_APT,nodejs)
	@mkdir -p "$(CORPUS_CACHE)" && echo "NODE=$$(command -v node)" > "$(CORPUS_CACHE)/node.env"

corpus-jdk:
	@command -v javac >/dev/null || $(call CORPUS_APT,openjdk-17-jdk-headless)
	@v=$$(javac -version 2>&1 | tr ' ' '-') && out="$(CORPUS_CACHE)/jdk-httpserver/$$v" && src=corpus/servers/jdk-httpserver/Main.java && \
	if [ ! -f "$$out/Main.class" ] || [ "$$src" -nt "$$out/Main.class" ]; then \
	  mkdir -p "$$out" && javac -d "$$out" "$$src" && echo "built $$out/Main.class"; fi && \
	printf 'JDK_HTTPSERVER=%s\nJAVA=%s\n' "$$out" "$$(readlink -f $$(command -v java))" > "$(CORPUS_CACHE)/jdk.env"

corpus-nginx:
	@v=$$(apt-cache policy nginx 2>/dev/null | sed -n 's/^ *Candidate: //p'); \
	if [ -z "$$v" ] || [ "$$v" = "(none)" ]; then apt-get update -qq; v=$$(apt-cache policy nginx | sed -n 's/^ *Candidate: //p'); fi; \
	out="$(CORPUS_CACHE)/nginx/$$v"; \
	if [ ! -x "$$out/usr/sbin/nginx" ]; then \
	  tmp=$$(mktemp -d) && (cd $$tmp && apt-get download -qq "nginx=$$v") && mkdir -p "$$out" && \
	  dpkg -x $$tmp/nginx_*.deb "$$out" && rm -rf $$tmp && echo "unpacked nginx $$v into $$out"; fi; \
	echo "NGINX=$$out/usr/sbin/nginx" > "$(CORPUS_CACHE)/nginx.env"

# paths.env: what corpus/serve execs
corpus-servers: $(STAMP) corpus-go corpus-node corpus-jdk corpus-nginx
	@cat "$(CORPUS_CACHE)"/{go,node,jdk,nginx}.env > "$(CORPUS_CACHE)/paths.env"
	@echo "corpus servers ready: $(CORPUS_CACHE)/paths.env"

# The whole matrix on the local platform: results in docs/corpus.md and
# reports/corpus/results.json (ONLY=<server> runs one server's cells).
corpus: corpus-servers
	$(PY) corpus/matrix.py $(if $(ONLY),--only $(ONLY))
