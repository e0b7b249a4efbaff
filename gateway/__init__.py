"""Greenroom: a secure AI sandbox gateway for film and TV productions.

The pure core lives here and knows nothing of mitmproxy; `addons/` adapts mitmproxy hooks to it.
"""

__version__ = "0.1.0"
