#!/bin/sh
# nginx as a web server for the rollout-harness corpus: writes this pod's
# config (listen on HOST:PORT, X-Pod-Name: POD_NAME on every answer) into a
# private prefix directory, then execs nginx in the foreground so the stop
# signal reaches its master process (https://nginx.org/en/docs/control.html).
set -eu
nginx=$1
prefix=$(mktemp -d "${TMPDIR:-/tmp}/rh-nginx-${POD_NAME:-pod}.XXXXXX")
mkdir -p "$prefix/logs" "$prefix/tmp"
cat >"$prefix/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $prefix/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    keepalive_timeout 75s;
    server {
        listen ${HOST:-127.0.0.1}:${PORT:-8080};
        location / {
            add_header X-Pod-Name "${POD_NAME:-}" always;
            default_type text/plain;
            return 200 "ok\n";
        }
    }
}
CONF
exec "$nginx" -p "$prefix" -e stderr -c "$prefix/nginx.conf"
