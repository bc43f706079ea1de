"""rollout-harness: does a rolling update drop user requests, and why.

Layers go one way: cli → report → analysis → {traffic, platforms} → model.
The run dir on disk (see harness.model.rundir) is the interface between
the run stage and the analysis/report stages.
"""

__version__ = "0.1.0"
