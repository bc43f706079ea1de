#!/usr/bin/env bash
# cluster-status: each daemon's pid and liveness, then the node and pods.
source "$(dirname "$0")/lib.sh"
source "$CLUSTER_DIR/scripts/daemons.sh"
rc=0
for c in "${COMPONENTS[@]}"; do
  if alive "$c"; then printf '%-24s running  pid %-8s log %s\n' "$c" "$(pid_of "$c")" "$LOGS/$c.log"
  else printf '%-24s stopped  %-12s log %s\n' "$c" "" "$LOGS/$c.log"; rc=1; fi
done
if (( rc == 0 )); then
  kubectl --kubeconfig "$KUBECONFIG_ADMIN" get nodes -o wide
  kubectl --kubeconfig "$KUBECONFIG_ADMIN" get pods -A -o wide
fi
echo "kubeconfig: $KUBECONFIG_ADMIN"
exit $rc
