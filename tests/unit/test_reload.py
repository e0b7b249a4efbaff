"""gateway/reload.py: the config watcher reloads on file change, and only then.

A valid change puts a new generation in service; an invalid one is refused (counted, logged) while
the last good generation keeps serving; no change means no reload at all.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.reload import ConfigWatcher, snapshot
from gateway.runtime import Runtime

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    shutil.copytree(DEMO, directory)
    return directory


@pytest.fixture
def runtime(config_dir: Path, tmp_path: Path) -> Runtime:
    return Runtime(config_dir, tmp_path / "var")


class CountingRuntime(Runtime):
    """The real Runtime, counting reload() calls."""

    calls = 0

    def reload(self) -> bool:
        self.calls += 1
        return super().reload()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_valid_change_serves_a_new_generation(runtime: Runtime, config_dir: Path) -> None:
    """Editing gateway.yaml validly → generation 2 with the new value."""
    watcher = ConfigWatcher(runtime, interval=1, settle=0)
    assert runtime.current.config.settings.auth_cache_seconds == 300
    _edit(config_dir / "gateway.yaml", "auth_cache_seconds: 300", "auth_cache_seconds: 60")
    assert watcher.check() is True
    assert runtime.current.number == 2
    assert runtime.current.config.settings.auth_cache_seconds == 60
    assert (watcher.changes, watcher.reloads, watcher.refusals) == (1, 1, 0)


def test_new_file_is_a_change(runtime: Runtime, config_dir: Path) -> None:
    """A production added to productions/ is picked up."""
    watcher = ConfigWatcher(runtime, interval=1, settle=0)
    before = set(runtime.current.productions)
    source = next((config_dir / "productions").glob("*.yaml"))
    text = source.read_text()
    old_id = source.stem
    (config_dir / "productions" / "copy-show.yaml").write_text(text.replace(f"id: {old_id}", "id: copy-show"))
    assert watcher.check() is True
    assert set(runtime.current.productions) == before | {"copy-show"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("auth_cache_seconds: 300", "auth_cache_seconds: 300\nauth_cache_secs: 10"),  # misspelt key
        ("listen_port: 8080", "listen_port: not-a-port"),  # wrong type
        ("listen_port: 8080", "listen_port: [8080"),  # broken YAML
    ],
)
def test_invalid_change_keeps_the_old_generation(runtime: Runtime, config_dir: Path, old: str, new: str) -> None:
    """An invalid edit is refused: generation 1 keeps serving, reload_failures counts it, a log says so."""
    watcher = ConfigWatcher(runtime, interval=1, settle=0)
    serving = runtime.current
    _edit(config_dir / "gateway.yaml", old, new)
    with capture_logs() as logs:
        assert watcher.check() is False
    assert runtime.current is serving
    assert runtime.reload_failures == 1
    assert (watcher.changes, watcher.reloads, watcher.refusals) == (1, 0, 1)
    assert any(e["event"] == "config_reload_refused" for e in logs)


def test_fixing_the_invalid_change_recovers(runtime: Runtime, config_dir: Path) -> None:
    """After a refusal, the corrected file is loaded at the next change."""
    watcher = ConfigWatcher(runtime, interval=1, settle=0)
    gateway = config_dir / "gateway.yaml"
    _edit(gateway, "auth_cache_seconds: 300", "auth_cache_seconds: -5")
    assert watcher.check() is False
    _edit(gateway, "auth_cache_seconds: -5", "auth_cache_seconds: 30")
    assert watcher.check() is True
    assert runtime.current.number == 2
    assert runtime.current.config.settings.auth_cache_seconds == 30


def test_no_change_no_reload(config_dir: Path, tmp_path: Path) -> None:
    """Polling an unchanged directory never calls reload()."""
    runtime = CountingRuntime(config_dir, tmp_path / "var")
    watcher = ConfigWatcher(runtime, interval=1, settle=0)
    for _ in range(5):
        assert watcher.check() is False
    assert runtime.calls == 0
    assert runtime.current.number == 1


def test_touch_without_content_change_keeps_the_generation(config_dir: Path, tmp_path: Path) -> None:
    """A new mtime with the same bytes reaches reload(), whose digest check keeps generation 1."""
    runtime = CountingRuntime(config_dir, tmp_path / "var")
    watcher = ConfigWatcher(runtime, interval=1, settle=0)
    gateway = config_dir / "gateway.yaml"
    st = gateway.stat()
    os.utime(gateway, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert watcher.check() is False
    assert runtime.calls == 1
    assert runtime.current.number == 1
    assert watcher.refusals == 0
    assert watcher.check() is False  # the new mtime is now the baseline
    assert runtime.calls == 1


def test_unexpected_error_is_counted_and_the_watcher_survives(config_dir: Path, tmp_path: Path) -> None:
    """A bug inside reload() does not kill the watcher: counted as a refusal, old generation serving."""

    class Broken(Runtime):
        def reload(self) -> bool:
            raise RuntimeError("boom")

    runtime = Broken(config_dir, tmp_path / "var")
    watcher = ConfigWatcher(runtime, interval=1, settle=0)
    _edit(config_dir / "gateway.yaml", "auth_cache_seconds: 300", "auth_cache_seconds: 60")
    with capture_logs() as logs:
        assert watcher.check() is False
    assert watcher.refusals == 1
    assert runtime.current.number == 1
    assert [e["error"] for e in logs if e["event"] == "config_reload_failed"] == ["RuntimeError"]


def test_snapshot_follows_configmap_style_symlinks(tmp_path: Path) -> None:
    """Kubernetes swaps a `..data` symlink: the snapshot sees the new target's files."""
    volume = tmp_path / "volume"
    first, second = volume / "..2026_01", volume / "..2026_02"
    first.mkdir(parents=True)
    second.mkdir()
    (first / "gateway.yaml").write_text("listen_port: 8080\n")
    (second / "gateway.yaml").write_text("listen_port: 8081\n")
    (volume / "..data").symlink_to(first.name)
    (volume / "gateway.yaml").symlink_to("..data/gateway.yaml")
    before = snapshot(volume)
    shutil.rmtree(first)
    (volume / "..data_tmp").symlink_to(second.name)
    os.replace(volume / "..data_tmp", volume / "..data")
    assert snapshot(volume) != before


