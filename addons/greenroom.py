"""The Greenroom addon: thin glue from mitmproxy hooks to the pure core in `gateway/`.

    http_connect      authenticate the CONNECT (407 otherwise); remember the principal per connection
    tls_clienthello   hosts outside the tool catalog are tunnelled, never decrypted
    requestheaders    identify, classify, refuse unapproved tools before reading the body
    request           inspect the whole body off the event loop, rewrite, decide, record, forward or refuse
    responseheaders   stream SSE and chunked answers through unbuffered
    response / error  record how the exchange ended

Every hook is wrapped by `fail_closed`: an exception blocks the request instead of letting it pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import struct
import time
import weakref
from collections.abc import Callable, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from mitmproxy import connection, ctx, http, tls
from mitmproxy.proxy.layers.websocket import WebsocketLayer
from mitmproxy.proxy.mode_specs import ReverseMode

from addons.failclosed import fail_closed
from gateway.approvals import ApprovalStore, granted_reason, hold_rule
from gateway.audit import AuditEvent, AuditSink, LogSink, Outcome, new_event_id
from gateway.config.models import Action, Capability, ErrorFormat, Production
from gateway.content.encoding import decode_body
from gateway.content.inputs import Inputs
from gateway.content.jsonbody import dump_json
from gateway.decision import Decision, Reason, RewriteRecord, combine
from gateway.errors import AuditError, GreenroomError, InspectionError
from gateway.identity import Principal, parse_basic
from gateway.inspection import (
    HttpRequest,
    Inspection,
    MessageInspection,
    content_limits,
    inspect_message,
    inspect_request,
)
from gateway.metrics import Metrics
from gateway.output_check import OutputCheck, check_response
from gateway.policy import access_reasons, next_step
from gateway.provenance import OutputLedger
from gateway.recorder import Fingerprinter
from gateway.redact import Redaction, Restorer, StreamFormat, StreamRestorer
from gateway.references import FileLedger, RemoteFetcher, reference_reasons, uploaded_file_ids
from gateway.refusal import Refusal, proxy_auth_required, render_refusal
from gateway.runtime import Generation, Runtime
from gateway.tools.catalog import Classification, normalize_path
from gateway.uploads import ChunkHeld, ResumableUploads, parse_upload_command

__all__ = ["FlowContext", "Greenroom"]

log = structlog.get_logger("greenroom.addon")

KEY = "greenroom"
TOKEN_HEADER = "X-Greenroom-Token"  # noqa: S105 - a header name, not a secret
AUTH_HEADER = "X-Greenroom-Authorization"
PRODUCTION_HEADER = "X-Greenroom-Production"
_OUR_HEADERS = (TOKEN_HEADER, AUTH_HEADER, PRODUCTION_HEADER, "Proxy-Authorization")
_INLINE_SEAL_BYTES = 256 * 1024
"""inputs up to this size are sealed on the event loop (microseconds); larger ones on a worker thread."""
_AUDIT_WAIT_SECONDS = 35.0
"""longest wait for the audit commit before the request is refused (the store gives up at 30 s)."""
FAULT_ENV = "GREENROOM_TEST_FAULT"


@dataclass(slots=True)
class FlowContext:
    """Per-flow state of an AI request (mutable: it follows the flow through its hooks)."""

    event_id: str
    started: float
    generation: Generation
    principal: Principal | None = None
    classification: Classification | None = None
    production: Production | None = None
    mode: str = "proxy"
    host: str = ""
    """the AI tool host, as classified (the request may be routed elsewhere in staging and tests)."""
    access: list[Reason] = field(default_factory=list)
    event: AuditEvent | None = None
    streamed: bool = False
    streamed_bytes: int = 0
    redaction: Redaction | None = None
    output_copy: bytearray | None = None
    output_skipped: bool = False
    """a bounded copy of a streamed generation answer, fingerprinted when it ends (never stored)."""
    forwarded_at: float = 0.0
    first_byte_at: float = 0.0
    last_chunk_at: float = 0.0
    recorded: bool = False
    pending_record: Future[None] | None = None
    completed: bool = False
    ws_messages: int = 0


class Greenroom:
    """Policy enforcement for AI traffic."""

    def __init__(
        self,
        runtime: Runtime,
        sink: AuditSink | None = None,
        metrics: Metrics | None = None,
        fingerprints: Fingerprinter | None = None,
        fetcher: RemoteFetcher | None = None,
        ledger: FileLedger | None = None,
        approvals: ApprovalStore | None = None,
        outputs: OutputLedger | None = None,
    ) -> None:
        self.runtime = runtime
        self.outputs = outputs
        self.approvals = approvals
        self.fetcher = fetcher
        self.ledger = ledger
        self.sink: AuditSink = sink or LogSink()
        self.fingerprints = fingerprints or Fingerprinter(os.urandom(32))
        self.metrics = metrics or Metrics()
        self.fault = os.environ.get(FAULT_ENV, "")
        self.draining = False
        self._io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="greenroom-io")
        self._watched: dict[str, http.HTTPFlow] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self.uploads = ResumableUploads(runtime.current.config.settings.limits.max_body_bytes)
        self.inflight: set[str] = set()
        self._principals: MutableMapping[connection.Client, Principal] = weakref.WeakKeyDictionary()

    def running(self) -> None:
        """mitmproxy is up: start the upstream deadline watchdog."""
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch_deadlines())

    async def _watch_deadlines(self, every: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                self.enforce_deadlines(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - the watchdog must outlive one bad flow
                log.error("deadline_watchdog_failed", error=type(exc).__name__)

    def enforce_deadlines(self, now: float) -> list[str]:
        """Cut forwarded requests whose provider is too slow to answer or goes silent mid-stream."""
        upstream = self.runtime.current.config.settings.upstream
        cut: list[str] = []
        for flow_id, flow in list(self._watched.items()):
            context: FlowContext | None = flow.metadata.get(KEY)
            if context is None or context.completed or not flow.live:
                self._watched.pop(flow_id, None)
                continue
            waiting = not context.first_byte_at and now - context.forwarded_at > upstream.first_byte_seconds
            silent = context.streamed and now - context.last_chunk_at > upstream.idle_seconds
            if waiting or silent:
                self._watched.pop(flow_id, None)
                reason = "first_byte" if waiting else "idle"
                self.metrics.inc("greenroom_upstream_timeouts_total", "provider deadlines exceeded", kind=reason)
                log.warning("upstream_deadline", event_id=context.event_id, kind=reason)
                flow.kill()
                cut.append(flow_id)
        return cut

    def close(self) -> None:
        """Finish background audit writes, then release the store and the file ledger."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._io.shutdown(wait=True)
        if self.ledger is not None:
            self.ledger.close()
        if self.approvals is not None:
            self.approvals.close()
        if self.outputs is not None:
            self.outputs.close()
        self.sink.close()

    # --- mitmproxy hooks ----------------------------------------------------------------------------

    @fail_closed
    async def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        self._maybe_fault("http_connect")
        gen = self.runtime.current
        principal = await self._proxy_principal(flow, gen)
        if principal is None:
            self._respond(flow, proxy_auth_required())
            self.metrics.inc("greenroom_auth_failures_total", "proxy credentials missing or wrong")
            log.info("proxy_auth_required", client=_client_ip(flow))
            return
        if forbidden_destination(flow.request.host):
            self._respond(flow, _forbidden(flow.request.host))
            return
        self._principals[flow.client_conn] = principal

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Only AI tool hosts are decrypted; everything else is tunnelled untouched."""
        try:
            if isinstance(data.context.client.proxy_mode, ReverseMode):
                return
            catalog = self.runtime.current.catalog
            names = (data.client_hello.sni, (data.context.server.address or ("",))[0])
            # Intercept when either the CONNECT target or the SNI is an AI host: tunnelling a
            # connection whose SNI names another site to an AI host would let it pass unseen.
            if not any(name and catalog.is_ai_host(str(name)) for name in names):
                data.ignore_connection = True
        except Exception as exc:  # noqa: BLE001 - undecidable → intercept (and so inspect): fail closed
            log.error("tls_clienthello_failed", error=type(exc).__name__)

    @fail_closed
    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        gen = self.runtime.current
        reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
        ai_host = None if reverse else _ai_host(flow, gen)
        if not reverse and ai_host is None:
            await self._plain_request(flow, gen)
            return
        context = FlowContext(new_event_id(), time.perf_counter(), gen, mode="reverse" if reverse else "proxy")
        flow.metadata[KEY] = context
        self.inflight.add(flow.id)
        self._maybe_fault("requestheaders")
        if reverse and (unrouted := self._route_reverse(flow, gen)):
            await self._refuse(flow, context, unrouted, status=404)
            return
        principal = await (self._reverse_principal(flow, gen) if reverse else self._tunnel_principal(flow, gen))
        for name in _OUR_HEADERS:
            flow.request.headers.pop(name, None)
        if principal is None:
            if reverse:
                await self._refuse(flow, context, [Reason("identity.unauthenticated", Action.BLOCK,
                                                          "no valid Greenroom token was sent")], status=401)
            else:
                self._respond(flow, proxy_auth_required())
            return
        context.principal = principal
        host = flow.request.host if reverse else ai_host
        context.host = host or flow.request.host
        context.classification = gen.catalog.classify(host or "", flow.request.method, flow.request.path)
        context.production = gen.productions.get(principal.production or "")
        if context.classification is None:  # reverse mode routed to a host the catalog no longer lists
            unknown = Reason("tool.unknown", Action.BLOCK, "not an AI tool in the catalog")
            await self._refuse(flow, context, [unknown])
            return
        if self.draining:
            draining = Reason("gateway.draining", Action.BLOCK, "the gateway is shutting down")
            await self._refuse(flow, context, [draining], status=503)
            return
        context.access = access_reasons(principal, context.production, context.classification,
                                        flow.request.method)
        early = combine(context.access)
        if early.stops:
            await self._refuse(flow, context, list(early.reasons))
            return
        limit = gen.config.settings.limits.max_body_bytes
        declared = _content_length(flow.request.headers.get("content-length"))
        if declared is not None and declared > limit:
            reason = Reason("content.too_large", Action.BLOCK,
                            f"request body of {declared} bytes exceeds the {limit}-byte limit", location="body")
            await self._refuse(flow, context, [*context.access, reason], status=413)

    @fail_closed
    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        context: FlowContext | None = flow.metadata.get(KEY)
        if context is None:
            return
        self._maybe_fault("request")
        if flow.request.stream or flow.request.raw_content is None:
            await self._refuse(flow, context, [Reason("content.uninspectable", Action.BLOCK,
                                                      "the body was streamed and could not be inspected")])
            return
        assert context.classification is not None and context.production is not None
        if not await self._assemble_upload(flow, context):
            return
        inspection, fingerprints = await self._inspect(flow, context)
        decision = inspection.decision
        if decision.action == Action.HOLD:
            decision = await self._with_grant(decision, context, fingerprints)
            inspection = replace(inspection, decision=decision)
        if decision.stops:
            status = 413 if "content.too_large" in decision.rules else 403
            await self._refuse(flow, context, list(decision.reasons), status=status, inspection=inspection,
                               fingerprints=fingerprints)
            return
        event = self._event(flow, context, decision, inspection.rewrites, inspection.elapsed_ms, fingerprints)
        try:
            await self._record(event, inspection.inputs)
        except Exception as exc:  # noqa: BLE001 - not durable → not forwarded (provider-native 503)
            log.error("audit_record_failed", event_id=event.id, error=type(exc).__name__, detail=_detail(exc))
            await self._refuse(flow, context, [Reason("audit.unavailable", Action.BLOCK,
                                                      "the audit record could not be written")], status=503)
            return
        context.event = event
        context.recorded = True
        _apply(flow, inspection)
        if inspection.redaction is not None and inspection.redaction.mapping:
            context.redaction = inspection.redaction
            flow.request.headers["accept-encoding"] = "identity"  # placeholders are restored in plain bytes
        context.forwarded_at = time.monotonic()
        self._watched[flow.id] = flow
        self.metrics.observe_ms("greenroom_inspect_ms", "time to inspect a request body", inspection.elapsed_ms,
                                tool=context.classification.tool.id)

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        context: FlowContext | None = flow.metadata.get(KEY)
        if context is None or flow.response is None:
            return
        self._maybe_fault("responseheaders")
        context.first_byte_at = context.last_chunk_at = time.monotonic()
        if context.event is not None:  # the reference a user quotes to the security team
            flow.response.headers["X-Greenroom-Event"] = context.event.id
            flow.response.headers["X-Greenroom-Decision"] = context.event.decision.action.value
        if context.redaction is not None:
            restorer = _stream_restorer(flow.response, context)
            if restorer is not None:
                context.streamed = True
                flow.response.headers.pop("content-length", None)
                flow.response.stream = _counting_stream(flow, context, restorer)
            return  # otherwise buffered: `response` restores the whole body
        if _should_stream(flow.response):
            context.streamed = True
            if self.outputs is not None and context.classification is not None \
                    and context.classification.capability in _GENERATION and 200 <= flow.response.status_code < 300:
                context.output_copy = bytearray()
            flow.response.stream = _counting_stream(flow, context)

    @fail_closed
    async def response(self, flow: http.HTTPFlow) -> None:
        context: FlowContext | None = flow.metadata.get(KEY)
        if context is None:
            return
        self._maybe_fault("response")
        status = flow.response.status_code if flow.response else None
        size = context.streamed_bytes if context.streamed else len(flow.response.raw_content or b"") \
            if flow.response else 0
        await self._remember_uploads(flow, context)
        if context.redaction is not None and not context.streamed and flow.response is not None:
            _restore_body(flow.response, context.redaction)
        await self._check_outputs(flow, context)
        self._complete(flow, context, Outcome(status, _ms_since(context.started), size, context.streamed))

    async def _check_outputs(self, flow: http.HTTPFlow, context: FlowContext) -> None:
        """Generated media: checked (withheld when it must be), fingerprinted, never stored."""
        response, classification, production = flow.response, context.classification, context.production
        if (self.outputs is None or response is None or classification is None or production is None
                or context.event is None or not 200 <= response.status_code < 300):
            return
        if context.streamed:
            copy, context.output_copy = context.output_copy, None
            if copy is None and not context.output_skipped:
                return
            raw = bytes(copy or b"")
        elif response.raw_content:
            raw = response.raw_content
        else:
            return
        gen = context.generation
        limits = content_limits(gen.config.settings.limits)
        content_type, encoding = response.headers.get("content-type", ""), response.headers.get("content-encoding")
        event_id, tool, provider = context.event.id, classification.tool.id, classification.tool.error_format.value

        def work() -> OutputCheck:
            # The wire bytes, decoded with our own caps: an answer we cannot decode is not one we cleared.
            try:
                body = decode_body(raw, encoding, limits.max_decoded_bytes) if encoding else raw
            except InspectionError as exc:
                return OutputCheck((Reason("output.uninspectable", Action.BLOCK, str(exc), location="response"),))
            return check_response(content_type, body, provider, production, classification.capability,
                                  gen.detection, limits, event_id=event_id, tool=tool)

        media_type = content_type.split(";", 1)[0].strip().lower()
        if not encoding and len(raw) <= gen.config.settings.limits.inline_inspect_bytes \
                and not _may_be_media(media_type, raw):
            check = work()  # a small text answer: no media to decode, checked without a thread hop
        else:
            check = await asyncio.to_thread(work)
        if context.output_skipped:
            check = replace(check, reasons=(*check.reasons, Reason(
                "output.unfingerprinted", Action.NOTIFY, "the streamed answer was too large to fingerprint")))
        if check.fingerprints:
            self._record_fingerprints(context, check)
        if not check.reasons:
            if check.body is not None and not context.streamed:
                response.content = check.body
            return
        reasons = list(check.reasons)
        if check.withhold and context.streamed:  # already delivered: record, cannot withhold
            reasons = [replace(r, action=Action.NOTIFY, message=r.message + " (streamed: delivered)") for r in reasons]
        decision = combine(reasons)
        event = replace(self._event(flow, context, decision), id=new_event_id(),
                        endpoint=f"{context.event.endpoint}.output", input_digests=())
        try:
            await self._record(event)
        except Exception as exc:  # noqa: BLE001 - the media is withheld regardless when it must be
            log.error("audit_record_failed", event_id=event.id, error=type(exc).__name__, detail=_detail(exc))
        if decision.action == Action.BLOCK:
            deciding = decision.deciding
            refusal = render_refusal(
                classification.tool.error_format, status=403, decision=Action.BLOCK,
                rules=tuple(dict.fromkeys(r.rule for r in deciding)),
                summary="; ".join(dict.fromkeys(r.message for r in deciding)),
                next_step="The generated media was withheld; change the prompt, or ask your AI lead about consent "
                "or licences.", event_id=event.id, review_url=gen.config.settings.review_url,
            )
            self._respond(flow, refusal)

    def _record_fingerprints(self, context: FlowContext, check: OutputCheck) -> None:
        ledger, event, principal, classification = self.outputs, context.event, context.principal, \
            context.classification
        if ledger is None or event is None or principal is None or classification is None:
            return
        now = time.time()

        def write() -> None:
            try:
                for index, (item, fingerprint) in enumerate(check.fingerprints):
                    ledger.record(event_id=event.id, index=index, production=principal.production or "",
                                  user=principal.user, tool=classification.tool.id, ts=now, fingerprint=fingerprint,
                                  location=item.location)
            except Exception as exc:  # noqa: BLE001 - the answer is delivered; make the gap visible
                self.metrics.inc("greenroom_audit_errors_total", "audit writes that failed")
                log.error("output_fingerprint_failed", event_id=event.id, error=type(exc).__name__)

        self._io.submit(write)

    @fail_closed
    async def websocket_message(self, flow: http.HTTPFlow) -> None:
        """Client messages on AI WebSockets are inspected like request bodies; a violation closes with 1008."""
        context: FlowContext | None = flow.metadata.get(KEY)
        if context is None or flow.websocket is None or context.classification is None:
            return
        message = flow.websocket.messages[-1]
        if message.injected and message.content == _CLOSE_MARKER and _CLOSE_KEY in flow.metadata:
            message.drop()
            _queue_close(flow)
            return
        if message.from_client and (flow.metadata.get(_CUT_KEY) or _CLOSE_KEY in flow.metadata):
            message.drop()  # the socket is being closed for a violation: nothing more goes upstream
            return
        if not message.from_client or message.injected:
            return
        self._maybe_fault("websocket_message")
        limits = context.generation.config.settings.limits
        payload, is_text, classification = message.content, message.is_text, context.classification

        detection, production = context.generation.detection, context.production
        findings = (lambda inputs: detection.reasons(inputs, production, classification.capability)) \
            if detection and production else None

        def work() -> tuple[MessageInspection, tuple[str, ...]]:
            result = inspect_message(payload, is_text, classification, limits, findings)
            return result, self.fingerprints.of_inputs(result.inputs)

        inline = len(payload) <= limits.inline_inspect_bytes and not any(m in payload for m in _MEDIA_MARKERS)
        result, fingerprints = work() if inline else await asyncio.to_thread(work)
        context.ws_messages += 1
        if result.decision.stops:
            message.drop()
            event = self._message_event(flow, context, result, fingerprints)
            try:
                await self._record(event, result.inputs)
            finally:
                self._close_websocket(flow, context, event)
            return
        if result.payload is not None:
            message.content = result.payload

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        context: FlowContext | None = flow.metadata.get(KEY)
        if context is None or flow.websocket is None:
            return
        log.info("websocket_closed", event_id=context.event_id, messages=context.ws_messages,
                 close_code=flow.websocket.close_code)

    def error(self, flow: http.HTTPFlow) -> None:
        context: FlowContext | None = flow.metadata.get(KEY)
        if context is None:
            return
        try:
            message = (flow.error.msg if flow.error else "error")[:120]
            status = flow.response.status_code if flow.response else None
            outcome = Outcome(status, _ms_since(context.started), context.streamed_bytes, context.streamed, message)
            self._complete(flow, context, outcome)
        except Exception as exc:  # noqa: BLE001 - nothing to forward any more; keep the record attempt visible
            log.error("error_hook_failed", error=type(exc).__name__, event_id=context.event_id)

    # --- failure path -------------------------------------------------------------------------------

    def on_hook_error(self, flow: http.HTTPFlow, hook: str, exc: Exception) -> None:
        """Called by fail_closed: block the flow with `gateway.error`, record it, or kill it."""
        self.metrics.inc("greenroom_hook_errors_total", "exceptions caught in hooks (blocked)", hook=hook)
        if not isinstance(flow, http.HTTPFlow):
            return
        if hook == "responseheaders":
            flow.kill()
            return
        if hook == "websocket_message":
            if flow.websocket is not None and flow.websocket.messages:
                flow.websocket.messages[-1].drop()
            _cut(flow)
            return
        context: FlowContext | None = flow.metadata.get(KEY)
        if context is None:
            context = FlowContext(new_event_id(), time.perf_counter(), self.runtime.current)
            flow.metadata[KEY] = context
            self.inflight.add(flow.id)
        if hook == "response" and context.streamed:
            flow.kill()
            return
        reason = Reason("gateway.error", Action.BLOCK,
                        f"Greenroom could not finish checking this request ({type(exc).__name__} in {hook})")
        if hook == "http_connect":
            self._respond(flow, _plain_503(context.event_id))
            return
        self._refuse_now(flow, context, [reason])

    # --- helpers ------------------------------------------------------------------------------------

    def _maybe_fault(self, hook: str) -> None:
        if self.fault == hook:
            raise RuntimeError(f"injected fault in {hook} ({FAULT_ENV})")

    async def _proxy_principal(self, flow: http.HTTPFlow, gen: Generation) -> Principal | None:
        credential = parse_basic(flow.request.headers.get("Proxy-Authorization"))
        client = _client_ip(flow)
        if credential is not None:
            user = await gen.authenticator.authenticate(credential)
            if user is not None:
                return gen.authenticator.principal(user, client, credential.production, "proxy_auth")
            return None
        return gen.authenticator.network_principal(client)

    async def _tunnel_principal(self, flow: http.HTTPFlow, gen: Generation) -> Principal | None:
        principal = self._principals.get(flow.client_conn)
        if principal is not None:
            return principal
        return await self._proxy_principal(flow, gen)  # plain-HTTP proxying: credentials on each request

    async def _reverse_principal(self, flow: http.HTTPFlow, gen: Generation) -> Principal | None:
        headers = flow.request.headers
        requested = headers.get(PRODUCTION_HEADER) or None
        token = headers.get(TOKEN_HEADER)
        client = _client_ip(flow)
        if token:
            user = gen.authenticator.user_for_token(token.strip())
            return gen.authenticator.principal(user, client, requested, "token") if user else None
        credential = parse_basic(headers.get(AUTH_HEADER))
        if credential is not None:
            user = await gen.authenticator.authenticate(credential)
            if user is None:
                return None
            return gen.authenticator.principal(user, client, credential.production or requested, "token")
        return gen.authenticator.network_principal(client)

    def _route_reverse(self, flow: http.HTTPFlow, gen: Generation) -> list[Reason]:
        """Map `/openai/v1/...` on the reverse port to https://api.openai.com/v1/... (reasons if it can't)."""
        path = flow.request.path
        prefix, _, rest = path.lstrip("/").partition("/")
        tool = gen.catalog.tool_for_prefix(prefix)
        if tool is None or not rest:
            known = ", ".join(sorted(t.reverse_prefix for t in gen.catalog.tools if t.reverse_prefix))
            return [Reason("tool.unknown", Action.BLOCK, f"unknown reverse-mode prefix; use one of: {known}")]
        host = next(h for h in tool.hosts if not h.startswith("*."))
        flow.request.scheme = "https"
        flow.request.host = host
        flow.request.port = 443
        flow.request.host_header = host
        flow.request.path = "/" + rest
        return []

    async def _plain_request(self, flow: http.HTTPFlow, gen: Generation) -> None:
        """Non-AI requests through the proxy (plain HTTP): authenticate, never inspect."""
        if await self._tunnel_principal(flow, gen) is None:
            self._respond(flow, proxy_auth_required())
            return
        if forbidden_destination(flow.request.host):
            self._respond(flow, _forbidden(flow.request.host))
            return
        flow.request.headers.pop("Proxy-Authorization", None)

    async def _inspect(self, flow: http.HTTPFlow, context: FlowContext) -> tuple[Inspection, tuple[str, ...]]:
        gen = context.generation
        assert context.classification is not None and context.production is not None
        request = HttpRequest(
            method=flow.request.method,
            host=flow.request.host,
            target=flow.request.path,
            headers=tuple(flow.request.headers.items(multi=True)),
            body=flow.request.raw_content or b"",
        )
        limits = gen.config.settings.limits
        production, tool = context.production, context.classification.tool
        args = (request, context.classification, production, context.access, limits)

        def references(inputs: Inputs) -> tuple[list[Reason], Inputs]:
            return reference_reasons(inputs, production, tool, self.ledger, self.fetcher, content_limits(limits))

        detection, capability = gen.detection, context.classification.capability
        findings = (lambda inputs: detection.reasons(inputs, production, capability)) if detection else None

        def work() -> tuple[Inspection, tuple[str, ...]]:
            inspection = inspect_request(*args, findings=findings, references=references)
            return inspection, self.fingerprints.of_inputs(inspection.inputs)

        if len(request.body) <= limits.inline_inspect_bytes and not _may_fetch(request.body) \
                and not _may_carry_media(request):
            return work()
        return await asyncio.to_thread(work)

    def _event(
        self,
        flow: http.HTTPFlow,
        context: FlowContext,
        decision: Decision,
        rewrites: tuple[RewriteRecord, ...] = (),
        inspect_ms: float = 0.0,
        fingerprints: tuple[str, ...] = (),
    ) -> AuditEvent:
        principal, classification = context.principal, context.classification
        return AuditEvent(
            id=context.event_id,
            ts=time.time(),
            user=principal.user if principal else "",
            production=(principal.production or "") if principal else "",
            tool=classification.tool.id if classification else "",
            endpoint=classification.endpoint_id if classification else "",
            capability=classification.capability.value if classification else "",
            method=flow.request.method,
            host=context.host or flow.request.host,
            path=normalize_path(flow.request.path) if flow.request.path else "/",
            mode=context.mode,
            client=_client_ip(flow),
            decision=decision,
            rewrites=rewrites,
            request_bytes=len(flow.request.raw_content or b""),
            inspect_ms=inspect_ms,
            input_digests=fingerprints,
        )

    async def _record(self, event: AuditEvent, inputs: Inputs | None = None) -> None:
        """Make the event durable before anything is forwarded; raise (AuditError or other) if it is not.

        A sink that can queue (the Recorder) seals here — on a worker thread when the inputs are large —
        and the loop awaits the store's commit; no thread sits blocked on it. Other blocking sinks are
        called on a worker thread.
        """
        submit = getattr(self.sink, "submit_record", None)
        if submit is None:
            if getattr(self.sink, "blocking", False):
                await asyncio.to_thread(self.sink.record, event, inputs)
            else:
                self.sink.record(event, inputs)
            return
        if inputs is not None and _input_bytes(inputs) > _INLINE_SEAL_BYTES:
            pending = await asyncio.to_thread(submit, event, inputs)
        else:
            pending = submit(event, inputs)
        try:
            async with asyncio.timeout(_AUDIT_WAIT_SECONDS):
                await asyncio.wrap_future(pending)
        except TimeoutError as exc:
            raise AuditError(f"the audit write did not complete within {_AUDIT_WAIT_SECONDS:g}s") from exc

    def _record_in_background(self, event: AuditEvent, context: FlowContext) -> None:
        """For refusals decided outside a coroutine: write without holding the event loop."""
        def write() -> None:
            try:
                self.sink.record(event, None)
                context.recorded = True
            except Exception as exc:  # noqa: BLE001 - the request is refused either way; make the gap visible
                self.metrics.inc("greenroom_audit_errors_total", "audit writes that failed")
                log.error("audit_record_failed", event_id=event.id, error=type(exc).__name__, detail=_detail(exc))

        if getattr(self.sink, "blocking", False):
            context.pending_record = self._io.submit(write)
        else:
            write()

    async def _refuse(
        self,
        flow: http.HTTPFlow,
        context: FlowContext,
        reasons: list[Reason],
        *,
        status: int = 403,
        inspection: Inspection | None = None,
        fingerprints: tuple[str, ...] = (),
    ) -> None:
        """Refuse with the provider's own error; the refusal is recorded (with its inputs) first."""
        approval_id = await self._request_approval(context, combine(reasons), fingerprints)
        event, refusal = self._refusal(flow, context, reasons, status, inspection, fingerprints, approval_id)
        try:
            await self._record(event, inspection.inputs if inspection else None)
            context.recorded = True
        except Exception as exc:  # noqa: BLE001 - refused regardless; say the record failed (503)
            self.metrics.inc("greenroom_audit_errors_total", "audit writes that failed")
            log.error("audit_record_failed", event_id=event.id, error=type(exc).__name__, detail=_detail(exc))
            failed = [Reason("audit.unavailable", Action.BLOCK, "the audit record could not be written"), *reasons]
            event, refusal = self._refusal(flow, context, failed, 503, inspection, fingerprints)
        context.event = event
        self._respond(flow, refusal)

    def _refuse_now(self, flow: http.HTTPFlow, context: FlowContext, reasons: list[Reason]) -> None:
        """Refuse from synchronous code (the fail-closed path); the record is written in the background."""
        event, refusal = self._refusal(flow, context, reasons, 403, None, ())
        context.event = event
        self._respond(flow, refusal)
        self._record_in_background(event, context)

    def _refusal(
        self,
        flow: http.HTTPFlow,
        context: FlowContext,
        reasons: list[Reason],
        status: int,
        inspection: Inspection | None,
        fingerprints: tuple[str, ...],
        approval_id: str = "",
    ) -> tuple[AuditEvent, Refusal]:
        decision = combine(reasons)
        if not decision.stops:
            decision = Decision(Action.BLOCK, decision.reasons)
        event = self._event(flow, context, decision, inspection.rewrites if inspection else (),
                            inspection.elapsed_ms if inspection else 0.0, fingerprints)
        event = replace(event, approval_id=approval_id)
        tool = context.classification.tool if context.classification else None
        deciding = decision.deciding or decision.reasons
        primary = deciding[0]
        refusal = render_refusal(
            tool.error_format if tool else ErrorFormat.GENERIC,
            status=status,
            decision=decision.action,
            rules=tuple(dict.fromkeys(r.rule for r in deciding)),
            summary="; ".join(dict.fromkeys(r.message for r in deciding if r.message)) or primary.rule,
            next_step=next_step(primary.rule, primary.advice),
            event_id=context.event_id,
            approval_id=approval_id,
            review_url=context.generation.config.settings.review_url,
            wants_html=_wants_html(flow),
        )
        return event, refusal

    async def _with_grant(
        self, decision: Decision, context: FlowContext, fingerprints: tuple[str, ...]
    ) -> Decision:
        """A held request whose exact content an approver has approved passes (`approval.granted`)."""
        if self.approvals is None or context.production is None:
            return decision
        grant = await asyncio.to_thread(self.approvals.find_grant, context.production.id, hold_rule(decision),
                                        fingerprints)
        if grant is None:
            return decision
        return Decision(Action.ALLOW, (*decision.reasons, granted_reason(grant)))

    async def _request_approval(self, context: FlowContext, decision: Decision, fingerprints: tuple[str, ...]) -> str:
        """For a hold: the pending approval request (the same one again while the same request waits)."""
        if decision.action != Action.HOLD or self.approvals is None or context.production is None \
                or context.principal is None or context.classification is None:
            return ""
        summary = "; ".join(sorted({f"{r.rule}@{r.location}" if r.location else r.rule
                                    for r in decision.reasons if r.action == Action.HOLD}))
        approval = await asyncio.to_thread(
            self.approvals.request_hold, context.event_id, context.production.id, context.principal.user,
            hold_rule(decision), context.classification.tool.id, context.classification.capability.value,
            fingerprints, summary,
        )
        return str(approval.id)

    async def _assemble_upload(self, flow: http.HTTPFlow, context: FlowContext) -> bool:
        """Resumable chunks are held here and the whole file goes on at finalize; False = answered here."""
        endpoint = context.classification.endpoint if context.classification else None
        if endpoint is None or endpoint.upload_protocol != "google_resumable":
            return True
        is_chunk, final = parse_upload_command(flow.request.headers.get("x-goog-upload-command"))
        if not is_chunk:
            return True
        session = flow.request.host + normalize_path(flow.request.path) + "?" + \
            flow.request.query.get("upload_id", flow.request.path)
        owner = context.principal.user if context.principal else ""
        try:
            offset = int(flow.request.headers.get("x-goog-upload-offset", "0"))
            result = self.uploads.accept(session, owner, offset, flow.request.raw_content or b"", final)
        except (ValueError, InspectionError) as exc:
            rule = exc.rule if isinstance(exc, InspectionError) else "content.uninspectable"
            await self._refuse(flow, context, [Reason(rule, Action.BLOCK, str(exc), location="upload")],
                               status=413 if rule == "content.too_large" else 403)
            return False
        if isinstance(result, ChunkHeld):
            self._respond(flow, Refusal(200, (("x-goog-upload-status", "active"),
                                              ("x-goog-upload-size-received", str(result.received)),
                                              ("content-type", "text/plain")), b""))
            context.event = None
            return False
        flow.request.raw_content = result.data
        flow.request.headers["x-goog-upload-offset"] = "0"
        flow.request.headers["content-length"] = str(len(result.data))
        return True

    async def _remember_uploads(self, flow: http.HTTPFlow, context: FlowContext) -> None:
        """Remember which production uploaded each provider file id, so later references can be checked.

        Written before the answer is released: a client that references the new file id at once must
        find it (a failed write only makes the id unknown later, which holds: fail closed).
        """
        response, classification = flow.response, context.classification
        if (self.ledger is None or response is None or context.streamed or classification is None
                or classification.capability != Capability.FILE_UPLOAD or not 200 <= response.status_code < 300
                or context.principal is None or not context.principal.production or context.event is None
                or "json" not in response.headers.get("content-type", "")):
            return
        try:
            body = json.loads(response.get_content(strict=True) or b"null")
        except ValueError:
            return
        ids = uploaded_file_ids(body)
        if not ids:
            return
        ledger, tool, production, event_id = self.ledger, classification.tool.id, context.principal.production, \
            context.event.id

        def write() -> None:
            for file_id in ids:
                ledger.remember(tool, file_id, production, event_id)

        try:
            await asyncio.get_running_loop().run_in_executor(self._io, write)
        except Exception as exc:  # noqa: BLE001 - the upload itself succeeded; its id stays unknown (held later)
            self.metrics.inc("greenroom_ledger_errors_total", "provider file ids that could not be remembered")
            log.error("file_ledger_write_failed", event_id=event_id, error=type(exc).__name__)

    def _message_event(
        self, flow: http.HTTPFlow, context: FlowContext, result: MessageInspection, fingerprints: tuple[str, ...]
    ) -> AuditEvent:
        base = self._event(flow, context, result.decision, result.rewrites, result.elapsed_ms, fingerprints)
        return replace(base, id=new_event_id(), endpoint=f"{base.endpoint}.message",
                       request_bytes=len(flow.websocket.messages[-1].content) if flow.websocket else 0)

    def _close_websocket(self, flow: http.HTTPFlow, context: FlowContext, event: AuditEvent) -> None:
        """Tell the client why (provider-native error event), then close the socket with 1008."""
        deciding = event.decision.deciding or event.decision.reasons
        rules = ", ".join(dict.fromkeys(r.rule for r in deciding))
        text = (f"Greenroom blocked this message ({rules}): "
                f"{'; '.join(dict.fromkeys(r.message for r in deciding if r.message))}. "
                f"Reference: event {event.id}.")
        error = json.dumps({"type": "error", "event_id": event.id,
                            "error": {"type": "invalid_request_error", "code": deciding[0].rule if deciding else "",
                                      "message": text, "param": None, "event_id": event.id}})
        proxyserver = _proxyserver()
        if proxyserver is None:
            _cut(flow)
            return
        proxyserver.inject_websocket(flow, True, error.encode(), True)
        _inject_client_close(proxyserver, flow, 1008, f"greenroom {rules} {event.id}")

    def _respond(self, flow: http.HTTPFlow, refusal: Refusal) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in refusal.headers]
        flow.response = http.Response.make(refusal.status, refusal.body, headers)

    def _complete(self, flow: http.HTTPFlow, context: FlowContext, outcome: Outcome) -> None:
        if context.completed:
            return
        context.completed = True
        self.inflight.discard(flow.id)
        self._watched.pop(flow.id, None)
        event = context.event or self._event(flow, context, Decision(Action.ALLOW))
        self.metrics.inc("greenroom_requests_total", "AI requests by decision, tool and production",
                         decision=event.decision.action.value, tool=event.tool or "-",
                         production=event.production or "-")
        self.metrics.observe_ms("greenroom_request_duration_ms", "request duration through the gateway",
                                outcome.duration_ms, tool=event.tool or "-")
        if not getattr(self.sink, "blocking", False):
            self.sink.complete(event, outcome)
            return
        pending = context.pending_record
        nowait = getattr(self.sink, "complete_nowait", None)
        if nowait is not None and context.recorded and (pending is None or pending.done()):
            nowait(event, outcome, lambda exc: self._outcome_failed(event, exc))
            return

        def write() -> None:
            try:
                if pending is not None:  # a refusal still being recorded in the background: wait for it
                    with contextlib.suppress(Exception):
                        pending.result(timeout=35)
                if context.recorded:
                    self.sink.complete(event, outcome)
                else:  # nothing durable to attach the outcome to; the decision log still gets its line
                    log_only = getattr(self.sink, "log", None)
                    if log_only is not None:
                        log_only.complete(event, outcome)
            except Exception as exc:  # noqa: BLE001 - the exchange is over; count and log the gap
                self._outcome_failed(event, exc)

        self._io.submit(write)

    def _outcome_failed(self, event: AuditEvent, exc: BaseException) -> None:
        self.metrics.inc("greenroom_audit_errors_total", "audit writes that failed")
        log.error("audit_outcome_failed", event_id=event.id, error=type(exc).__name__)


