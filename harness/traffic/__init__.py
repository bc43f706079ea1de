"""The traffic engine: open-loop HTTP/1.1 load that records every request.

httpx is measured far too slow for this hot path on these machines (~300
req/s at 50 concurrent requests vs wrk's ~100k; see docs/engine.md), so the
engine speaks HTTP/1.1 itself on asyncio Protocols (uvloop where installed)
with httptools as the response parser, and records one row per request.
"""
