"""The ingress hop: one real L7 proxy (Traefik) in front of the Service, the
same binary on both platforms (see docs/ingress.md)."""
