"""Platforms own deploy → (baseline) → disrupt → (settle) → teardown and emit
lifecycle events; the traffic engine only needs a target URL or a resolver."""
