"""The review web application (Starlette): dashboard, events, decryption, approvals, report download.

Who sees what:

    reviewer, admin   every production; may decrypt captured inputs (each decryption is audited first)
    approver          the productions they approve for: events (metadata), holds, decisions, reports
    staff             only their own holds, to state a purpose

Every page is sent with a strict Content-Security-Policy (no script at all, styles and images from
this origin, captured media as data: URIs), `X-Frame-Options: DENY`, `nosniff`, a same-origin
referrer policy (so browsers still send Origin on POSTs) and `Cache-Control: no-store`. Every POST
needs the session's CSRF token and, when the browser sends an Origin, this origin. Hosts other than
loopback and the configured review URL's are refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.approvals import Approval, ApprovalError, ApprovalStatus, ApprovalStore, NotAnApproverError
from gateway.audit import AuditEvent, AuditStore, StoredEvent, new_event_id
from gateway.audit.decryption import OpenedCapture, decrypt_captures
from gateway.config.models import Action, GatewayConfig, Role, User
from gateway.decision import Decision, Reason
from gateway.report import FORMATS, build_report, render
from gateway.vault import CaptureKind, Vault

from . import charts
from .auth import Session, SessionStore, authenticate, can_review, csrf_ok, load_or_create_key
from .query import EventFilter, dashboard, filter_events, parse_day

__all__ = ["SECURITY_HEADERS", "Review", "create_app"]

_log = structlog.get_logger("greenroom.review")
SESSION_COOKIE = "greenroom_session"
LOGIN_COOKIE = "greenroom_login"
_MAX_FORM = 64 * 1024
_INLINE_MEDIA = {
    "image": ("image/png", "image/jpeg", "image/gif", "image/webp"),
    "audio": ("audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav", "audio/wave", "audio/ogg", "audio/webm",
              "audio/flac", "audio/mp4", "audio/aac"),
    "video": ("video/mp4", "video/webm", "video/ogg"),
}  # fmt: skip
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
_PERIODS = ((1, "last 24 hours"), (7, "last 7 days"), (30, "last 30 days"), (90, "last 90 days"))


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, and `no-store` to everything but static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers[key] = value
                headers["cache-control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass(slots=True)
class Review:
    """What the application works with."""

    config: GatewayConfig
    audit: AuditStore
    vault: Vault
    approvals: ApprovalStore
    sessions: SessionStore
    clock: Callable[[], float] = time.time

    # --- who sees what --------------------------------------------------------------------------

    def scope(self, user: User) -> frozenset[str] | None:
        """Productions whose events and approvals `user` sees; None for all of them."""
        if can_review(user):
            return None
        if user.role is Role.APPROVER:
            return frozenset(p.id for p in self.config.productions if user.name in p.approvers)
        return frozenset()

    def sees_events(self, user: User) -> bool:
        scope = self.scope(user)
        return scope is None or bool(scope)

    def may_decide(self, user: User, approval: Approval) -> bool:
        production = self.config.production(approval.production)
        return production is not None and user.name in production.approvers

    def visible_approvals(self, user: User, status: str | None = None) -> list[Approval]:
        scope = self.scope(user)
        if scope is None:
            return self.approvals.list(status=status)
        if user.role is Role.STAFF:
            return self.approvals.list(status=status, user=user.name)
        return self.approvals.list(production=scope, status=status)

    def sees_approval(self, user: User, approval: Approval) -> bool:
        scope = self.scope(user)
        return scope is None or approval.production in scope or approval.user == user.name


def create_app(
    config: GatewayConfig,
    audit: AuditStore,
    vault: Vault,
    approvals: ApprovalStore,
    data_dir: str | Path,
    *,
    allowed_hosts: list[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The review application over these stores; its session key lives in `<data_dir>/keys/`."""
    key = load_or_create_key(Path(data_dir) / "keys" / "review-session.key")
    review = Review(config, audit, vault, approvals, SessionStore(key, clock=clock), clock)
    env = Environment(loader=PackageLoader("gateway.review", "templates"), autoescape=select_autoescape(default=True))
    env.filters["ts"] = _format_ts
    hosts = allowed_hosts or _default_hosts(config.settings.review_url)
    pages = _Pages(review, env)
    routes = [
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/", pages.dashboard, methods=["GET"]),
        Route("/events", pages.events, methods=["GET"]),
        Route("/events/{event_id}", pages.event, methods=["GET"]),
        Route("/events/{event_id}/decrypt", pages.decrypt, methods=["POST"]),
        Route("/approvals", pages.approval_list, methods=["GET"]),
        Route("/approvals/{approval_id}", pages.approval, methods=["GET"]),
        Route("/approvals/{approval_id}/{action:str}", pages.approval_action, methods=["POST"]),
        Route("/report", pages.report_form, methods=["GET"]),
        Route("/report/download", pages.report_download, methods=["GET"]),
        Route("/healthz", pages.healthz, methods=["GET"]),
        Mount("/static", app=StaticFiles(packages=[("gateway.review", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        exception_handlers={404: pages.not_found, 405: pages.not_found},
    )
    app.state.review = review
    return app


def _default_hosts(review_url: str) -> list[str]:
    hosts = ["127.0.0.1", "localhost", "::1", "[::1]", "testserver"]
    configured = urllib.parse.urlsplit(review_url).hostname
    if configured:
        hosts.append(configured)
    return hosts


def _format_ts(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _signed_in(
    page: Callable[[_Pages, Request, Session, User], Awaitable[Response]],
) -> Callable[[_Pages, Request], Awaitable[Response]]:
    """A page for signed-in users: it gets the session and its user; anyone else goes to the login page."""

    @functools.wraps(page)
    async def handler(pages: _Pages, request: Request) -> Response:
        found = pages.session(request)
        if found is None:
            return pages.to_login(request)
        return await page(pages, request, *found)

    return handler


class _Pages:
    def __init__(self, review: Review, env: Environment) -> None:
        self.r = review
        self.env = env

    # --- plumbing -------------------------------------------------------------------------------

    def render(
        self, request: Request, template: str, status: int = 200, session: Session | None = None, **context: Any
    ) -> HTMLResponse:
        user = self.r.config.user(session.user) if session else None
        flash, session_flash = [], session.flash if session else []
        while session_flash:
            flash.append(session_flash.pop(0))
        page = self.env.get_template(template).render(
            user=user,
            csrf=session.csrf if session else "",
            can_see_events=user is not None and self.r.sees_events(user),
            flash=flash,
            **context,
        )
        return HTMLResponse(page, status_code=status)

    def session(self, request: Request) -> tuple[Session, User] | None:
        session = self.r.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        user = self.r.config.user(session.user)
        if user is None:  # removed from the configuration since logging in
            self.r.sessions.end(session)
            return None
        return session, user

    def to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), status_code=303)

    def refuse(self, request: Request, session: Session | None, message: str, status: int = 403) -> Response:
        titles = {403: "Not allowed", 404: "Not found", 400: "Bad request", 429: "Too many attempts"}
        return self.render(
            request, "error.html", status, session, title=titles.get(status, "Error"), message=message, code=status
        )

    async def form(self, request: Request, session: Session | None) -> dict[str, str] | Response:
        """The POSTed form, after the origin and CSRF checks (the error response otherwise)."""
        origin = request.headers.get("origin")
        if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            return self.refuse(request, session, "This form was sent from another site.")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return self.refuse(request, session, "Expected a form.", 400)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM:
                return self.refuse(request, session, "The form is too large.", 400)
        fields = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        expected = session.csrf if session else (self.r.sessions.unsign(request.cookies.get(LOGIN_COOKIE)) or "")
        if not expected or not csrf_ok(expected, fields.get("csrf")):
            _log.warning("review_csrf_rejected", path=request.url.path)
            return self.refuse(request, session, "The form expired or did not come from this page; reload it.")
        return fields

    # --- login ----------------------------------------------------------------------------------

    async def login_form(self, request: Request, error: str = "", status: int = 200) -> Response:
        token = new_event_id()[4:]
        next_url = request.query_params.get("next", "/")
        response = self.render(request, "login.html", status, None, login_csrf=token, next=next_url, error=error)
        response.set_cookie(
            LOGIN_COOKIE, self.r.sessions.sign(token), httponly=True, samesite="strict", path="/login",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    async def login(self, request: Request) -> Response:
        fields = await self.form(request, None)
        if isinstance(fields, Response):
            return fields
        name = fields.get("username", "").strip()
        password = fields.get("password", "")
        if self.r.sessions.locked_out(name):
            _log.warning("review_login_locked", user=name)
            return await self.login_form(request, "Too many failed attempts; try again in 15 minutes.", 429)
        user = await run_in_threadpool(authenticate, self.r.config, name, password)
        if user is None:
            self.r.sessions.failed(name)
            _log.warning("review_login_failed", user=name)
            return await self.login_form(request, "Wrong user name or password.", 401)
        self.r.sessions.succeeded(name)
        session = self.r.sessions.create(user.name)
        _log.info("review_login", user=user.name, role=user.role.value)
        next_url = fields.get("next") or "/"
        if not next_url.startswith("/") or next_url.startswith("//"):
            next_url = "/"
        if not self.r.sees_events(user) and next_url == "/":
            next_url = "/approvals"
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, self.r.sessions.sign(session.id), httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: Request) -> Response:
        found = self.session(request)
        if found is None:
            return RedirectResponse("/login", status_code=303)
        fields = await self.form(request, found[0])
        if isinstance(fields, Response):
            return fields
        self.r.sessions.end(found[0])
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def healthz(self, request: Request) -> Response:
        return Response("ok\n", media_type="text/plain")

    async def not_found(self, request: Request, exc: Exception) -> Response:
        found = self.session(request)
        return self.refuse(request, found[0] if found else None, "There is nothing here.", 404)

    # --- dashboard ------------------------------------------------------------------------------

    @_signed_in
    async def dashboard(self, request: Request, session: Session, user: User) -> Response:
        if not self.r.sees_events(user):
            return RedirectResponse("/approvals", status_code=303)
        try:
            days = int(request.query_params.get("days", "7"))
        except ValueError:
            days = 7
        days = days if days in dict(_PERIODS) else 7
        now = self.r.clock()
        since = now - days * 86400
        scope = self.r.scope(user)
        board = await run_in_threadpool(
            lambda: dashboard(self.r.audit.iter_events(since=since), scope, since, now, hourly=days == 1)
        )
        figures = {
            "decisions": charts.stacked_bars(
                "decisions", "Requests by decision", board.buckets, board.by_decision, charts.DECISION_COLOURS
            ),
            "tools": charts.stacked_bars("tools", "Requests by tool", board.buckets, board.by_tool),
            "productions": charts.stacked_bars(
                "productions", "Requests by production", board.buckets, board.by_production
            ),
            "rules": charts.horizontal_bars("rules", "Top rules", board.top_rules, "#c8443a"),
            "users": charts.horizontal_bars("users", "Top users", board.top_users),
        }
        waiting = self.r.visible_approvals(user, ApprovalStatus.PENDING.value)
        return self.render(
            request, "dashboard.html", session=session, board=board, charts=figures, waiting=waiting, days=days,
            periods=_PERIODS,
        )  # fmt: skip

    # --- events ---------------------------------------------------------------------------------

    @_signed_in
    async def events(self, request: Request, session: Session, user: User) -> Response:
        if not self.r.sees_events(user):
            return self.refuse(request, session, "Your role does not include reviewing events.")
        q = request.query_params
        raw = {
            k: q.get(k, "").strip() for k in ("production", "user", "tool", "decision", "rule", "since", "until", "q")
        }
        try:
            since, until = parse_day(raw["since"]), parse_day(raw["until"], end=True)
        except ValueError:
            return self.refuse(request, session, "Dates are written YYYY-MM-DD.", 400)
        where = EventFilter(
            production=raw["production"], user=raw["user"], tool=raw["tool"], decision=raw["decision"],
            rule=raw["rule"], since=since, until=until, q=raw["q"],
        )  # fmt: skip
        scope = self.r.scope(user)
        shown, total = await run_in_threadpool(
            lambda: filter_events(self.r.audit.iter_events(since=since), where, scope)
        )
        productions = sorted(scope) if scope is not None else sorted(p.id for p in self.r.config.productions)
        return self.render(
            request, "events.html", session=session, events=shown, total=total, f=where, raw=raw,
            productions=productions, tools=sorted(t.id for t in self.r.config.tools),
            decisions=[a.value for a in Action],
        )  # fmt: skip

    def _visible_event(self, user: User, event_id: str) -> StoredEvent | None:
        stored = self.r.audit.get(event_id)
        if stored is None:
            return None
        scope = self.r.scope(user)
        if scope is not None and stored.event.production not in scope:
            return None
        return stored

    @_signed_in
    async def event(self, request: Request, session: Session, user: User) -> Response:
        stored = self._visible_event(user, request.path_params["event_id"])
        if stored is None or not self.r.sees_events(user):
            return self.refuse(request, session, "No such event, or not one of your productions.", 404)
        return self.render(request, "event.html", session=session, s=stored, inputs=None, can_decrypt=can_review(user))

    @_signed_in
    async def decrypt(self, request: Request, session: Session, user: User) -> Response:
        fields = await self.form(request, session)
        if isinstance(fields, Response):
            return fields
        event_id = request.path_params["event_id"]
        if not can_review(user):
            _log.warning("review_decrypt_refused", user=user.name, role=user.role.value, event_id=event_id)
            return self.refuse(request, session, "Decrypting captured inputs is reserved for security reviewers.")
        stored = self._visible_event(user, event_id)
        if stored is None:
            return self.refuse(request, session, "No such event.", 404)
        client = request.client.host if request.client else ""
        inputs, record_id = await run_in_threadpool(self._decrypt, stored, user.name, client)
        return self.render(
            request, "event.html", session=session, s=stored, inputs=inputs, can_decrypt=True, decrypt_event=record_id
        )

    def _decrypt(self, stored: StoredEvent, user: str, client: str) -> tuple[list[dict[str, Any]], str]:
        """Record the decryption first (no record, no plaintext), then open each capture."""
        record = AuditEvent(
            id=new_event_id(),
            ts=self.r.clock(),
            user=user,
            production=stored.event.production,
            tool="greenroom",
            endpoint="audit.decrypt",
            capability="other",
            method="POST",
            host="review",
            path=f"/events/{stored.event.id}/decrypt",
            mode="review",
            client=client,
            decision=Decision.of([Reason("audit.decrypt", Action.NOTIFY, entity=stored.event.id, detector="review")]),
        )
        inputs = [_shown(o) for o in decrypt_captures(self.r.audit, self.r.vault, stored.event.id, record)]
        _log.info("review_decrypted", user=user, event_id=stored.event.id, record=record.id, inputs=len(inputs))
        return inputs, record.id

    # --- approvals ------------------------------------------------------------------------------

    @_signed_in
    async def approval_list(self, request: Request, session: Session, user: User) -> Response:
        status = request.query_params.get("status", "")
        statuses = [s.value for s in ApprovalStatus]
        listed = self.r.visible_approvals(user, status if status in statuses else None)
        return self.render(
            request, "approvals.html", session=session, approvals=listed, wanted=status, statuses=statuses
        )

    def _visible_approval(self, user: User, approval_id: str) -> Approval | None:
        try:
            approval = self.r.approvals.get(approval_id)
        except ApprovalError:
            return None
        return approval if self.r.sees_approval(user, approval) else None

    @_signed_in
    async def approval(self, request: Request, session: Session, user: User) -> Response:
        return self._approval_page(request, session, user)

    def _approval_page(
        self, request: Request, session: Session, user: User, error: str = "", status: int = 200
    ) -> Response:
        approval = self._visible_approval(user, request.path_params["approval_id"])
        if approval is None:
            return self.refuse(request, session, "No such approval request, or not one you can see.", 404)
        production = self.r.config.production(approval.production)
        pending = approval.status is ApprovalStatus.PENDING
        scope = self.r.scope(user)
        return self.render(
            request, "approval.html", status, session, a=approval, error=error,
            trail=self.r.approvals.trail(approval.id),
            approvers=production.approvers if production else approval.approvers,
            can_decide=pending and self.r.may_decide(user, approval),
            can_state_purpose=pending and approval.user == user.name,
            can_see_event=scope is None or approval.production in scope,
        )  # fmt: skip

    @_signed_in
    async def approval_action(self, request: Request, session: Session, user: User) -> Response:
        fields = await self.form(request, session)
        if isinstance(fields, Response):
            return fields
        action = request.path_params["action"]
        approval = self._visible_approval(user, request.path_params["approval_id"])
        if approval is None:
            return self.refuse(request, session, "No such approval request, or not one you can see.", 404)
        try:
            if action == "purpose":
                await run_in_threadpool(self.r.approvals.set_purpose, approval.id, user.name, fields.get("purpose", ""))
                session.flash.append("Purpose recorded; an approver of the production has been told.")
            elif action == "approve":
                expires = _expiry(fields.get("expires", ""))
                await run_in_threadpool(
                    self.r.approvals.approve, approval.id, user.name, fields.get("reason", ""), expires
                )
                session.flash.append("Approved. The same request, retried, now passes.")
            elif action == "deny":
                await run_in_threadpool(self.r.approvals.deny, approval.id, user.name, fields.get("reason", ""))
                session.flash.append("Denied.")
            else:
                return self.refuse(request, session, "Unknown action.", 404)
        except NotAnApproverError as exc:
            return self.refuse(request, session, str(exc))
        except (ApprovalError, ValueError) as exc:
            return self._approval_page(request, session, user, error=str(exc), status=400)
        return RedirectResponse(f"/approvals/{approval.id}", status_code=303)

    # --- report ---------------------------------------------------------------------------------

    def _report_productions(self, user: User) -> list[str]:
        scope = self.r.scope(user)
        ids = [p.id for p in self.r.config.productions]
        return ids if scope is None else [p for p in ids if p in scope]

    @_signed_in
    async def report_form(self, request: Request, session: Session, user: User) -> Response:
        productions = self._report_productions(user)
        if not productions:
            return self.refuse(request, session, "Your role does not include production reports.")
        return self.render(request, "report.html", session=session, productions=productions, formats=FORMATS)

    @_signed_in
    async def report_download(self, request: Request, session: Session, user: User) -> Response:
        production = request.query_params.get("production", "")
        fmt = request.query_params.get("format", "html")
        if production not in self._report_productions(user) or fmt not in FORMATS:
            return self.refuse(request, session, "Not a production (or format) you can report on.")
        try:
            since = parse_day(request.query_params.get("since", ""))
        except ValueError:
            return self.refuse(request, session, "Dates are written YYYY-MM-DD.", 400)

        def build() -> str:
            events = self.r.audit.iter_events(since=since, production=production)
            return render(build_report(self.r.config, events, self.r.approvals, production, since=since), fmt)

        text = await run_in_threadpool(build)
        media = {"html": "text/html", "md": "text/markdown", "csv": "text/csv", "json": "application/json"}[fmt]
        stamp = dt.datetime.fromtimestamp(self.r.clock(), dt.UTC).strftime("%Y%m%d")
        return Response(
            text,
            media_type=f"{media}; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="greenroom-{production}-{stamp}.{fmt}"'},
        )


def _shown(opened: OpenedCapture) -> dict[str, Any]:
    """A capture as the event page shows it: text, media the browser can play inline, or the error."""
    capture = opened.capture
    item: dict[str, Any] = {
        "location": capture.location, "content_type": capture.content_type, "size": capture.size,
        "text": None, "error": "" if opened.error is None else str(opened.error),
    }  # fmt: skip
    if opened.plaintext is None:
        return item
    if capture.kind is CaptureKind.TEXT:
        item["text"] = opened.plaintext.decode("utf-8", "replace")
        return item
    media = capture.content_type.split(";")[0].strip().lower()
    for kind, allowed in _INLINE_MEDIA.items():
        if media in allowed:
            item[kind] = f"data:{media};base64," + base64.b64encode(opened.plaintext).decode("ascii")
    return item


def _expiry(value: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    day = dt.date.fromisoformat(value)
    return dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC).timestamp()
