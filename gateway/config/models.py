"""Configuration models: the edge where YAML becomes typed, frozen values.

Every model forbids unknown keys (a misspelt security setting must not be silently dropped), is
frozen, documents every field (the JSON Schema for editors is generated from these descriptions)
and hides input values in errors (pydantic would otherwise echo secrets back).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Action",
    "AdminSettings",
    "AuditSettings",
    "Capability",
    "ConfidentialTerm",
    "Consent",
    "Endpoint",
    "ErrorFormat",
    "GatewayConfig",
    "GatewaySettings",
    "HeaderRemove",
    "HeaderSet",
    "IntellectualProperty",
    "JsonRemove",
    "JsonSet",
    "Limits",
    "NetworkMapping",
    "OutputPolicy",
    "PersonalDataPolicy",
    "Production",
    "ProductionKind",
    "QuerySet",
    "ReferencePolicy",
    "Registry",
    "Rewrite",
    "Role",
    "Talent",
    "TenantPin",
    "Tool",
    "ToolGrant",
    "UpstreamSettings",
    "User",
    "WebhookSettings",
    "cross_reference_problems",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_SCRYPT_HASH = re.compile(
    r"scrypt\$(1[0-9]|20)\$[1-9][0-9]{0,2}\$[1-9][0-9]?\$[A-Za-z0-9+/]{16,}={0,2}\$[A-Za-z0-9+/]{32,}={0,2}"
)
Identifier = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id: letters, digits, . _ -")]
JsonValue = Any


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Capability(StrEnum):
    """What an endpoint does with what it is sent; productions approve tools per capability."""

    CHAT = "chat"
    IMAGE_GENERATION = "image_generation"
    IMAGE_EDIT = "image_edit"
    VIDEO = "video"
    VOICE_CLONE = "voice_clone"
    TEXT_TO_SPEECH = "text_to_speech"
    SPEECH_TO_TEXT = "speech_to_text"
    SPEECH_TO_SPEECH = "speech_to_speech"
    FILE_UPLOAD = "file_upload"
    EMBEDDINGS = "embeddings"
    REALTIME = "realtime"
    MODERATION = "moderation"
    BATCH = "batch"
    TELEMETRY = "telemetry"
    SETTINGS = "settings"
    METADATA = "metadata"
    OTHER = "other"


class Action(StrEnum):
    """A decision's outcome, in increasing severity."""

    ALLOW = "allow"
    NOTIFY = "notify"
    REDACT = "redact"
    HOLD = "hold"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.ALLOW: 0, Action.NOTIFY: 1, Action.REDACT: 2, Action.HOLD: 3, Action.BLOCK: 4}


