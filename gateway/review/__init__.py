"""The review UI: a web application, in its own process, for security reviewers and approvers.

`greenroom review --config DIR --data-dir DIR [--listen-port 8700]` serves it on loopback.
Stack: Starlette (routing, requests, static files) + Jinja2 (autoescaped templates) + uvicorn
(the ASGI server); charts are SVG rendered on the server, so pages need no script at all.
"""

from .app import SECURITY_HEADERS, Review, create_app

__all__ = ["SECURITY_HEADERS", "Review", "create_app"]