def _input_bytes(inputs: Inputs) -> int:
    return sum(len(t.text) for t in inputs.texts) + sum(len(m.data) for m in inputs.media)


def _apply(flow: http.HTTPFlow, inspection: Inspection) -> None:
    """Forward exactly what was inspected and rewritten."""
    if inspection.headers is not None:
        flow.request.headers.clear()
        for name, value in inspection.headers:
            flow.request.headers.add(name, value)
    if inspection.body is not None:
        flow.request.headers.pop("content-encoding", None)
        flow.request.raw_content = inspection.body
        flow.request.headers["content-length"] = str(len(inspection.body))
        flow.request.headers.pop("transfer-encoding", None)
    if inspection.target is not None:
        flow.request.path = inspection.target


def _ai_host(flow: http.HTTPFlow, gen: Generation) -> str | None:
    """The AI tool host this request is for, judged by destination, Host header and SNI alike."""
    candidates = (flow.request.host, flow.request.host_header or "", flow.client_conn.sni or "")
    for candidate in candidates:
        name = candidate.rsplit(":", 1)[0] if candidate.count(":") == 1 else candidate
        if name and gen.catalog.is_ai_host(name):
            return name
    return None


def _should_stream(response: http.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    if content_type.startswith("text/event-stream"):
        return True
    return "content-length" not in response.headers


def _counting_stream(
    flow: http.HTTPFlow, context: FlowContext, transform: Callable[[bytes], list[bytes]] | None = None
) -> Callable[[bytes], bytes | list[bytes]]:
    def stream(chunk: bytes) -> bytes | list[bytes]:
        try:
            context.streamed_bytes += len(chunk)
            context.last_chunk_at = time.monotonic()
            copy = context.output_copy
            if copy is not None:
                if len(copy) + len(chunk) <= _MAX_OUTPUT_COPY:
                    copy += chunk
                else:
                    context.output_copy = None  # too large to fingerprint: recorded as such at the end
                    context.output_skipped = True
            return transform(chunk) if transform is not None else chunk
        except Exception as exc:  # noqa: BLE001 - a raising stream callable hangs the connection: kill it
            log.error("stream_failed", event_id=context.event_id, error=type(exc).__name__)
            asyncio.get_event_loop().call_soon(flow.kill)
            return b""

    return stream


_GENERATION = frozenset({Capability.IMAGE_GENERATION, Capability.IMAGE_EDIT, Capability.VIDEO,
                         Capability.TEXT_TO_SPEECH, Capability.SPEECH_TO_SPEECH, Capability.CHAT})
_MAX_OUTPUT_COPY = 32 * 1024 * 1024

_STREAM_FORMATS = {ErrorFormat.ANTHROPIC: StreamFormat.ANTHROPIC, ErrorFormat.GEMINI: StreamFormat.GEMINI}


def _stream_restorer(response: http.Response, context: FlowContext) -> StreamRestorer | None:
    """The SSE restorer for a redacted request's answer; None when the answer is not SSE (buffered)."""
    if not response.headers.get("content-type", "").lower().startswith("text/event-stream") or \
            context.redaction is None or context.classification is None:
        return None
    tool, endpoint = context.classification.tool, context.classification.endpoint
    stream_format = _STREAM_FORMATS.get(tool.error_format)
    if stream_format is None:  # OpenAI and the OpenAI-compatible APIs
        responses = endpoint is not None and endpoint.id.startswith("responses")
        stream_format = StreamFormat.OPENAI_RESPONSES if responses else StreamFormat.OPENAI_CHAT
    return StreamRestorer(context.redaction.mapping, stream_format)


def _restore_body(response: http.Response, redaction: Redaction) -> None:
    """Put redacted values back into a JSON answer (anything else is left as the provider sent it)."""
    if "json" not in response.headers.get("content-type", "").lower():
        return
    try:
        value = json.loads(response.get_content(strict=True) or b"null")
    except ValueError:
        return
    response.content = dump_json(Restorer(redaction.mapping).restore_json(value))


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _client_ip(flow: http.HTTPFlow) -> str:
    peer = flow.client_conn.peername
    return str(peer[0]) if peer else ""


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _wants_html(flow: http.HTTPFlow) -> bool:
    accept = flow.request.headers.get("accept", "")
    mode = flow.request.headers.get("sec-fetch-mode", "")
    return mode == "navigate" or (accept.startswith("text/html") and flow.request.method == "GET")


def _may_fetch(body: bytes) -> bool:
    """A small body that names a URL may make us fetch it: never do that on the event loop."""
    return b"://" in body


_MEDIA_MARKERS = (b"data:", b"base64", b"iVBOR", b"/9j/", b"R0lGOD", b"UklGR", b"JVBER", b"UEsDB", b"SUQz", b"AAAA")


def _may_carry_media(request: HttpRequest) -> bool:
    """Media detectors take tens to hundreds of ms: any body that may carry media is checked off the loop."""
    return _may_be_media(request.content_type, request.body)


def _may_be_media(content_type: str, body: bytes) -> bool:
    """Whether `body` may hold media: a non-text type, or a marker of base64/binary media inside."""
    if content_type and not (content_type.endswith("json") or content_type.startswith("text/")):
        return True
    return any(marker in body for marker in _MEDIA_MARKERS)


def _detail(exc: Exception) -> str:
    """Our own errors carry content-free messages (locations, sizes, database states); others only a type."""
    return str(exc)[:200] if isinstance(exc, GreenroomError) else type(exc).__name__


def _proxyserver() -> Any:
    try:
        return ctx.master.addons.get("proxyserver")
    except Exception:  # noqa: BLE001 - no master (unit tests): the caller falls back to killing the flow
        return None


_CLOSE_MARKER = b"\x00greenroom-close\x00"
_CLOSE_KEY = "greenroom.ws_close"
_CUT_KEY = "greenroom.ws_cut"


def _inject_client_close(proxyserver: Any, flow: http.HTTPFlow, code: int, reason: str) -> None:
    """Close a WebSocket with `code` on both sides.

    mitmproxy has no API for an addon to close with a code of its own. We inject a marker message
    (after the error event, so the client gets that first); when our hook sees the marker it queues a
    client close frame in the WebSocket layer's client-side parser (after TLS, so plaintext is right)
    and drops the marker, and the layer then processes the close as if the client had sent it. If the
    layer cannot be found (a future mitmproxy), the connection is cut instead: closed, without the code.
    """
    layer = _websocket_layer(proxyserver, flow)
    if layer is None:
        _cut(flow)
        return
    payload = struct.pack("!H", code) + reason.encode("utf-8")[:120]
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    flow.metadata[_CLOSE_KEY] = (layer, bytes([0x88, 0x80 | len(payload)]) + mask + masked)
    proxyserver.inject_websocket(flow, False, _CLOSE_MARKER, False)


def _queue_close(flow: http.HTTPFlow) -> None:
    layer, frame = flow.metadata.pop(_CLOSE_KEY)
    layer.client_ws.receive_data(frame)


def _cut(flow: http.HTTPFlow) -> None:
    """Last resort for a WebSocket: kill the flow and drop every further client message."""
    flow.metadata[_CUT_KEY] = True
    flow.kill()


def _websocket_layer(proxyserver: Any, flow: http.HTTPFlow) -> Any:
    handler = proxyserver.connections.get(flow.client_conn.id)
    pending: list[Any] = [getattr(handler, "layer", None)]
    seen: set[int] = set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, WebsocketLayer) and node.flow is flow:
            return node
        delegate = getattr(getattr(node, "_handle_event", None), "__self__", None)  # modes hand over this way
        pending += [getattr(node, "layer", None), getattr(node, "child_layer", None), delegate]
        pending += list(getattr(node, "streams", {}).values())
    return None


def forbidden_destination(host: str) -> bool:
    """Destinations the proxy never connects to for a client: this machine (its admin listener, other
    local services) and link-local addresses (cloud metadata endpoints)."""
    name = host.strip("[]").lower().rstrip(".")
    if name in ("localhost", "localhost.localdomain", "ip6-localhost") or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified or address.is_link_local


def _forbidden(host: str) -> Refusal:
    body = b"Greenroom does not forward to this destination (this machine or a link-local address).\n"
    return Refusal(403, (("content-type", "text/plain; charset=utf-8"), ("X-Greenroom-Decision", "block")), body)


def _plain_503(event_id: str) -> Refusal:
    body = f"Greenroom could not process this connection. Reference: event {event_id}.".encode()
    return Refusal(503, (("content-type", "text/plain; charset=utf-8"), ("X-Greenroom-Event", event_id)), body)
