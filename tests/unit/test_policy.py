"""gateway/policy.py and gateway/decision.py: access reasons, next steps and precedence."""

from __future__ import annotations

import pytest

from gateway.config import load_tool_catalog
from gateway.config.models import Action, Capability, Production, Role, ToolGrant
from gateway.decision import Decision, Reason, combine
from gateway.identity import Principal
from gateway.policy import NEXT_STEPS, access_reasons, decide, next_step
from gateway.tools.catalog import Catalog

ALICE = Principal("alice", Role.STAFF, "nightfall", "proxy_auth")


def production(unknown: Action = Action.NOTIFY, **tools: ToolGrant) -> Production:
    return Production(id="nightfall", name="Nightfall", kind="scripted", tools=tools,
                      unknown_endpoint_action=unknown)


OPEN = production(**{"openai-api": ToolGrant(), "chatgpt-web": ToolGrant()})
CHAT_ONLY = production(**{"openai-api": ToolGrant(capabilities=[Capability.CHAT])})


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(load_tool_catalog())


@pytest.mark.parametrize(
    ("prod", "host", "method", "path", "expected"),
    [
        (OPEN, "api.openai.com", "POST", "/v1/chat/completions", []),
        (OPEN, "api.openai.com", "GET", "/v1/models", []),
        (production(), "api.openai.com", "POST", "/v1/chat/completions", [("tool.unapproved", Action.BLOCK)]),
        (OPEN, "api.anthropic.com", "POST", "/v1/messages", [("tool.unapproved", Action.BLOCK)]),
        (OPEN, "chatgpt.com", "POST", "/backend-anon/conversation", [("tool.consumer_endpoint", Action.BLOCK)]),
        (production(), "chatgpt.com", "POST", "/backend-anon/conversation",
         [("tool.consumer_endpoint", Action.BLOCK)]),
        (CHAT_ONLY, "api.openai.com", "POST", "/v1/chat/completions", []),
        (CHAT_ONLY, "api.openai.com", "POST", "/v1/images/generations",
         [("tool.capability_unapproved", Action.BLOCK)]),
        (OPEN, "api.openai.com", "POST", "/v1/traces/ingest", [("retention.trace_ingest", Action.BLOCK)]),
        (OPEN, "api.openai.com", "POST", "/v1/fine_tuning/jobs", [("retention.training", Action.BLOCK)]),
        (OPEN, "api.openai.com", "POST", "/v1/conversations", [("retention.server_state", Action.BLOCK)]),
        (OPEN, "chatgpt.com", "POST", "/ces/v1/t", [("retention.telemetry", Action.BLOCK)]),
        (CHAT_ONLY, "api.openai.com", "POST", "/v1/fine_tuning/jobs",
         [("tool.capability_unapproved", Action.BLOCK), ("retention.training", Action.BLOCK)]),
        (OPEN, "api.openai.com", "POST", "/v2/new-thing", [("tool.unlisted_endpoint", Action.NOTIFY)]),
        (production(Action.BLOCK, **{"openai-api": ToolGrant()}), "api.openai.com", "PUT", "/v2/new-thing",
         [("tool.unlisted_endpoint", Action.BLOCK)]),
        (production(Action.HOLD, **{"openai-api": ToolGrant()}), "api.openai.com", "DELETE", "/v2/new-thing",
         [("tool.unlisted_endpoint", Action.HOLD)]),
        (production(Action.ALLOW, **{"openai-api": ToolGrant()}), "api.openai.com", "POST", "/v2/new-thing", []),
        (production(Action.BLOCK, **{"openai-api": ToolGrant()}), "api.openai.com", "GET", "/v2/new-thing", []),
        (production(Action.BLOCK, **{"openai-api": ToolGrant()}), "api.openai.com", "head", "/v2/new-thing", []),
        (CHAT_ONLY, "api.openai.com", "POST", "/v2/new-thing",
         [("tool.capability_unapproved", Action.BLOCK), ("tool.unlisted_endpoint", Action.NOTIFY)]),
    ],
)
def test_access_reasons(
    catalog: Catalog, prod: Production, host: str, method: str, path: str, expected: list[tuple[str, Action]]
) -> None:
    """Who asks, which tool and which endpoint give these rule ids and actions, before any body is read."""
    classification = catalog.classify(host, method, path)
    assert classification is not None
    reasons = access_reasons(ALICE, prod, classification, method)
    assert [(r.rule, r.action) for r in reasons] == expected
    assert all(r.entity == classification.tool.id for r in reasons)


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        (Principal("carol", Role.STAFF, None, "proxy_auth", "user carol is not assigned to any production"),
         "user carol is not assigned to any production"),
        (Principal("dave", Role.STAFF, None, "token"), "user dave has no production"),
    ],
)
def test_no_production_blocks_first(catalog: Catalog, principal: Principal, message: str) -> None:
    """Without a production nothing else is checked: identity.no_production, with the principal's problem."""
    classification = catalog.classify("chatgpt.com", "POST", "/backend-anon/conversation")
    assert classification is not None
    reasons = access_reasons(principal, None, classification, "POST")
    assert [(r.rule, r.action, r.message) for r in reasons] == [("identity.no_production", Action.BLOCK, message)]


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ([], Action.ALLOW),
        ([Action.ALLOW], Action.ALLOW),
        ([Action.NOTIFY, Action.ALLOW], Action.NOTIFY),
        ([Action.NOTIFY, Action.REDACT], Action.REDACT),
        ([Action.REDACT, Action.HOLD, Action.NOTIFY], Action.HOLD),
        ([Action.HOLD, Action.BLOCK, Action.REDACT], Action.BLOCK),
        ([Action.BLOCK, Action.ALLOW], Action.BLOCK),
        ([Action.HOLD, Action.HOLD], Action.HOLD),
    ],
)
def test_precedence(actions: list[Action], expected: Action) -> None:
    """block > hold > redact > notify > allow; every reason is kept, in order."""
    reasons = [Reason(f"rule.r{i}", a) for i, a in enumerate(actions)]
    decision = combine(reasons)
    assert decision.action == expected
    assert decision.reasons == tuple(reasons)
    assert decision.stops is (expected in (Action.HOLD, Action.BLOCK))
    assert decision.deciding == tuple(r for r in reasons if r.action == expected)
    assert decide(reasons[:1], reasons[1:]) == decision


