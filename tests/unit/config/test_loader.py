"""Loading configuration directories (gateway/config/loader.py).

The shipped directories (config/demo, config/example) load; the demo matches CONTRACT.md's tables;
the example documents every option of every model. A bad directory fails with one
`file:line: path: message` line per problem, all problems at once, with the line of the offending
key, and without echoing secret values. `greenroom config check|schema` wrap it for the command line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import struct
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from gateway import cli
from gateway.config import load_config
from gateway.config.models import (
    Action,
    AdminSettings,
    AuditSettings,
    ConfidentialTerm,
    Consent,
    Endpoint,
    GatewaySettings,
    HeaderRemove,
    HeaderSet,
    IntellectualProperty,
    JsonRemove,
    JsonSet,
    Limits,
    NetworkMapping,
    PersonalDataPolicy,
    Production,
    QuerySet,
    Role,
    Talent,
    TenantPin,
    Tool,
    ToolGrant,
    User,
)
from gateway.errors import ConfigError
from gateway.passwords import hash_token, verify_password

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "demo"
EXAMPLE = ROOT / "config" / "example"

# A fixed, valid scrypt hash (of "example-only-change-me"); hashing in every test would be slow.
HASH = "scrypt$14$8$1$wbcXr7Z4wjNJDOgHzKDSDA==$+IJYG7V9rCrHbRh9gQgXnpZAjLoullB0cxeL9pbf/4U="

# The smallest directory that exercises every file kind and every cross reference. Line numbers in
# the cases below count lines of these texts (1-based).
USERS = f"""\
users:
  - name: ana
    password_hash: {HASH}
    productions: [film]
"""
PRODUCTION = """\
id: film
name: Film
kind: scripted
tools:
  openai-api:
    tenant: org-film
consents:
  - talent: tal
    scopes: [likeness]
"""
TALENT = """\
id: tal
name: Tal Example
photos: [face.png]
"""
GATEWAY = """\
listen_port: 8080
networks:
  - cidr: 10.20.0.0/16
    production: film
"""
BASE: dict[str, str | None] = {
    "gateway.yaml": GATEWAY,
    "users.yaml": USERS,
    "productions/film.yaml": PRODUCTION,
    "registry/talent/tal/talent.yaml": TALENT,
    "registry/talent/tal/face.png": "not really a png; the loader only checks that it exists",
}


def make_dir(root: Path, changes: dict[str, str | None] | None = None) -> Path:
    """Write BASE, with `changes` applied (file → new text, or None to leave the file out)."""
    files = {**BASE, **(changes or {})}
    for relative, text in files.items():
        if text is None:
            continue
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def problems_of(root: Path) -> list[str]:
    """The problem lines of loading `root`, with the directory prefix removed."""
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    return [p.replace(f"{root}/", "") for p in caught.value.problems]


# --- the shipped directories ----------------------------------------------------------------------


@pytest.mark.parametrize("directory", [DEMO, EXAMPLE], ids=["demo", "example"])
def test_shipped_config_loads(directory: Path) -> None:
    """config/demo and config/example validate, including every cross reference and registry file."""
    loaded = load_config(directory)
    assert loaded.config.users and loaded.config.productions
    assert re.fullmatch(r"[0-9a-f]{64}", loaded.digest)


def test_minimal_directory_loads(tmp_path: Path) -> None:
    """The base directory the failure cases start from is itself valid (so each case tests one thing)."""
    config = load_config(make_dir(tmp_path)).config
    assert [u.name for u in config.users] == ["ana"]
    assert config.production("film") is not None


def test_digest_changes_with_content(tmp_path: Path) -> None:
    """The digest covers file contents: editing any file changes it."""
    root = make_dir(tmp_path)
    before = load_config(root).digest
    (root / "productions" / "film.yaml").write_text(PRODUCTION + "retention_days: 30\n")
    assert load_config(root).digest != before


DEMO_USERS = [
    # name, password, role, productions
    ("alice", "alice-demo", Role.STAFF, ["northern-lights"]),
    ("bob", "bob-demo", Role.STAFF, ["harbor-nights"]),
    ("carol", "carol-demo", Role.REVIEWER, []),
    ("dave", "dave-demo", Role.APPROVER, ["harbor-nights"]),
    ("erin", "erin-demo", Role.APPROVER, ["northern-lights"]),
]


@pytest.fixture(scope="module")
def demo():
    return load_config(DEMO).config


@pytest.mark.parametrize(("name", "password", "role", "productions"), DEMO_USERS)
def test_demo_users_match_contract(
    demo, name: str, password: str, role: Role, productions: list[str]
) -> None:
    """CONTRACT.md's demo users: role, production and the published demo password."""
    user = demo.user(name)
    assert user is not None
    assert (user.role, user.productions) == (role, productions)
    assert verify_password(password, user.password_hash)
    assert not verify_password(password + "x", user.password_hash)


