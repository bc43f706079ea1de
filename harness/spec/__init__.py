"""What a workload's spec shows before any run: the static face of the
diagnosis rules (DESIGN.md "A rule has two faces"). It depends only on the
model, and stays out of harness.analysis so that `rollout-harness check`
answers at once, without loading pandas or matplotlib."""
