"""Fail closed: mitmproxy forwards a flow when an addon hook raises, so every hook of ours is wrapped.

An exception in a request-side hook becomes a `gateway.error` block (provider-native 403, an audit
record); in `responseheaders` the flow is killed (a response set there would be overwritten by the
upstream body); in `response` a buffered answer is replaced by the block. This decorator is the one
place that catches `Exception`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import structlog
from mitmproxy import http

__all__ = ["fail_closed"]

log = structlog.get_logger("greenroom.addon")

_REQUEST_SIDE = frozenset({"http_connect", "requestheaders", "request"})


def fail_closed(hook: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a hook (sync or async): on exception, stop the flow through `self.on_hook_error`."""
    name = hook.__name__

    if inspect.iscoroutinefunction(hook):

        @functools.wraps(hook)
        async def async_wrapper(self: Any, flow: Any, *args: Any) -> Any:
            try:
                return await hook(self, flow, *args)
            except Exception as exc:  # noqa: BLE001 - the single catch-all: it blocks, never passes
                _stop(self, flow, name, exc)
                return None

        return async_wrapper

    @functools.wraps(hook)
    def wrapper(self: Any, flow: Any, *args: Any) -> Any:
        try:
            return hook(self, flow, *args)
        except Exception as exc:  # noqa: BLE001 - the single catch-all: it blocks, never passes
            _stop(self, flow, name, exc)
            return None

    return wrapper


def _stop(addon: Any, flow: Any, hook: str, exc: Exception) -> None:
    log.error("hook_failed", hook=hook, error=type(exc).__name__, exc_info=exc)
    try:
        addon.on_hook_error(flow, hook, exc)
    except Exception as second:  # noqa: BLE001 - last resort: never let the flow through
        log.error("hook_error_handler_failed", hook=hook, error=type(second).__name__)
        if isinstance(flow, http.HTTPFlow) and flow.live and flow.killable:
            flow.kill()