class ErrorFormat(StrEnum):
    """The provider's own error body shape, so official SDKs raise their permission error."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    ELEVENLABS = "elevenlabs"
    STABILITY = "stability"
    RUNWAY = "runway"
    MISTRAL = "mistral"
    CHATGPT_WEB = "chatgpt_web"
    GENERIC = "generic"


# --- tool catalog -------------------------------------------------------------------------------


class JsonSet(Model):
    """Force a JSON body value (`store: false`)."""

    kind: Literal["json_set"]
    path: str = Field(
        description="dotted path from the body root; `*` matches any key or index, `**` any depth "
        "(e.g. `store`, `**.cache_control.ttl`)"
    )
    value: JsonValue = Field(description="the value the provider must receive")
    when: Literal["always", "present"] = Field(
        "always",
        description="`always` adds the key when missing (top-level objects only); `present` only replaces",
    )
    rule: str = Field(description="stable id recorded in the decision when this rewrite changes the body")


class JsonRemove(Model):
    """Remove a JSON body key (`metadata`, `background`)."""

    kind: Literal["json_remove"]
    path: str = Field(description="dotted path, same syntax as json_set")
    rule: str = Field(description="stable id recorded in the decision when a key is removed")


class QuerySet(Model):
    """Force a query parameter (`enable_logging=false`)."""

    kind: Literal["query_set"]
    param: str = Field(description="query parameter name")
    value: str = Field(description="the value the provider must receive")
    when: Literal["always", "present"] = Field("always", description="add when missing, or only replace")
    only_if_query: dict[str, list[str]] = Field(
        default_factory=dict,
        description="apply only when every listed parameter has one of the listed values",
    )
    rule: str = Field(description="stable id recorded in the decision when the query changes")


class HeaderSet(Model):
    """Force a request header (`X-Fal-Store-IO: 0`)."""

    kind: Literal["header_set"]
    name: str = Field(description="header name")
    value: str = Field(description="the value the provider must receive")
    rule: str = Field(description="stable id recorded in the decision when the header changes")


class HeaderRemove(Model):
    """Remove a request header."""

    kind: Literal["header_remove"]
    name: str = Field(description="header name")
    rule: str = Field(description="stable id recorded in the decision when the header is removed")


Rewrite = Annotated[JsonSet | JsonRemove | QuerySet | HeaderSet | HeaderRemove, Field(discriminator="kind")]


class Endpoint(Model):
    """One endpoint of a tool: what it does, and how Greenroom treats it."""

    id: str = Field(description="stable endpoint id within the tool (e.g. `chat.completions`)")
    methods: list[str] = Field(default_factory=lambda: ["POST"], description="HTTP methods, upper case")
    path: str = Field(
        description="path pattern: `{name}` matches one segment (or up to a `:`), `**` the rest "
        "(e.g. `/v1beta/models/{model}:generateContent`)"
    )
    capability: Capability = Field(description="what the endpoint does")
    consumer: bool = Field(False, description="a consumer or anonymous surface: always blocked")
    block_rule: str | None = Field(
        None, description="if set, every request to the endpoint is blocked with this rule id"
    )
    block_message: str = Field("", description="what the user should do instead (shown in the block)")
    rewrites: list[Rewrite] = Field(default_factory=list, description="retention/training rewrites")
    websocket: bool = Field(False, description="the endpoint is a WebSocket upgrade")
    upload_protocol: Literal["none", "google_resumable"] = Field(
        "none",
        description="`google_resumable`: chunks are kept by the gateway and the whole file is inspected and sent "
        "at finalize (Gemini Files API, Gemini web uploads)",
    )
    message_rewrites: list[Rewrite] = Field(
        default_factory=list,
        description="rewrites applied to each JSON message the client sends on the WebSocket (json_set/json_remove)",
    )

    @field_validator("methods")
    @classmethod
    def _upper(cls, methods: list[str]) -> list[str]:
        return [m.upper() for m in methods]


class TenantPin(Model):
    """How a tool is pinned to the studio's enterprise tenant."""

    header: str = Field(description="request header carrying the tenant (e.g. `OpenAI-Organization`)")
    required: bool = Field(
        False, description="a production approving this tool must name its tenant"
    )


class Tool(Model):
    """An AI tool: its hosts, endpoints and wire conventions."""

    id: Identifier
    name: str = Field(description="display name")
    kind: Literal["api", "webapp"] = Field(description="an API/SDK surface or a browser web app")
    hosts: list[str] = Field(min_length=1, description="host names; `*.example.com` matches subdomains")
    error_format: ErrorFormat = Field(description="the provider's error body shape")
    reverse_prefix: str | None = Field(
        None, description="path prefix in reverse mode (`openai` → http://gateway:8443/openai/v1/...)"
    )
    tenant: TenantPin | None = Field(None, description="enterprise tenant pinning, if the tool has one")
    default_capability: Capability = Field(
        Capability.OTHER, description="capability of requests that match no listed endpoint"
    )
    endpoints: list[Endpoint] = Field(default_factory=list, description="known endpoints, first match wins")
    rewrites: list[Rewrite] = Field(default_factory=list, description="rewrites applied to every endpoint")

    @field_validator("hosts")
    @classmethod
    def _lower_hosts(cls, hosts: list[str]) -> list[str]:
        return [h.lower().rstrip(".") for h in hosts]

    @model_validator(mode="after")
    def _unique_endpoints(self) -> Tool:
        seen: set[str] = set()
        for ep in self.endpoints:
            if ep.id in seen:
                raise ValueError(f"endpoint id {ep.id!r} appears twice; give each endpoint its own id")
            seen.add(ep.id)
        return self


# --- users, productions, settings ----------------------------------------------------------------


