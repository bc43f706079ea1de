module rollout-harness/cluster/pause

go 1.24.0
