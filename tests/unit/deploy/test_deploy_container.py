"""deploy/container and deploy/compose.yaml, checked statically (no container engine here).

The Dockerfile is parsed instruction by instruction; compose.yaml is loaded as YAML and its
structure checked. Every `greenroom ...` command line they run is parsed by the real CLI parser,
so a renamed flag fails here rather than in a rollout.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import assert_cli_parses, pinned

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "container" / "Dockerfile"
DRAIN_SECONDS = 25


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def stages(parsed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in parsed:
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE)


def test_base_images_are_pinned_python_312_slim(dockerfile: list[tuple[str, str]]) -> None:
    """Every FROM resolves (ARG defaults) to a pinned python:3.12-slim image or an earlier stage."""
    args = dict(a.split("=", 1) for kind, a in dockerfile if kind == "ARG" and "=" in a)
    names: set[str] = set()
    froms = [a for kind, a in dockerfile if kind == "FROM"]
    assert len(froms) >= 2, "multi-stage: build and runtime"
    for spec in froms:
        parts = spec.split()
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], parts[0])
        if image not in names:
            assert pinned(image), image
            assert image.startswith("python:3.12-slim"), image
        if len(parts) == 3 and parts[1].upper() == "AS":
            names.add(parts[2])


def test_runtime_stage_is_non_root_with_healthcheck(dockerfile: list[tuple[str, str]]) -> None:
    """The final stage runs as an unprivileged user, probes /healthz and exposes the three ports."""
    final = stages(dockerfile)[-1]
    users = [a for kind, a in final if kind == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("0", "root") and (not user.isdigit() or int(user) >= 1000)
    health = [a for kind, a in final if kind == "HEALTHCHECK"]
    assert len(health) == 1 and "CMD" in health[0] and "/healthz" in health[0] and ":9090" in health[0]
    exposed = {p for kind, a in final if kind == "EXPOSE" for p in a.split()}
    assert exposed == {"8080", "8443", "9090"}
    assert ("STOPSIGNAL", "SIGTERM") in final


def test_entrypoint_runs_greenroom_serve(dockerfile: list[tuple[str, str]]) -> None:
    """ENTRYPOINT greenroom + CMD serve …: and the real CLI accepts those flags."""
    final = stages(dockerfile)[-1]
    entrypoint = [a for kind, a in final if kind == "ENTRYPOINT"]
    cmd = [a for kind, a in final if kind == "CMD"]
    assert entrypoint == ['["greenroom"]']
    argv = yaml.safe_load(cmd[-1])
    assert argv[0] == "serve" and "--listen-host" in argv
    assert_cli_parses(argv)


def test_no_remote_add_and_copies_exist(dockerfile: list[tuple[str, str]]) -> None:
    """Nothing is fetched at build time by ADD; every COPY source exists in the repository."""
    assert not [a for kind, a in dockerfile if kind == "ADD"]
    for kind, args in dockerfile:
        if kind == "COPY" and not args.startswith("--from"):
            *sources, _dest = args.split()
            for source in sources:
                assert (REPO / source).exists(), source


def test_dockerignore_keeps_the_build_context_small() -> None:
    """Only the package, its metadata and the demo config are sent to the builder."""
    lines = (DEPLOY / "container" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in lines
    for kept in ("!pyproject.toml", "!gateway/", "!addons/", "!config/demo/"):
        assert kept in lines


# --- compose.yaml ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_services(compose: dict[str, Any]) -> None:
    """Gateway replicas, PostgreSQL, the review UI, a balancer and a one-shot init."""
    services = compose["services"]
    assert {"gateway", "postgres", "review", "balancer", "init"} <= set(services)
    assert services["gateway"]["deploy"]["replicas"] >= 2
    for name, service in services.items():
        assert pinned(service["image"]), f"{name}: {service['image']}"
        assert "restart" in service, name


def test_compose_gateways_share_postgres_and_drain(compose: dict[str, Any]) -> None:
    """Every Greenroom service uses the PostgreSQL audit store; gateways get longer than the drain."""
    services = compose["services"]
    for name in ("gateway", "review", "init"):
        env = services[name]["environment"]
        assert "@postgres:5432/" in env["GREENROOM_AUDIT_DSN"], name
        assert "GREENROOM_MASTER_KEY" in env, name
        assert services[name]["read_only"] is True
        assert services[name]["user"] == "10001:10001"
        assert services[name]["cap_drop"] == ["ALL"]
    gateway = services["gateway"]
    assert gateway["stop_signal"] == "SIGTERM"
    assert int(gateway["stop_grace_period"].rstrip("s")) > DRAIN_SECONDS
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["postgres"]


def test_compose_files_exist(compose: dict[str, Any]) -> None:
    """The build and every bind mount point at files in the repository."""
    build = compose["services"]["gateway"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            source = re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", source)
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source


def test_compose_commands_parse(compose: dict[str, Any]) -> None:
    """The greenroom command lines in compose.yaml are accepted by the real CLI."""
    services = compose["services"]
    for name in ("gateway", "review"):
        assert_cli_parses(services[name]["command"])
    for step in services["init"]["command"][0].split("&&"):
        argv = shlex.split(step)
        assert argv[0] == "greenroom"
        assert_cli_parses(argv[1:])


def test_haproxy_checks_readiness() -> None:
    """The balancer stops sending to a replica whose /readyz fails (draining, or not ready)."""
    cfg = (DEPLOY / "container" / "haproxy.cfg").read_text()
    assert cfg.count("option httpchk GET /readyz") == 2
    assert "check port 9090" in cfg


def test_no_configuration_is_baked_in(dockerfile: list[tuple[str, str]]) -> None:
    """The demo config (known passwords) is not the default: /etc/greenroom must be mounted."""
    final = stages(dockerfile)[-1]
    for kind, args in final:
        if kind == "COPY":
            assert not args.split()[-1].startswith("/etc/greenroom"), args
