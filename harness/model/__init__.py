"""Data contracts shared by every stage: outcome, run clock, request records,
lifecycle events and the run dir layout (see docs/design.md)."""