@pytest.mark.parametrize(
    ("name", "tokens"),
    [("alice", ["grt_demo_alice"]), ("bob", ["grt_demo_bob"]), ("carol", []), ("dave", [])],
)
def test_demo_reverse_tokens(demo, name: str, tokens: list[str]) -> None:
    """alice and bob have the demo reverse-mode tokens; nobody else has one."""
    assert demo.user(name).token_hashes == [hash_token(t) for t in tokens]


@pytest.mark.parametrize(
    ("production", "tool", "tenant"),
    [
        ("northern-lights", "openai-api", "org-northernlights-demo"),
        ("northern-lights", "anthropic-api", "8f7c2a10-0000-4000-8000-00000000a11c"),
        ("northern-lights", "gemini-api", "not approved"),
        ("northern-lights", "elevenlabs-api", "not approved"),
        ("harbor-nights", "openai-api", "org-harbornights-demo"),
        ("harbor-nights", "anthropic-api", "not approved"),
        ("harbor-nights", "gemini-api", "not approved"),
        ("harbor-nights", "elevenlabs-api", None),
    ],
)
def test_demo_tool_approvals_match_contract(demo, production: str, tool: str, tenant: str | None) -> None:
    """CONTRACT.md's tool table: which production approves which tool, pinned to which tenant."""
    grants = demo.production(production).tools
    if tenant == "not approved":
        assert tool not in grants
    else:
        assert grants[tool].tenant == tenant
        assert grants[tool].capabilities is None


def test_demo_policies_match_contract(demo) -> None:
    """harbor-nights redacts personal data and its secrets; northern-lights holds personal data."""
    harbor, northern = demo.production("harbor-nights"), demo.production("northern-lights")
    assert (harbor.kind, northern.kind) == ("scripted", "documentary")
    assert (harbor.approvers, northern.approvers) == (["dave"], ["erin"])
    assert harbor.personal_data == PersonalDataPolicy(action=Action.REDACT, kinds=["email", "phone"])
    assert northern.personal_data.action is Action.HOLD
    assert [(t.term, t.kind, t.action) for t in harbor.confidential_terms] == [
        ("Project Lantern", "title", Action.REDACT),
        ("Mara Quell", "character", Action.REDACT),
    ]
    [consent] = harbor.consents
    assert (consent.talent, consent.scopes, consent.until) == (
        "eileen-collins",
        ["likeness"],
        dt.date(2027, 12, 31),
    )
    assert consent.document
    assert northern.consents == []
    assert harbor.licensed_ip == northern.licensed_ip == []


def test_demo_registry_matches_contract(demo) -> None:
    """Talent eileen-collins with a real PNG photo; IP blue-meridian with a 600x900-ish PNG poster."""
    [talent] = demo.registry.talent
    assert (talent.id, talent.name, talent.photos) == ("eileen-collins", "Eileen Collins", ["reference.png"])
    [ip] = demo.registry.ip
    assert (ip.id, ip.title, ip.characters, ip.images) == (
        "blue-meridian",
        "Blue Meridian",
        ["Captain Ysolde Varga"],
        ["poster.png"],
    )
    photo = (DEMO / "registry" / "talent" / "eileen-collins" / "reference.png").read_bytes()
    poster = (DEMO / "registry" / "ip" / "blue-meridian" / "poster.png").read_bytes()
    # skimage.data.astronaut(), byte for byte (provenance in the README next to it)
    assert hashlib.sha256(photo).hexdigest() == ASTRONAUT_SHA256
    assert png_size(photo) == (512, 512)
    assert png_size(poster) == (600, 900)


ASTRONAUT_SHA256 = "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_demo_settings_match_contract(demo) -> None:
    """Ports and URLs that `make run` prints and the contract promises."""
    s = demo.settings
    assert (s.listen_host, s.listen_port, s.reverse_port) == ("127.0.0.1", 8080, 8443)
    assert (s.admin.host, s.admin.port) == ("127.0.0.1", 9090)
    assert s.limits.max_body_bytes == 32 * 1024 * 1024
    assert s.review_url == "http://127.0.0.1:8700"
    assert s.audit.store == "sqlite"


