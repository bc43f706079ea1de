"""The embedded local platform: real replica processes, Kubernetes' rollout
semantics played by the harness. See platform.py."""

from harness.platforms.local.platform import LocalPlatform

__all__ = ["LocalPlatform"]
