#!/usr/bin/env bash
# Creates the cluster's CA, component certificates, service-account key pair
# and kubeconfigs under $STATE/pki and $STATE (kept across up/down; made once).
source "$(dirname "$0")/lib.sh"
mkdir -p "$PKI"
cd "$PKI"

server="https://127.0.0.1:$APISERVER_PORT"

key() { [[ -s "$1.key" ]] || openssl genrsa -out "$1.key" 2048 2>/dev/null; }

# cert NAME SUBJECT [SAN]  -- a CA-signed certificate, client+server usage.
cert() {
  local name="$1" subj="$2" san="${3:-}"
  [[ -s "$name.crt" ]] && return 0
  key "$name"
  local ext; ext="$(mktemp)"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } > "$ext"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

# kubeconfig FILE USER CERTNAME -- absolute paths, so any working directory works.
kubeconfig() {
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: rollout-harness-e2e
  cluster:
    server: $server
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$3.crt
    client-key: $PKI/$3.key
contexts:
- name: rollout-harness-e2e
  context: {cluster: rollout-harness-e2e, user: $2}
current-context: rollout-harness-e2e
KC
}

if [[ ! -s ca.crt ]]; then
  key ca
  openssl req -x509 -new -key ca.key -subj "/CN=rollout-harness-e2e-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt 2>/dev/null
fi

cert apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_IP_APISERVER,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=rollout-harness-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME"
cert kube-proxy "/CN=system:kube-proxy"
# The aggregation layer's client (keeps controllers from logging a missing requestheader CA).
cert front-proxy-client "/CN=front-proxy-client"
[[ -s sa.key ]] || { openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
chmod 600 ./*.key

kubeconfig "$KUBECONFIG_ADMIN" rollout-harness-admin admin
kubeconfig "$STATE/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler scheduler
kubeconfig "$STATE/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet
kubeconfig "$STATE/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