DOCUMENTED_MODELS: list[type[BaseModel]] = [
    GatewaySettings, AdminSettings, Limits, NetworkMapping, AuditSettings,
    User,
    Production, ToolGrant, PersonalDataPolicy, ConfidentialTerm, Consent,
    Tool, TenantPin, Endpoint, JsonSet, JsonRemove, QuerySet, HeaderSet, HeaderRemove,
    Talent, IntellectualProperty,
]  # fmt: skip


@pytest.mark.parametrize("model", DOCUMENTED_MODELS, ids=lambda m: m.__name__)
def test_example_shows_every_option(model: type[BaseModel]) -> None:
    """Every field of every config model appears in config/example as `field:` (set or commented).

    Adding a field to a model without documenting it in the example fails here.
    """
    text = "\n".join(p.read_text() for p in EXAMPLE.rglob("*.yaml"))
    missing = [name for name in model.model_fields if not re.search(rf"(?<![\w-]){name}:", text)]
    assert missing == []
    if "kind" in model.model_fields and model in (JsonSet, JsonRemove, QuerySet, HeaderSet, HeaderRemove):
        assert f"kind: {model.model_fields['kind'].annotation.__args__[0]}" in text


def test_example_adds_an_in_house_tool() -> None:
    """tools/<id>.yaml adds to the packaged catalog, and a production can approve the new tool."""
    config = load_config(EXAMPLE).config
    tools = {t.id for t in config.tools}
    assert "studio-llm" in tools and {"openai-api", "anthropic-api", "elevenlabs-api", "gemini-api"} <= tools
    assert "studio-llm" in config.production("example-feature").tools


# --- bad directories: one problem each ------------------------------------------------------------