class Role(StrEnum):
    STAFF = "staff"
    APPROVER = "approver"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class User(Model):
    """A person who routes traffic through the gateway or reviews it."""

    name: Identifier
    display_name: str = Field("", description="shown in the review UI and reports")
    password_hash: str = Field(
        description="scrypt hash from `greenroom config hash-password` (never a plain password)"
    )
    role: Role = Field(Role.STAFF, description="staff, approver, reviewer or admin")
    productions: list[Identifier] = Field(
        default_factory=list, description="productions this user works on (the first is the default)"
    )
    token_hashes: list[str] = Field(
        default_factory=list,
        description="sha256 hex digests of reverse-mode gateway tokens (`greenroom config hash-token`)",
    )

    @field_validator("password_hash")
    @classmethod
    def _hashed(cls, value: str) -> str:
        if not _SCRYPT_HASH.fullmatch(value):
            raise ValueError(
                "must be a scrypt hash, not a plain password; create one with "
                "`greenroom config hash-password`"
            )
        return value

    @field_validator("token_hashes")
    @classmethod
    def _token_hex(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"[0-9a-f]{64}", value):
                raise ValueError("token hashes are 64 lower-case hex digits from `greenroom config hash-token`")
        return values


class ToolGrant(Model):
    """A production's approval of one tool."""

    tenant: str | None = Field(None, description="the studio's enterprise org/workspace id for this tool")
    capabilities: list[Capability] | None = Field(
        None, description="approved capabilities; omit to approve every capability of the tool"
    )
    note: str = Field("", description="why the tool is approved, for the disclosure report")


class ProductionKind(StrEnum):
    SCRIPTED = "scripted"
    DOCUMENTARY = "documentary"
    UNSCRIPTED = "unscripted"
    ANIMATION = "animation"
    COMMERCIAL = "commercial"


class PersonalDataPolicy(Model):
    """What to do with personal data in requests."""

    action: Action = Field(Action.NOTIFY, description="notify, redact, hold or block")
    kinds: list[str] = Field(
        default_factory=lambda: ["email", "phone"],
        description="kinds of personal data this applies to (email, phone, government_id, card, iban, address)",
    )


class ConfidentialTerm(Model):
    """A production secret (unreleased title, character, location) that must not leave in clear."""

    term: str = Field(min_length=2, description="the term as written")
    kind: Literal["title", "character", "location", "person", "other"] = Field(
        "other", description="what the term is (chooses the placeholder)"
    )
    action: Action = Field(Action.REDACT, description="notify, redact, hold or block")


class Consent(Model):
    """A signed consent of registered talent for this production."""

    talent: Identifier = Field(description="talent id in the registry")
    scopes: list[Literal["likeness", "voice", "digital_replica"]] = Field(
        min_length=1, description="what the consent covers"
    )
    valid_from: dt.date | None = Field(None, description="first day the consent applies")
    until: dt.date | None = Field(None, description="last day the consent applies")
    document: str = Field("", description="reference of the signed document")


class ReferencePolicy(Model):
    """What to do with content the provider would fetch or look up instead of receiving it."""

    remote_urls: Literal["fetch", "block", "allow"] = Field(
        "fetch",
        description="remote URLs in a request (image_url, fileUri, ...): `fetch` them first and inspect the bytes "
        "(an unreachable URL is refused), `block` them, or `allow` them unchecked",
    )
    unknown_file_ids: Action = Field(
        Action.HOLD,
        description="a provider file id that was not uploaded through Greenroom: allow, notify, hold or block "
        "(an id uploaded by another production is always blocked)",
    )


class OutputPolicy(Model):
    """What to do with generated media that comes back."""

    action: Literal["withhold", "notify"] = Field(
        "withhold",
        description="a generated likeness of registered talent without consent, or a near-copy of unlicensed IP: "
        "`withhold` it (the client gets the provider's error) or `notify` (deliver and record)",
    )
    mark: bool = Field(
        False, description="tag returned PNG/JPEG images with an 'AI-generated, temporary' marker (PNG text, XMP)"
    )


