#!/usr/bin/env bash
# cluster-up: installs what is missing, builds (cached), then starts etcd,
# containerd, the control plane, kubelet and kube-proxy as detached children,
# waits for a Ready node and proves a smoke Deployment of the sample app
# answers through its NodePort on 127.0.0.1. Idempotent.
source "$(dirname "$0")/lib.sh"
source "$CLUSTER_DIR/scripts/daemons.sh"
[[ $EUID -eq 0 ]] || die "cluster-up needs root (containerd, iptables, network setup)"
t0=$(date +%s)

bash "$CLUSTER_DIR/scripts/install-deps.sh"
bash "$CLUSTER_DIR/scripts/build-node.sh"
bash "$CLUSTER_DIR/images/build-images.sh"

# One cluster per machine: names, ports and the node IP are fixed.
other="$(pgrep -af 'k8s-node (etcd|kube-apiserver|kubelet) ' | grep -vF "$STATE/" | head -n 1 || true)"
[[ -z "$other" ]] || die "another e2e cluster is running from a different checkout: $other -- run make cluster-down there first"
if [[ ! -f "$STATE/host-before.env" ]] && ip link show "$NODE_IF" >/dev/null 2>&1; then
  log "leftovers of an earlier cluster ($NODE_IF exists, no record here); cleaning them first"
  bash "$CLUSTER_DIR/scripts/down.sh"
fi

running=0
for c in "${COMPONENTS[@]}"; do alive "$c" && running=$((running + 1)); done
if (( running == ${#COMPONENTS[@]} )) && kubectl --kubeconfig "$KUBECONFIG_ADMIN" get node "$NODE_NAME" >/dev/null 2>&1; then
  log "cluster already up; kubeconfig: $KUBECONFIG_ADMIN"
  exit 0
fi
if (( running > 0 )) || [[ -f "$STATE/host-before.env" ]]; then
  log "a partial cluster is present; tearing it down first"
  bash "$CLUSTER_DIR/scripts/down.sh"
fi

mkdir -p "$STATE" "$LOGS" "$PIDS" "$STATE/cni/net.d" "$STATE/kubelet" "$STATE/pod-logs"
bash "$CLUSTER_DIR/scripts/host-state.sh" record
bash "$CLUSTER_DIR/scripts/pki.sh"

export STATE PKI NODE_IP NODE_NAME POD_CIDR BRIDGE_IF CONTAINERD_SOCK PAUSE_IMAGE
render() { envsubst < "$CLUSTER_DIR/config/$1.tmpl" > "$2"; }
render containerd.toml "$STATE/containerd.toml"
render cni.conflist "$STATE/cni/net.d/10-rollout-harness.conflist"
render kubelet.yaml "$STATE/kubelet.yaml"
render kube-proxy.yaml "$STATE/kube-proxy.yaml"

# Network: forwarding, bridged traffic through iptables, and the node IP on a
# port-less bridge (this kernel has no dummy module and we never modprobe).
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
if ! ip link show "$NODE_IF" >/dev/null 2>&1; then
  ip link add "$NODE_IF" type bridge
  ip addr add "$NODE_IP/32" dev "$NODE_IF"
fi
ip link set "$NODE_IF" up

admin_curl() { curl -sf --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"; }
k() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

t_daemons=$(date +%s)
log "prepared in $(( t_daemons - t0 )) s; starting etcd"
start etcd k8s-node etcd --name rh-etcd --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "rh-etcd=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
wait_ready etcd 60 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

log "starting containerd"
start containerd containerd --config "$STATE/containerd.toml"
wait_ready containerd 60 ctr --address "$CONTAINERD_SOCK" version
bash "$CLUSTER_DIR/scripts/images.sh" import

log "starting kube-apiserver"
start kube-apiserver k8s-node kube-apiserver \
  --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --requestheader-client-ca-file "$PKI/ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --allow-privileged=true --profiling=false --v=1
wait_ready kube-apiserver 180 admin_curl "https://127.0.0.1:$APISERVER_PORT/readyz"

log "starting kube-controller-manager and kube-scheduler"
start kube-controller-manager k8s-node kube-controller-manager \
  --kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false --v=1
start kube-scheduler k8s-node kube-scheduler \
  --kubeconfig "$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false --v=1
wait_ready kube-controller-manager 120 curl -skf --max-time 2 https://127.0.0.1:10257/healthz
wait_ready kube-scheduler 120 curl -skf --max-time 2 https://127.0.0.1:10259/healthz

log "starting kubelet"
start kubelet k8s-node kubelet --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$STATE/kubelet" --v=1
wait_ready kubelet 120 curl -sf --max-time 2 http://127.0.0.1:10248/healthz

log "starting kube-proxy"
start kube-proxy k8s-node kube-proxy --config "$STATE/kube-proxy.yaml" --v=1

node_ready() { [[ "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
wait_ready kubelet 180 node_ready
wait_ready kube-proxy 120 curl -sf --max-time 2 http://127.0.0.1:10256/healthz
log "node $NODE_NAME Ready $(( $(date +%s) - t_daemons )) s after the daemons started"

bash "$CLUSTER_DIR/scripts/smoke.sh"
log "cluster up in $(( $(date +%s) - t0 )) s (daemons + smoke $(( $(date +%s) - t_daemons )) s); kubeconfig: $KUBECONFIG_ADMIN; kubectl: $BIN_DIR/kubectl"