def test_decision_helpers() -> None:
    """Decision.allow/of and rules are thin views over combine."""
    reasons = [Reason("pii.email", Action.NOTIFY), Reason("likeness.face", Action.HOLD)]
    assert Decision.allow() == Decision(Action.ALLOW, ())
    assert Decision.of(reasons) == combine(reasons)
    assert Decision.of(reasons).rules == ("pii.email", "likeness.face")


def test_reason_as_dict_omits_empty_fields() -> None:
    """Reason.as_dict holds only what was set; scores are rounded."""
    assert Reason("pii.email", Action.NOTIFY).as_dict() == {"rule": "pii.email", "action": "notify"}
    assert Reason("likeness.face", Action.HOLD, entity="talent-1", location="body.messages[0]", score=0.912345,
                  detector="face").as_dict() == {
        "rule": "likeness.face", "action": "hold", "entity": "talent-1", "location": "body.messages[0]",
        "detector": "face", "score": 0.9123,
    }


@pytest.mark.parametrize(
    ("rule", "message", "expected"),
    [
        ("tool.unapproved", "", NEXT_STEPS["tool.unapproved"]),
        ("tool.unapproved", "Use the studio's Claude instead.", "Use the studio's Claude instead."),
        ("gateway.something_new", "", NEXT_STEPS["gateway.error"]),
        ("likeness.face", "", "Contact your production's AI lead."),
    ],
)
def test_next_step(rule: str, message: str, expected: str) -> None:
    """A rule's own message wins, then its entry, then its family's `.error` entry, then a default."""
    assert next_step(rule, message) == expected


def test_every_access_rule_has_a_next_step(catalog: Catalog) -> None:
    """Every rule access_reasons or the catalog's block_rules can produce has a specific next step."""
    rules = {"identity.no_production", "tool.unapproved", "tool.capability_unapproved", "tool.consumer_endpoint",
             "tool.unlisted_endpoint"}
    rules |= {e.block_rule for t in catalog.tools for e in t.endpoints if e.block_rule}
    missing = sorted(r for r in rules if r not in NEXT_STEPS)
    assert missing == []


def _refused_endpoints() -> list[tuple[str, str, str]]:
    return [(t.hosts[0], t.id, e.id) for t in load_tool_catalog() for e in t.endpoints
            if (e.block_rule or e.consumer) and e.block_message]


@pytest.mark.parametrize(("host", "tool_id", "endpoint_id"), _refused_endpoints())
def test_endpoint_block_message_reaches_the_user(catalog: Catalog, host: str, tool_id: str, endpoint_id: str) -> None:
    """An endpoint's `block_message` ("what the user should do instead") is in what the user is told.

    The refusal shows the deciding reason's message as the summary and `next_step(rule, advice)` as the next step.
    """
    tool = next(t for t in catalog.tools if t.id == tool_id)
    endpoint = next(e for e in tool.endpoints if e.id == endpoint_id)
    classification = catalog.classify(host, endpoint.methods[0], endpoint.path.replace("/**", "/x")
                                      .replace("{version}", "v1beta").replace("{", "").replace("}", ""))
    assert classification is not None and classification.endpoint_id == endpoint_id
    granted = production(**{tool_id: ToolGrant()})
    reasons = access_reasons(ALICE, granted, classification, endpoint.methods[0])
    assert reasons
    told = " ".join(f"{r.message} {next_step(r.rule, r.advice)}" for r in reasons)
    assert " ".join(endpoint.block_message.split()) in " ".join(told.split())