class Production(Model):
    """One production's rules: approved tools, consents, licences, approvers."""

    id: Identifier
    name: str = Field(description="display name")
    kind: ProductionKind = Field(description="scripted, documentary, unscripted, animation or commercial")
    approvers: list[Identifier] = Field(default_factory=list, description="users who may grant written approval")
    tools: dict[Identifier, ToolGrant] = Field(
        default_factory=dict, description="approved tools by tool id; any other AI tool is blocked"
    )
    unknown_voices: Action = Field(
        Action.HOLD,
        description="a voice matching no registered performer in a voice-clone or speech-to-speech request",
    )
    unknown_endpoint_action: Action = Field(
        Action.NOTIFY,
        description="decision for requests to an approved tool's endpoints that the catalog does not list",
    )
    personal_data: PersonalDataPolicy = Field(
        default_factory=PersonalDataPolicy, description="personal data handling"
    )
    confidential_terms: list[ConfidentialTerm] = Field(
        default_factory=list, description="production secrets (never logged; matched case-insensitively)"
    )
    consents: list[Consent] = Field(default_factory=list, description="talent consents on file")
    licensed_ip: list[Identifier] = Field(
        default_factory=list, description="registry IP ids licensed to this production"
    )
    retention_days: int = Field(90, ge=1, le=3650, description="days captured inputs are kept before purge")
    outputs: OutputPolicy = Field(default_factory=OutputPolicy, description="generated media coming back")
    references: ReferencePolicy = Field(
        default_factory=ReferencePolicy, description="remote URLs and provider file ids in requests"
    )

    @field_validator("tools", mode="before")
    @classmethod
    def _empty_grants(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


class NetworkMapping(Model):
    """A source network whose clients belong to a production."""

    cidr: str = Field(description="client network, e.g. 10.20.0.0/16")
    production: Identifier = Field(description="production of clients in this network")
    anonymous_user: Identifier | None = Field(
        None,
        description="if set, clients here need no proxy credentials and are recorded as this user id",
    )

    @field_validator("cidr")
    @classmethod
    def _network(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network in CIDR form (e.g. 10.0.0.0/8): {exc}") from None


class Limits(Model):
    """Inspection limits; past any of them the request is refused, never forwarded uninspected."""

    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="largest request body accepted")
    max_decoded_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="largest body after Content-Encoding decoding"
    )
    max_json_depth: int = Field(64, ge=4, le=1000, description="deepest JSON nesting inspected")
    max_buffered_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="largest body the proxy buffers at all (chunked requests, non-streamed answers); past it "
        "the connection is refused",
    )
    max_archive_members: int = Field(1000, ge=1, description="members of one archive, pages of one PDF")
    max_archive_depth: int = Field(
        4, ge=1, le=32, description="nesting of containers: archives, documents, base64, JSON in strings"
    )
    max_archive_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, description="uncompressed bytes of one archive (declared and actual)"
    )
    max_image_pixels: int = Field(64_000_000, ge=1, description="pixels of one image or video frame")
    max_frames: int = Field(64, ge=1, description="frames decoded from one animated image or sampled from a video")
    max_audio_seconds: float = Field(600.0, gt=0, description="duration of one audio or video item")
    max_base64_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="decoded size of one base64 item")
    max_items: int = Field(10_000, ge=1, description="texts, media items and references in one request")
    inline_inspect_bytes: int = Field(
        64 * 1024, ge=0, description="bodies up to this size are inspected on the event loop; larger in a worker"
    )


class AdminSettings(Model):
    host: str = Field("127.0.0.1", description="admin listener host (loopback unless you need otherwise)")
    port: int = Field(9090, ge=0, le=65535, description="admin listener port; 0 disables it")


class UpstreamSettings(Model):
    """Deadlines for AI providers, so a hung provider does not hold clients for the proxy's 10-minute default."""

    first_byte_seconds: float = Field(
        300.0, gt=0, description="from forwarding a request to the provider's response headers (connect included)"
    )
    idle_seconds: float = Field(
        120.0, gt=0, description="longest silence inside a streamed answer before the connection is cut"
    )


class MediaWorkerSettings(Model):
    """Media detectors (faces, IP images, voices) run in worker processes, away from the proxy's event loop."""

    workers: int = Field(0, ge=0, le=64, description="worker processes; 0 = one per CPU core the gateway may use")
    nice: int = Field(
        10, ge=0, le=19, description="how much lower their CPU priority is than the proxy's (Unix nice increment)"
    )
    idle_seconds: float = Field(
        600.0, gt=0, description="stop the workers after this long without media; the next media item starts them"
    )
    timeout_seconds: float = Field(
        120.0, gt=0, description="longest detection of one request's media; then it is blocked and the workers replaced"
    )


