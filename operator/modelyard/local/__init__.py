"""A real local Kubernetes control plane (etcd, kube-apiserver, controller-manager,
scheduler built from the Kubernetes Go modules) and a node agent that runs pods as local
processes. Used by the integration tests and by ``modelyard local up`` to try modelyard
without a cluster."""
