module rollout-harness/corpus/go-nethttp

go 1.19