BAD_CASES = [
    # id, {file: new text}, expected problem line (after the directory prefix)
    (
        "unknown-key",
        {"productions/film.yaml": PRODUCTION.replace("    tenant:", "    tennant:")},
        "productions/film.yaml:6: tools.openai-api.tennant: unknown key; remove it or fix its spelling",
    ),
    (
        "missing-required-field",
        {"productions/film.yaml": PRODUCTION.replace("kind: scripted\n", "")},
        "productions/film.yaml:1: kind: required; add it",
    ),
    (
        "missing-required-nested",
        {"productions/film.yaml": PRODUCTION.replace("    scopes: [likeness]\n", "")},
        "productions/film.yaml:8: consents[0].scopes: required; add it",
    ),
    (
        "wrong-type",
        {"productions/film.yaml": PRODUCTION + "retention_days: a while\n"},
        "productions/film.yaml:10: retention_days: Input should be a valid integer, "
        "unable to parse string as an integer",
    ),
    (
        "wrong-type-list",
        {"productions/film.yaml": PRODUCTION + "approvers: ana\n"},
        "productions/film.yaml:10: approvers: Input should be a valid list",
    ),
    (
        "out-of-range",
        {"gateway.yaml": GATEWAY.replace("8080", "80800")},
        "gateway.yaml:1: listen_port: Input should be less than or equal to 65535",
    ),
    (
        "bad-enum",
        {"productions/film.yaml": PRODUCTION.replace("scripted", "musical")},
        "productions/film.yaml:3: kind: Input should be 'scripted', 'documentary', 'unscripted', "
        "'animation' or 'commercial'",
    ),
    (
        "duplicate-key",
        {"productions/film.yaml": PRODUCTION + "name: Film Again\n"},
        "productions/film.yaml:10: name: key appears twice (first on line 2); keep one",
    ),
    (
        "duplicate-nested-key",
        {
            "productions/film.yaml": PRODUCTION.replace(
                "    tenant: org-film\n", "    tenant: a\n    tenant: b\n"
            )
        },
        "productions/film.yaml:7: tools.openai-api.tenant: key appears twice (first on line 6); keep one",
    ),
    (
        "plain-text-password",
        {"users.yaml": USERS.replace(HASH, "correct-horse")},
        "users.yaml:3: users[0].password_hash: must be a scrypt hash, not a plain password; "
        "create one with `greenroom config hash-password`",
    ),
    (
        "token-not-hashed",
        {"users.yaml": USERS + "    token_hashes: [grt_live_token]\n"},
        "users.yaml:5: users[0].token_hashes: token hashes are 64 lower-case hex digits "
        "from `greenroom config hash-token`",
    ),
    (
        "unknown-tool",
        {"productions/film.yaml": PRODUCTION.replace("openai-api:\n    tenant: org-film", "midjourney-web:")},
        "productions/film.yaml:5: tools.midjourney-web: tool 'midjourney-web' is not in the tool catalog "
        "(`greenroom tools list` shows the ids)",
    ),
    (
        "tenant-on-unpinned-tool",
        {"productions/film.yaml": PRODUCTION.replace("openai-api:", "elevenlabs-api:")},
        "productions/film.yaml:6: tools.elevenlabs-api.tenant: tool elevenlabs-api has no tenant pinning; "
        "remove `tenant`",
    ),
    (
        "unknown-production-of-user",
        {"users.yaml": USERS.replace("[film]", "[film, flim]")},
        "users.yaml:4: users[0].productions[1]: production 'flim' is not defined; "
        "add productions/flim.yaml or fix the name",
    ),
    (
        "unknown-approver",
        {"productions/film.yaml": PRODUCTION + "approvers: [zed]\n"},
        "productions/film.yaml:10: approvers[0]: approver 'zed' is not a defined user; add it to users.yaml",
    ),
    (
        "unknown-consent-talent",
        {"productions/film.yaml": PRODUCTION.replace("talent: tal", "talent: tol")},
        "productions/film.yaml:8: consents[0].talent: talent 'tol' is not in the registry (registry/talent/)",
    ),
    (
        "unknown-licensed-ip",
        {"productions/film.yaml": PRODUCTION + "licensed_ip: [blue-meridian]\n"},
        "productions/film.yaml:10: licensed_ip[0]: IP 'blue-meridian' is not in the registry (registry/ip/)",
    ),
    (
        "unknown-network-production",
        {"gateway.yaml": GATEWAY.replace("production: film", "production: flim")},
        "gateway.yaml:4: networks[0].production: production 'flim' is not defined",
    ),
    (
        "missing-registry-file",
        {"registry/talent/tal/face.png": None},
        "registry/talent/tal/talent.yaml:3: photos[0]: file 'face.png' does not exist; "
        "add it next to the YAML file or remove the entry",
    ),
    (
        "invalid-yaml-flow",
        {"productions/film.yaml": "id: film\nname: [Film\nkind: scripted\n"},
        "productions/film.yaml:3: not valid YAML: expected ',' or ']', but got ':'; "
        "check indentation and quoting",
    ),
    (
        "invalid-yaml-indent",
        {"productions/film.yaml": "id: film\nname: Film\n  kind: scripted\n"},
        "productions/film.yaml:3: not valid YAML: mapping values are not allowed here; "
        "check indentation and quoting",
    ),
    (
        "invalid-yaml-tab",
        {"productions/film.yaml": "id: film\n\tname: Film\n"},
        "productions/film.yaml:2: not valid YAML: found character '\\t' that cannot start any token; "
        "check indentation and quoting",
    ),
    (
        "id-not-file-name",
        {"productions/film.yaml": PRODUCTION.replace("id: film", "id: movie")},
        "productions/film.yaml:1: id: 'movie' does not match its file name; "
        "name the file after the id ('film')",
    ),
    (
        "id-not-directory-name",
        {"registry/talent/tal/talent.yaml": TALENT.replace("id: tal", "id: tally")},
        "registry/talent/tal/talent.yaml:1: id: 'tally' does not match its file name; "
        "name the file after the id ('tal')",
    ),
    (
        "invalid-cidr",
        {"gateway.yaml": GATEWAY.replace("10.20.0.0/16", "10.20.0.300/16")},
        "gateway.yaml:3: networks[0].cidr: not a network in CIDR form (e.g. 10.0.0.0/8): "
        "'10.20.0.300/16' does not appear to be an IPv4 or IPv6 network",
    ),
    (
        "users-file-shape",
        {"users.yaml": "user:\n  - name: ana\n"},
        "users.yaml:1: expected a mapping with a single key `users:` holding a list",
    ),
    (
        "in-house-tool-invalid",
        {"tools/in-house.yaml": "id: in-house\nname: In House\nkind: api\nhosts: []\nerror_format: openai\n"},
        "tools/in-house.yaml:4: hosts: List should have at least 1 item after validation, not 0",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_config_reports_file_line_path(
    tmp_path: Path, changes: dict[str, str | None], expected: str
) -> None:
    """Each broken directory fails with exactly one `file:line: path: message` naming the right line."""
    assert problems_of(make_dir(tmp_path, changes)) == [expected]


def test_config_error_message_is_one_line_per_problem(tmp_path: Path) -> None:
    """str(ConfigError) is what `greenroom config check` prints: the problem lines, joined."""
    root = make_dir(tmp_path, {"users.yaml": USERS.replace(HASH, "plain-password")})
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert str(caught.value) == "\n".join(caught.value.problems)
    assert all(re.match(rf"{re.escape(str(root))}/\S+:\d+: ", p) for p in caught.value.problems)


def test_not_a_directory(tmp_path: Path) -> None:
    """A path that is not a directory is one clear problem, not a traceback."""
    with pytest.raises(ConfigError, match="not a directory"):
        load_config(tmp_path / "nope")


# --- several problems at once ---------------------------------------------------------------------


def test_validation_problems_in_several_files_reported_together(tmp_path: Path) -> None:
    """Field problems in gateway.yaml, users.yaml and a production all come back in one error."""
    root = make_dir(
        tmp_path,
        {
            "gateway.yaml": GATEWAY.replace("8080", "99999"),
            "users.yaml": USERS.replace(HASH, "plain"),
            "productions/film.yaml": PRODUCTION.replace("    tenant:", "    tennant:")
            + "retention_days: 0\n",
        },
    )
    assert problems_of(root) == [
        "gateway.yaml:1: listen_port: Input should be less than or equal to 65535",
        "users.yaml:3: users[0].password_hash: must be a scrypt hash, not a plain password; "
        "create one with `greenroom config hash-password`",
        "productions/film.yaml:6: tools.openai-api.tennant: unknown key; remove it or fix its spelling",
        "productions/film.yaml:10: retention_days: Input should be greater than or equal to 1",
    ]


def test_reference_problems_reported_together(tmp_path: Path) -> None:
    """Unresolved references across files come back together, each at its own line."""
    root = make_dir(
        tmp_path,
        {
            "users.yaml": USERS.replace("[film]", "[flim]"),
            "productions/film.yaml": PRODUCTION.replace("talent: tal", "talent: tol") + "approvers: [zed]\n",
        },
    )
    assert problems_of(root) == [
        "users.yaml:4: users[0].productions[0]: production 'flim' is not defined; "
        "add productions/flim.yaml or fix the name",
        "productions/film.yaml:10: approvers[0]: approver 'zed' is not a defined user; add it to users.yaml",
        "productions/film.yaml:8: consents[0].talent: talent 'tol' is not in the registry (registry/talent/)",
    ]


def test_broken_files_do_not_hide_other_files(tmp_path: Path) -> None:
    """An unparsable file, a duplicate key and a missing registry file are all reported together."""
    root = make_dir(
        tmp_path,
        {
            "users.yaml": USERS + "    role: staff\n    role: admin\n",
            "productions/film.yaml": "id: film\nname: [Film\n",
            "registry/talent/tal/face.png": None,
        },
    )
    assert problems_of(root) == [
        "users.yaml:6: users[0].role: key appears twice (first on line 5); keep one",
        "productions/film.yaml:3: not valid YAML: expected ',' or ']', but got '<stream end>'; "
        "check indentation and quoting",
        "registry/talent/tal/talent.yaml:3: photos[0]: file 'face.png' does not exist; "
        "add it next to the YAML file or remove the entry",
    ]


def test_duplicate_user_names(tmp_path: Path) -> None:
    """A user defined twice is reported at the second definition."""
    root = make_dir(tmp_path, {"users.yaml": USERS + USERS.removeprefix("users:\n")})
    assert problems_of(root) == ["users.yaml:5: users[1]: user 'ana' is defined more than once; keep one"]


# --- secrets never echoed -------------------------------------------------------------------------

SECRET_CASES = [
    # id, users.yaml password_hash value as YAML, the secret that must not appear
    ("plain-string", "hunter2-Secret-77", "hunter2-Secret-77"),
    ("wrong-type-int", "8675309123", "8675309123"),
    ("wrong-type-list", "[s3cr3t-in-a-list]", "s3cr3t-in-a-list"),
    ("wrong-type-mapping", "{password: s3cr3t-in-a-map}", "s3cr3t-in-a-map"),
    ("near-miss-prefix", "scryptPa55word", "scryptPa55word"),
]


@pytest.mark.parametrize(
    ("yaml_value", "secret"), [c[1:] for c in SECRET_CASES], ids=[c[0] for c in SECRET_CASES]
)
def test_errors_never_echo_a_password_value(tmp_path: Path, yaml_value: str, secret: str) -> None:
    """The loader's message for a bad password_hash names the field but never its value."""
    root = make_dir(tmp_path, {"users.yaml": USERS.replace(HASH, yaml_value)})
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    text = str(caught.value).replace(str(root), "<dir>").replace("`greenroom config hash-password`", "")
    assert "users[0].password_hash" in text
    assert secret not in text


def test_errors_never_echo_a_token_value(tmp_path: Path) -> None:
    """A plain reverse-mode token pasted where its hash belongs is not echoed."""
    root = make_dir(tmp_path, {"users.yaml": USERS + "    token_hashes: [grt_s3cr3t_live_token]\n"})
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert "grt_s3cr3t_live_token" not in str(caught.value)


@pytest.mark.parametrize("value", [8675309123, ["s3cr3t"], {"k": "s3cr3t"}, "s3cr3t-plain"])
def test_model_hides_input_in_validation_errors(value: object) -> None:
    """Even pydantic's own ValidationError text (outside the loader) does not include the input."""
    with pytest.raises(ValidationError) as caught:
        User.model_validate({"name": "ana", "password_hash": value})
    text = str(caught.value)
    assert "password_hash" in text
    assert "s3cr3t" not in text and "8675309123" not in text


# --- formerly known gaps, now enforced -------------------------------------------------------------


def test_network_anonymous_user_must_be_defined(tmp_path: Path) -> None:
    """A network's anonymous_user that is not in users.yaml is reported at its line."""
    root = make_dir(tmp_path, {"gateway.yaml": GATEWAY + "    anonymous_user: ghost\n"})
    assert [p for p in problems_of(root) if p.startswith("gateway.yaml:5: networks[0].anonymous_user: ")]


def test_password_hash_must_be_a_whole_scrypt_hash(tmp_path: Path) -> None:
    """`scrypt$` followed by a plain password is not a hash and is rejected."""
    root = make_dir(tmp_path, {"users.yaml": USERS.replace(HASH, "scrypt$hunter2")})
    assert problems_of(root)[0].startswith("users.yaml:3: users[0].password_hash: ")


# --- the command line -----------------------------------------------------------------------------


def test_config_check_passes_on_demo(capsys: pytest.CaptureFixture[str]) -> None:
    """`greenroom config check config/demo` exits 0 and summarizes what it loaded."""
    assert cli.main(["config", "check", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert re.search(r": OK: 5 users, 2 productions, \d+ tools, 1 talent, 1 IP \(digest [0-9a-f]{12}\)", out)


def test_config_check_fails_on_bad_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a bad directory it exits 2 and prints every problem as file:line on stderr."""
    root = make_dir(
        tmp_path,
        {
            "users.yaml": USERS.replace(HASH, "plain"),
            "productions/film.yaml": PRODUCTION + "kind: animation\n",
        },
    )
    assert cli.main(["config", "check", str(root)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{root}/users.yaml:3: users[0].password_hash:" in captured.err
    assert f"{root}/productions/film.yaml:10: kind: key appears twice" in captured.err


@pytest.mark.parametrize("kind", ["all", "gateway", "users", "production", "tool", "talent", "ip"])
def test_config_schema_prints_json_schema(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`greenroom config schema KIND` prints a JSON Schema whose every $ref resolves."""
    assert cli.main(["config", "schema", kind]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object"
    assert schema["properties"]
    assert schema.get("additionalProperties") is False
    defs = schema.get("$defs", {})
    refs = re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(schema))
    assert all(ref in defs for ref in refs)
    for definition in defs.values():
        if definition.get("type") == "object":
            assert definition.get("additionalProperties") is False


def test_config_schema_documents_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """Field descriptions reach the schema, so editors show them."""
    cli.main(["config", "schema", "production"])
    schema = json.loads(capsys.readouterr().out)
    assert "approved tools" in schema["properties"]["tools"]["description"]
