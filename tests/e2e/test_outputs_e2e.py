"""Generated media through the real gateway: checked for likeness and IP, fingerprinted (never kept),
and found again in deliverables by `greenroom provenance scan`."""

from __future__ import annotations

import base64
import io
import json
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image, ImageEnhance

from tests.support.fake_provider import FakeProviderProcess
from tests.support.gateway_process import GatewayProcess, greenroom_bin

pytestmark = pytest.mark.e2e

ALICE = ("alice", "alice-demo")  # northern-lights: no likeness consent
BOB = ("bob", "bob-demo")  # harbor-nights: Eileen Collins' likeness consent


def sdk(gw: GatewayProcess, user: tuple[str, str], image: str) -> openai.OpenAI:
    http_client = httpx.Client(proxy=gw.proxy_url_for(*user), verify=ssl.create_default_context(cafile=gw.ca_cert),
                               trust_env=False, timeout=60)
    return openai.OpenAI(api_key="sk-test", http_client=http_client, max_retries=0,
                         default_headers={"x-fake-image": image})


def generate(gw: GatewayProcess, user: tuple[str, str], image: str) -> bytes:
    result = sdk(gw, user, image).images.generate(model="gpt-image-1", prompt="a quiet harbour at dawn")
    return base64.b64decode(result.data[0].b64_json or "")


def test_generated_likeness_without_consent_is_withheld(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    with pytest.raises(openai.PermissionDeniedError) as withheld:
        generate(gateway, ALICE, "face")
    assert "output.likeness" in str(withheld.value)


def test_generated_likeness_with_consent_is_delivered(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    assert generate(gateway, BOB, "face")[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("user", [ALICE, BOB])
def test_generated_copy_of_unlicensed_ip_is_withheld(gateway: GatewayProcess, fake: FakeProviderProcess,
                                                     user: tuple[str, str]) -> None:
    with pytest.raises(openai.PermissionDeniedError) as withheld:
        generate(gateway, user, "poster")
    assert "output.ip" in str(withheld.value)


def _variants(png: bytes, folder: Path) -> list[Path]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    made = {
        "reencoded.jpg": image,
        "resized.png": image.resize((w // 2, h // 2)),
        "cropped.png": image.crop((w // 10, h // 10, w - w // 10, h - h // 10)),
        "graded.jpg": ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(1.2)).enhance(0.85),
    }
    paths = []
    for name, variant in made.items():
        path = folder / name
        variant.save(path, quality=70) if name.endswith(".jpg") else variant.save(path)
        paths.append(path)
    return paths


def test_provenance_scan_finds_the_output_and_only_it(gateway: GatewayProcess, fake: FakeProviderProcess,
                                                      tmp_path: Path) -> None:
    """Generate, save, re-encode/resize/crop/grade, mix with unrelated media: the scan finds exactly it."""
    output = generate(gateway, BOB, "pattern-deliverable-7")
    time.sleep(2.0)  # fingerprints are written off the request path
    deliverables = tmp_path / "deliverables"
    deliverables.mkdir()
    found = _variants(output, deliverables)
    unrelated = [deliverables / f"unrelated-{n}.png" for n in range(3)]
    for n, path in enumerate(unrelated):
        Image.new("RGB", (300, 200), (40 * n, 90, 200 - 50 * n)).save(path)
    scan = subprocess.run([greenroom_bin(), "provenance", "scan", str(deliverables), "--data-dir",
                           str(gateway.data_dir), "--format", "json"], capture_output=True, text=True, timeout=300)
    assert scan.returncode == 1, scan.stdout + scan.stderr
    report = json.loads(scan.stdout)
    matched = {Path(entry["path"]).name for entry in report["matches"]} if isinstance(report, dict) else \
        {Path(entry["path"]).name for entry in report}
    assert matched == {p.name for p in found}


def test_output_bytes_are_never_stored(gateway: GatewayProcess, fake: FakeProviderProcess) -> None:
    output = generate(gateway, BOB, "pattern-canary-output")
    time.sleep(2.0)
    needles = [output, base64.b64encode(output), output[100:200]]
    for path in gateway.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(needle in data for needle in needles), path
