// Command kubeadm is upstream kubeadm v1.34.4, built from the Go module proxy
// for the kind node image (kind provisions every node with kubeadm init/join).
// The kubelet, kubectl and the control-plane components come from the
// project's cluster build (cluster/node, one multi-call binary); kubeadm is not
// in it, so it gets its own small module here, pinned to the same dependency
// versions so the shared Go build cache serves most of the compile.
package main

import (
	"os"

	"k8s.io/kubernetes/cmd/kubeadm/app"
)

func main() {
	if err := app.Run(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}
