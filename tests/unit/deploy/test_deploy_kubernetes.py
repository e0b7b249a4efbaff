"""deploy/kubernetes: every manifest validates against the Kubernetes JSON schemas, offline.

kubernetes-validate ships the schemas in its wheel; validation is strict (an unknown or misspelt
field fails). Then the pieces are checked against each other and against the gateway: probes on the
admin port, grace period longer than the drain, selectors that match, a ConfigMap that
`load_config` accepts, and the rendered kustomization (when kubectl is installed).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import assert_cli_parses

from gateway.config import load_config

K8S = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
K8S_VERSION = "1.30"
DRAIN_SECONDS = 25
MANIFESTS = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def find(kind: str, name: str) -> dict[str, Any]:
    for manifest in MANIFESTS:
        for doc in documents(manifest):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind}/{name} in deploy/kubernetes")


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_manifest_validates_against_kubernetes_schema(manifest: str) -> None:
    """Strict schema validation (the schemas ship inside the kubernetes-validate wheel)."""
    docs = documents(manifest)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_kustomization_lists_every_manifest_but_secrets() -> None:
    """Everything is applied by `kubectl apply -k`, except the Secret example (created out of band)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "greenroom"
    assert sorted(kustomization["resources"]) == sorted(m for m in MANIFESTS if m != "secret.example.yaml")
    for manifest in kustomization["resources"]:
        assert all(doc["kind"] != "Secret" for doc in documents(manifest)), manifest


@pytest.fixture(scope="module")
def gateway() -> dict[str, Any]:
    return find("Deployment", "greenroom")


def _container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def test_probes_use_the_admin_port(gateway: dict[str, Any]) -> None:
    """Readiness on /readyz, liveness and startup on /healthz, all on the admin port (9090)."""
    container = _container(gateway, "gateway")
    assert {"name": "admin", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}


def test_grace_period_covers_prestop_and_drain(gateway: dict[str, Any]) -> None:
    spec = gateway["spec"]["template"]["spec"]
    pre_stop = _container(gateway, "gateway")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] > int(pre_stop[1]) + DRAIN_SECONDS


@pytest.mark.parametrize(
    ("kind", "name"),
    [("Deployment", "greenroom"), ("Deployment", "greenroom-review"), ("Job", "greenroom-registry-build")],
)
def test_pods_are_restricted(kind: str, name: str) -> None:
    """Non-root, read-only root filesystem with an emptyDir /tmp, no capabilities, no API token."""
    spec = find(kind, name)["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] >= 10000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    for container in spec.get("initContainers", []) + spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert "memory" in container["resources"]["limits"]
        assert "cpu" in container["resources"]["requests"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        if container["name"] != "ca":
            assert "/tmp" in mounts
        for mount in container["volumeMounts"]:
            assert mount["name"] in volumes


def test_secrets_are_referenced_not_included(gateway: dict[str, Any]) -> None:
    """Master key and DSN from greenroom-secrets; the CA from the greenroom-ca TLS Secret; one chain per pod."""
    env = {e["name"]: e["valueFrom"] for e in _container(gateway, "gateway")["env"]}
    assert env["GREENROOM_MASTER_KEY"]["secretKeyRef"] == {"name": "greenroom-secrets", "key": "master-key"}
    assert env["GREENROOM_AUDIT_DSN"]["secretKeyRef"] == {"name": "greenroom-secrets", "key": "audit-dsn"}
    assert env["GREENROOM_REPLICA_ID"]["fieldRef"]["fieldPath"] == "metadata.name"
    volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
    assert volumes["ca"]["secret"]["secretName"] == "greenroom-ca"
    assert find("Secret", "greenroom-ca")["type"] == "kubernetes.io/tls"


def test_selectors_match_the_pods(gateway: dict[str, Any]) -> None:
    """Services, PDB and the gateway NetworkPolicy select the gateway pods; the HPA targets the Deployment."""
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert gateway["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for kind, name in [("Service", "greenroom"), ("Service", "greenroom-admin")]:
        assert find(kind, name)["spec"]["selector"].items() <= labels.items()
    assert find("PodDisruptionBudget", "greenroom")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert find("NetworkPolicy", "greenroom-gateway")["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    hpa = find("HorizontalPodAutoscaler", "greenroom")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "greenroom"}
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] > hpa["minReplicas"]


def test_network_policy_egress_and_admin() -> None:
    """Egress only to 443, PostgreSQL and DNS; the admin port only from the monitoring namespace."""
    spec = find("NetworkPolicy", "greenroom-gateway")["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    egress_ports = {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}
    assert egress_ports == {(443, "TCP"), (5432, "TCP"), (53, "UDP"), (53, "TCP")}
    for rule in spec["ingress"]:
        if any(p["port"] == 9090 for p in rule["ports"]):
            assert rule["from"] == [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
            ]
            assert [p["port"] for p in rule["ports"]] == [9090]
    assert find("NetworkPolicy", "default-deny")["spec"]["podSelector"] == {}


def test_configmap_is_a_valid_configuration(tmp_path: Path, gateway: dict[str, Any]) -> None:
    """Laid out as the projected volume lays it out, the ConfigMap (+ the example users) loads."""
    data = find("ConfigMap", "greenroom-config")["data"]
    sources = gateway["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    users = find("Secret", "greenroom-users")["stringData"]
    for source in sources:
        content = data if "configMap" in source else users
        items = (source.get("configMap") or source.get("secret"))["items"]
        for item in items:
            target = tmp_path / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content[item["key"]])
    assert set(data) == {i["key"] for s in sources if "configMap" in s for i in s["configMap"]["items"]}
    loaded = load_config(tmp_path)
    assert loaded.config.settings.admin.port == 9090
    assert loaded.config.settings.audit.store == "postgres"


@pytest.mark.parametrize(
    ("kind", "name", "container"),
    [("Deployment", "greenroom", "gateway"), ("Deployment", "greenroom-review", "review"),
     ("Job", "greenroom-registry-build", "build")],
)
def test_container_commands_parse(kind: str, name: str, container: str) -> None:
    """The greenroom command lines are accepted by the real CLI (commands not built yet are skipped)."""
    assert_cli_parses(_container(find(kind, name), container)["args"])


def test_kustomize_renders_valid_objects() -> None:
    """`kubectl kustomize` (offline) renders the set; every rendered object validates too."""
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is missing; `make test` installs it (scripts/system-deps.sh)"
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["kind"] for d in rendered} >= {
        "Namespace", "ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service",
        "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Job",
    }
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "greenroom"
    images = {c["image"] for d in rendered if d["kind"] in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.studio.example/greenroom:0.1.0"}