class AuditSettings(Model):
    """Where audit events are stored and how their integrity is proven."""

    store: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="`sqlite` (a file in the data dir) or `postgres` (set `dsn`)"
    )
    dsn: str | None = Field(
        None, description="PostgreSQL connection string (postgresql://user@host:5432/db); env GREENROOM_AUDIT_DSN wins"
    )
    checkpoint_every: int = Field(100, ge=1, description="sign a checkpoint after this many events")
    checkpoint_seconds: float = Field(30.0, gt=0, description="and at least this often while events arrive")
    checkpoint_dir: str | None = Field(
        None,
        description="second location for exported checkpoints (default: <data-dir>/checkpoints); "
        "put it where the database administrator cannot rewrite it",
    )
    replica_id: str | None = Field(
        None,
        description="this gateway's hash-chain id; env GREENROOM_REPLICA_ID wins; default <hostname>:<data-dir hash>. "
        "Give every replica sharing one PostgreSQL its own",
    )


WebhookEvent = Literal["hold", "approved", "denied", "purpose"]


def _default_webhook_events() -> list[WebhookEvent]:
    return ["hold", "approved", "denied"]


class WebhookSettings(Model):
    """A JSON POST sent on approval events, signed with HMAC-SHA256 over `<timestamp>.<body>`."""

    url: str = Field(pattern=r"^https?://", description="where to POST (http:// or https://)")
    secret: str | None = Field(
        None, min_length=16, description="shared signing secret (16+ chars); prefer `secret_env`"
    )
    secret_env: str | None = Field(
        None, description="name of the environment variable holding the shared secret"
    )
    events: list[WebhookEvent] = Field(
        default_factory=_default_webhook_events, description="which approval events to send"
    )
    timeout_seconds: float = Field(5.0, gt=0, le=60, description="per-attempt timeout")
    retries: int = Field(3, ge=0, le=10, description="further attempts after a failure, with backoff")

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookSettings:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("set exactly one of `secret` and `secret_env` (the shared signing secret)")
        return self


class GatewaySettings(Model):
    """Gateway-wide settings (`gateway.yaml`); command-line flags override them."""

    listen_host: str = Field("127.0.0.1", description="proxy listen address")
    listen_port: int = Field(8080, ge=0, le=65535, description="explicit-proxy port")
    reverse_port: int | None = Field(
        8443, ge=0, le=65535, description="reverse-mode port (`http://gateway:8443/openai/v1`); null disables"
    )
    admin: AdminSettings = Field(default_factory=AdminSettings, description="health and metrics listener")
    limits: Limits = Field(default_factory=Limits, description="inspection limits")
    networks: list[NetworkMapping] = Field(default_factory=list, description="source networks → productions")
    review_url: str = Field(
        "http://127.0.0.1:8700", description="base URL of the review UI, linked from block messages"
    )
    audit: AuditSettings = Field(default_factory=AuditSettings, description="audit store and integrity")
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings, description="provider deadlines")
    media_workers: MediaWorkerSettings = Field(
        default_factory=MediaWorkerSettings, description="worker processes for the media detectors"
    )
    reload_interval_seconds: float = Field(
        2.0, ge=0, description="how often the config dir is checked for changes (hot reload); 0 disables"
    )
    auth_cache_seconds: int = Field(
        300, ge=0, le=86400, description="how long a verified proxy credential is trusted without re-hashing"
    )
    webhooks: list[WebhookSettings] = Field(
        default_factory=list, description="JSON POSTs on approval holds, approvals and denials"
    )


class Talent(Model):
    """Registered talent (`registry/talent/<id>/talent.yaml`)."""

    id: Identifier
    name: str = Field(min_length=2, description="the performer's name")
    aliases: list[str] = Field(default_factory=list, description="other names, stage names, spellings")
    photos: list[str] = Field(default_factory=list, description="reference face photos, relative to the file")
    voices: list[str] = Field(default_factory=list, description="reference voice clips, relative to the file")
    union: str = Field("", description="union status (e.g. SAG-AFTRA), for reports")


class IntellectualProperty(Model):
    """Registered third-party or studio IP (`registry/ip/<id>/ip.yaml`)."""

    id: Identifier
    title: str = Field(min_length=2, description="the work's title")
    owner: str = Field("", description="rights holder")
    characters: list[str] = Field(default_factory=list, description="character names")
    terms: list[str] = Field(default_factory=list, description="other distinctive terms")
    images: list[str] = Field(default_factory=list, description="stills, posters, logos, relative to the file")
    scripts: list[str] = Field(default_factory=list, description="script or document texts, relative to the file")


