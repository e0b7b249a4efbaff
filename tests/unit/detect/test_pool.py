"""Media detectors in worker processes: same findings as in-process, lazy start, idle stop, failures close."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from gateway.config import LoadedConfig, load_config
from gateway.content import ContentLimits, Inputs, MediaItem
from gateway.detect import DetectionContext
from gateway.detect.pool import MediaPool, PoolSettings
from gateway.detection import ensure_index, media_detectors
from gateway.errors import DetectionError, InspectionError
from gateway.registry.layout import index_is_complete
from gateway.registry.source import registry_digest, registry_source

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "config" / "demo"
PHOTO = DEMO / "registry" / "talent" / "eileen-collins" / "reference.png"
CONTEXT = DetectionContext(capability="chat", production="harbor-nights")
LIMITS = ContentLimits()


def png_item(location: str = "body.messages[0].content[1].image_url") -> MediaItem:
    with Image.open(PHOTO) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, "PNG")
    return MediaItem(out.getvalue(), "image", "image/png", "image/png", location)


@pytest.fixture(scope="module")
def loaded() -> LoadedConfig:
    return load_config(DEMO)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, loaded: LoadedConfig) -> Path:
    folder = tmp_path_factory.mktemp("pool-data")
    ensure_index(loaded, folder)
    return folder


@pytest.fixture
def make_pool(loaded: LoadedConfig, data_dir: Path) -> Iterator[object]:
    pools: list[MediaPool] = []

    def make(**settings: float) -> MediaPool:
        values: dict = {"workers": 1, "nice": 5, **settings}
        pool = MediaPool(loaded, data_dir, LIMITS, PoolSettings(**values))
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def test_the_index_is_built_in_a_child_process(loaded: LoadedConfig, tmp_path: Path) -> None:
    """ensure_index: a stale index is built (elsewhere) and published; a current one is left alone."""
    digest = registry_digest(registry_source(loaded))
    assert not index_is_complete(tmp_path, digest)
    assert ensure_index(loaded, tmp_path) == digest
    assert index_is_complete(tmp_path, digest)
    manifest = next((tmp_path / "registry").glob("index-*/manifest.json"))
    before = manifest.stat().st_mtime_ns
    ensure_index(loaded, tmp_path)
    assert manifest.stat().st_mtime_ns == before


def test_workers_find_what_in_process_detectors_find(make_pool, loaded: LoadedConfig, data_dir: Path) -> None:
    """The same talent face, the same scores and locations, plus a timing per detector."""
    media = (png_item(),)
    local = [f for d in media_detectors(loaded, data_dir, LIMITS) for f in d.detect(Inputs(media=media), CONTEXT)]
    result = make_pool().detect(media, CONTEXT)
    assert sorted(result.findings, key=repr) == sorted(local, key=repr)
    assert any(f.kind == "face" and f.entity == "eileen-collins" for f in result.findings)
    assert [name for name, _ in result.timings] == ["ip_image", "face", "voice"]


def test_no_worker_runs_before_the_first_media_item_and_workers_run_niced(make_pool) -> None:
    pool = make_pool(nice=7)
    assert not pool.running and pool.worker_pids() == []
    pool.detect((png_item(),), CONTEXT)
    assert pool.running and pool.starts == 1
    (pid,) = pool.worker_pids()
    assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7


def test_idle_workers_stop_and_the_next_item_starts_them_again(make_pool) -> None:
    pool = make_pool(idle_seconds=0.2)
    pool.detect((png_item(),), CONTEXT)
    (pid,) = pool.worker_pids()
    deadline = time.monotonic() + 20
    while pool.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pool.running
    _wait_gone(pid)
    assert pool.detect((png_item(),), CONTEXT).findings
    assert pool.starts == 2


def test_a_worker_that_dies_fails_closed_and_is_replaced(make_pool) -> None:
    pool = make_pool()
    pool.warm()
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    with pytest.raises(DetectionError, match="stopped unexpectedly"):
        pool.detect((png_item(),), CONTEXT)
    assert pool.detect((png_item(),), CONTEXT).findings
    assert pool.starts == 2


def test_media_that_takes_too_long_fails_closed_and_replaces_the_workers(make_pool) -> None:
    pool = make_pool(timeout_seconds=0.001)
    with pytest.raises(DetectionError, match="did not finish"):
        pool.detect((png_item(),), CONTEXT)
    assert not pool.running


def test_a_detector_error_reaches_the_caller_as_the_same_error(make_pool) -> None:
    """Bytes that claim to be a PNG and are not: the detector's own InspectionError, location kept."""
    bad = MediaItem(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image", "image/png", "image/png", "body.image")
    with pytest.raises(InspectionError) as raised:
        make_pool().detect((bad,), CONTEXT)
    assert raised.value.location == "body.image"


def test_a_closed_pool_refuses(make_pool) -> None:
    pool = make_pool()
    pool.close()
    with pytest.raises(DetectionError, match="closed"):
        pool.detect((png_item(),), CONTEXT)


def test_the_proxy_process_never_loads_the_matching_libraries(tmp_path: Path) -> None:
    """The CLI, the proxy's modules and a runtime with a media pool load no face, voice or faiss code."""
    script = f"""
import sys
from pathlib import Path
import addons.runner
from gateway.cli import build_parser
from gateway.runtime import Runtime
if __name__ == "__main__":
    build_parser()
    runtime = Runtime(Path({str(DEMO)!r}), Path({str(tmp_path)!r}), media_pool=True)
    print(sorted(m for m in ("dlib", "faiss", "webrtcvad") if m in sys.modules))
    runtime.close()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _wait_gone(pid: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} is still running")


def test_a_reload_keeps_the_workers_unless_the_registry_changed(tmp_path: Path) -> None:
    """Users or settings changed: the new generation keeps the pool. A registry file changed: a new pool."""
    import shutil

    from gateway.runtime import Runtime

    config = tmp_path / "config"
    shutil.copytree(DEMO, config)
    runtime = Runtime(config, tmp_path / "data", media_pool=True)
    try:
        first = runtime.current.detection
        assert first is not None and first.pool is not None
        settings = config / "gateway.yaml"
        settings.write_text(settings.read_text() + "\nreload_interval_seconds: 7\n")
        assert runtime.reload()
        second = runtime.current.detection
        assert second is not None and second.pool is first.pool
        talent = next((config / "registry" / "talent").glob("*/talent.yaml"))
        talent.write_text(talent.read_text() + "\naliases: [E. Collins]\n")
        assert runtime.reload()
        third = runtime.current.detection
        assert third is not None and third.pool is not first.pool
    finally:
        runtime.close()


def test_two_free_workers_share_one_request_and_find_the_same(make_pool, loaded: LoadedConfig, data_dir: Path) -> None:
    """With two idle workers the face detector runs beside the others: same findings, each detector once."""
    media = (png_item(),)
    local = [f for d in media_detectors(loaded, data_dir, LIMITS) for f in d.detect(Inputs(media=media), CONTEXT)]
    result = make_pool(workers=2).detect(media, CONTEXT)
    assert sorted(result.findings, key=repr) == sorted(local, key=repr)
    assert sorted(name for name, _ in result.timings) == ["face", "ip_image", "voice"]


@pytest.mark.parametrize(
    ("workers", "busy", "split"),
    [(1, 0, False), (2, 0, True), (2, 1, False), (3, 1, True), (4, 3, False)],
)
def test_a_request_is_split_only_over_free_workers(make_pool, workers: int, busy: int, split: bool) -> None:
    pool = make_pool(workers=workers)
    pool._busy = busy
    _, got = pool._acquire(tasks=2)
    assert got is split
    assert pool._busy == busy + (2 if split else 1)


def test_a_request_caught_while_the_workers_are_replaced_fails_closed(make_pool) -> None:
    """Another request's timeout replaced the executor this one holds: a DetectionError, not a stray error."""
    pool = make_pool()
    pool.warm()
    assert pool._executor is not None
    pool._executor.shutdown(wait=True)  # what `_discard` does from another thread, between acquire and submit
    with pytest.raises(DetectionError, match="interrupted"):
        pool.detect((png_item(),), CONTEXT)
