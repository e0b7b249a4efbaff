"""`greenroom registry build|list|add-talent|add-ip|remove` on a copy of the test registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import media_samples as ms
import pytest
import yaml

from gateway.cli import main
from gateway.config import load_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(ms.demo_config(), target)
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_talent_and_ip(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "registry", "list", "--config", str(config))
    assert code == 0
    assert "talent eileen-collins" in out and "1 photos" in out
    assert "ip     blue-meridian" in out and "1 images" in out


def test_list_as_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "registry", "list", "--config", str(config), "--format", "json")
    assert code == 0
    assert {t["id"] for t in json.loads(out)["talent"]} == {"eileen-collins", "voice-a"}


def test_build_prints_counts_and_writes_the_index(config: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "registry", "build", "--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert code == 0
    assert "1 IP images, 1 reference faces, 1 voice enrolments" in out
    assert len(list((tmp_path / "data" / "registry").glob("index-*/manifest.json"))) == 1


def test_add_talent_writes_yaml_and_copies_files(config: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "take1.wav"
    clip.write_bytes(ms.wav_bytes(ms.speech(5, **ms.SPEAKER_B)))
    code, out, _ = run(
        capsys, "registry", "add-talent", "--config", str(config), "--id", "new-star", "--name", "New Star",
        "--alias", "N. Star", "--photo", str(ms.PORTRAIT), "--voice", str(clip), "--union", "SAG-AFTRA",
    )
    assert code == 0, out
    folder = config / "registry" / "talent" / "new-star"
    data = yaml.safe_load((folder / "talent.yaml").read_text())
    assert data == {"id": "new-star", "name": "New Star", "aliases": ["N. Star"], "photos": ["reference.png"],
                    "voices": ["take1.wav"], "union": "SAG-AFTRA"}
    assert (folder / "reference.png").read_bytes() == ms.PORTRAIT.read_bytes()
    assert "new-star" in {t.id for t in load_config(config).config.registry.talent}


def test_add_ip_writes_yaml_and_copies_files(config: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "pilot.txt"
    script.write_text("INT. HARBOR - NIGHT\n")
    code, _, err = run(
        capsys, "registry", "add-ip", "--config", str(config), "--id", "iron-tide", "--title", "Iron Tide",
        "--owner", "Someone Else Studios", "--character", "Mara Voss", "--term", "Tidebreaker",
        "--image", str(ms.POSTER), "--image", str(ms.POSTER), "--script", str(script),
    )
    assert code == 0, err
    data = yaml.safe_load((config / "registry" / "ip" / "iron-tide" / "ip.yaml").read_text())
    assert data["images"] == ["poster.png", "poster-2.png"]
    assert data["scripts"] == ["pilot.txt"]
    assert data["characters"] == ["Mara Voss"] and data["terms"] == ["Tidebreaker"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["add-talent", "--id", "../escape", "--name", "Bad Id"], "--id"),
        (["add-talent", "--id", "x", "--name", "X"], "--name"),
        (["add-talent", "--id", "blue-meridian", "--name", "Taken Id"], "already registered as ip"),
        (["add-talent", "--id", "no-face", "--name", "No Face", "--photo", str(ms.POSTER)], "no face found"),
        (["add-talent", "--id", "ghost", "--name", "Ghost", "--photo", "/nonexistent.png"], "cannot"),
        (["add-ip", "--id", "eileen-collins", "--title", "Taken"], "already registered as talent"),
        (["remove", "--id", "nobody"], "no talent or IP"),
        (["remove", "--id", "eileen-collins"], "consents"),
    ],
)
def test_refused_changes_leave_the_config_as_it_was(config: Path, capsys: pytest.CaptureFixture[str],
                                                    argv: list[str], message: str) -> None:
    """Bad ids, taken ids, photos without faces, missing files, removing talent a production's consent
    cites: exit 2 with a clear message, and the registry unchanged."""
    before = sorted(str(p.relative_to(config)) for p in config.rglob("*"))
    code, _, err = run(capsys, "registry", argv[0], "--config", str(config), *argv[1:])
    assert code == 2
    assert message in err
    after = sorted(str(p.relative_to(config)) for p in config.rglob("*"))
    assert before == after
    load_config(config)


def test_remove_deletes_the_entry(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "registry", "remove", "--config", str(config), "--id", "voice-a")
    assert code == 0 and "removed talent voice-a" in out
    assert not (config / "registry" / "talent" / "voice-a").exists()
    assert "voice-a" not in {t.id for t in load_config(config).config.registry.talent}