def test_missing_directory_is_a_change_that_is_refused(runtime: Runtime, config_dir: Path) -> None:
    """Deleting the config dir is refused like any invalid configuration."""
    watcher = ConfigWatcher(runtime, interval=1, settle=0)
    shutil.rmtree(config_dir)
    assert watcher.check() is False
    assert runtime.reload_failures == 1
    assert runtime.current.number == 1


def test_change_still_being_written_waits_for_the_next_poll(runtime: Runtime, config_dir: Path) -> None:
    """A file that changes again during the settle wait is not loaded half-written."""
    watcher = ConfigWatcher(runtime, interval=1, settle=0.05)
    gateway = config_dir / "gateway.yaml"
    real_wait = watcher._stop.wait

    def write_during_settle(timeout: float | None = None) -> bool:
        _edit(gateway, "auth_cache_seconds: 60", "auth_cache_seconds: 61")
        return real_wait(timeout)

    _edit(gateway, "auth_cache_seconds: 300", "auth_cache_seconds: 60")
    watcher._stop.wait = write_during_settle  # type: ignore[method-assign]
    assert watcher.check() is False
    assert watcher.changes == 0
    watcher._stop.wait = real_wait  # type: ignore[method-assign]
    assert watcher.check() is True
    assert runtime.current.config.settings.auth_cache_seconds == 61


def test_thread_reloads_on_its_own(runtime: Runtime, config_dir: Path) -> None:
    """start() polls in a daemon thread; stop() ends it."""
    watcher = ConfigWatcher(runtime, interval=0.05, settle=0.01).start()
    try:
        _edit(config_dir / "gateway.yaml", "auth_cache_seconds: 300", "auth_cache_seconds: 45")
        deadline = time.monotonic() + 10
        while runtime.current.number == 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runtime.current.number == 2
    finally:
        watcher.stop()
    assert watcher._thread is None


def test_interval_must_be_positive(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="interval"):
        ConfigWatcher(runtime, interval=0)


def test_snapshot_survives_a_symlink_loop(tmp_path: Path) -> None:
    """A directory symlink pointing back up does not hang the watcher."""
    (tmp_path / "productions").mkdir()
    (tmp_path / "productions" / "a.yaml").write_text("id: a\n")
    (tmp_path / "productions" / "loop").symlink_to(tmp_path)
    names = {entry[0] for entry in snapshot(tmp_path)}
    assert os.path.join("productions", "a.yaml") in names
