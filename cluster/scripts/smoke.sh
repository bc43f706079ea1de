#!/usr/bin/env bash
# The last step of cluster-up: one sample-app pod behind a NodePort Service must
# answer on 127.0.0.1:<nodePort> (proving containerd, CNI, kube-proxy's
# localhost NodePorts and the image). The namespace is deleted afterwards.
source "$(dirname "$0")/lib.sh"
k() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ns=rh-smoke
export NAMESPACE=$ns REPLICAS=1 SAMPLE_APP_IMAGE
envsubst < "$CLUSTER_DIR/config/sample-app.yaml.tmpl" | k apply -f - >/dev/null
# The default ServiceAccount appears a moment after the namespace; pods need it.
k -n $ns rollout status deploy/sample-app --timeout=180s >/dev/null \
  || { k -n $ns get pods -o wide >&2; k -n $ns describe pods | tail -n 25 >&2
       die "smoke Deployment not ready; see $LOGS/kubelet.log and $LOGS/containerd.log"; }
port="$(k -n $ns get svc sample-app -o jsonpath='{.spec.ports[0].nodePort}')"
for i in $(seq 1 60); do
  pod="$(curl -s --max-time 2 -D - -o /dev/null "http://127.0.0.1:$port/healthz" | tr -d '\r' \
         | awk 'tolower($1) == "x-pod-name:" {print $2}' || true)"
  [[ -n "$pod" ]] && break
  sleep 0.5
done
[[ -n "${pod:-}" ]] || die "smoke pod ready but 127.0.0.1:$port does not answer; see $LOGS/kube-proxy.log"
log "smoke: 127.0.0.1:$port answered by pod $pod"
k delete namespace $ns --wait=false >/dev/null