class Registry(Model):
    talent: list[Talent] = Field(default_factory=list)
    ip: list[IntellectualProperty] = Field(default_factory=list)


Locator = tuple[str, str, tuple[str | int, ...]]
"""(kind, entity id, field path) of a problem: ("user", "alice", ("productions", 0))."""


class GatewayConfig(Model):
    """The whole configuration directory, validated as one."""

    settings: GatewaySettings = Field(default_factory=GatewaySettings)
    users: list[User] = Field(default_factory=list)
    productions: list[Production] = Field(default_factory=list)
    tools: list[Tool] = Field(default_factory=list)
    registry: Registry = Field(default_factory=Registry)

    @model_validator(mode="after")
    def _cross_references(self) -> GatewayConfig:
        problems = cross_reference_problems(self)
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        return self

    def production(self, production_id: str) -> Production | None:
        return next((p for p in self.productions if p.id == production_id), None)

    def user(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)


def cross_reference_problems(config: GatewayConfig) -> list[tuple[Locator, str]]:
    """Every reference between files that does not resolve, with where it sits."""
    problems: list[tuple[Locator, str]] = []
    for kind, ids in (
        ("user", [u.name for u in config.users]),
        ("production", [p.id for p in config.productions]),
        ("tool", [t.id for t in config.tools]),
        ("talent", [t.id for t in config.registry.talent]),
        ("ip", [i.id for i in config.registry.ip]),
    ):
        problems += [((kind, d, ()), f"{kind} {d!r} is defined more than once; keep one") for d in _dups(ids)]
    productions = {p.id for p in config.productions}
    for user in config.users:
        problems += [
            (("user", user.name, ("productions", i)),
             f"production {p!r} is not defined; add productions/{p}.yaml or fix the name")
            for i, p in enumerate(user.productions)
            if p not in productions
        ]
    users = {u.name for u in config.users}
    tools = {t.id: t for t in config.tools}
    talent = {t.id for t in config.registry.talent}
    ip = {i.id for i in config.registry.ip}
    for prod in config.productions:
        problems += _production_problems(prod, users, tools, talent, ip)
    users_by_name = {u.name for u in config.users}
    for i, net in enumerate(config.settings.networks):
        if net.production not in productions:
            problems.append(
                (("settings", "gateway", ("networks", i, "production")),
                 f"production {net.production!r} is not defined")
            )
        if net.anonymous_user is not None and net.anonymous_user not in users_by_name:
            problems.append(
                (("settings", "gateway", ("networks", i, "anonymous_user")),
                 f"user {net.anonymous_user!r} is not defined; add it to users.yaml (it names who the "
                 "network's requests are recorded as)")
            )
    return problems


def _dups(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    dups: set[str] = set()
    for i in ids:
        (dups if i in seen else seen).add(i)
    return sorted(dups)


def _production_problems(
    prod: Production, users: set[str], tools: dict[str, Tool], talent: set[str], ip: set[str]
) -> list[tuple[Locator, str]]:
    def at(*path: str | int) -> Locator:
        return ("production", prod.id, path)

    problems = [
        (at("approvers", i), f"approver {a!r} is not a defined user; add it to users.yaml")
        for i, a in enumerate(prod.approvers)
        if a not in users
    ]
    for tool_id, grant in prod.tools.items():
        tool = tools.get(tool_id)
        if tool is None:
            problems.append((at("tools", tool_id), f"tool {tool_id!r} is not in the tool catalog "
                             "(`greenroom tools list` shows the ids)"))
            continue
        if grant.tenant and tool.tenant is None:
            problems.append((at("tools", tool_id, "tenant"),
                             f"tool {tool_id} has no tenant pinning; remove `tenant`"))
        if tool.tenant and tool.tenant.required and not grant.tenant:
            problems.append((at("tools", tool_id), f"tool {tool_id} must be pinned to the studio's tenant; "
                             f"set `tenant` (sent as {tool.tenant.header})"))
    problems += [
        (at("consents", i, "talent"), f"talent {c.talent!r} is not in the registry (registry/talent/)")
        for i, c in enumerate(prod.consents)
        if c.talent not in talent
    ]
    problems += [
        (at("licensed_ip", i), f"IP {x!r} is not in the registry (registry/ip/)")
        for i, x in enumerate(prod.licensed_ip)
        if x not in ip
    ]
    return problems
