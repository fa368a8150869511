"""The public face of the request gate (learnplat.gate): ``from learnplat.plugin.gate import
...``, for a plugin that authenticates callers (its ``authenticate`` hook reads
`Credentials` and is handed a `RoundTrip`) or serves a transport of its own (a WebSocket
route admits its handshake with ``Gate(runtime).admit(arrival_of(gate, req, ...), plugin)``).
Semantic versioning, like ``learnplat.plugin``.
"""

from __future__ import annotations

from ..gate import API, FREE, Arrival, Credentials, Gate, Passage, RoundTrip, Toll
from ..http.arrival import arrival_of

__all__ = ["API", "FREE", "Arrival", "Credentials", "Gate", "Passage", "RoundTrip", "Toll",
           "arrival_of"]
