"""Run the gateway: mitmproxy's Master with its default addons plus Greenroom's, in one process.

Modes: an explicit proxy (`regular@PORT`) and, optionally, a reverse-mode port for clients that can
only change their SDK base_url (`http://gateway:8443/openai/v1`). Connections are opened lazily, so
a refused request never reaches the provider. SIGTERM drains in-flight requests and exits 0;
SIGHUP reloads the configuration (validated first; an invalid one is refused and the old one keeps
serving).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import certifi
import structlog
from mitmproxy import options
from mitmproxy.addons import block, core, disable_h2c, dns_resolver, next_layer, proxyserver, tlsconfig, update_alt_svc
from mitmproxy.master import Master

from addons.admin import AdminServer
from addons.greenroom import Greenroom
from addons.upstream import UpstreamOverride, parse_overrides
from gateway.approvals import open_approvals
from gateway.audit import LogSink
from gateway.audit.store import open_store
from gateway.ca import ca_dir, ensure_ca
from gateway.config.models import AuditSettings
from gateway.errors import ConfigError
from gateway.metrics import Metrics
from gateway.provenance import OutputLedger
from gateway.recorder import Fingerprinter, Recorder
from gateway.references import FetchSettings, FileLedger, RemoteFetcher
from gateway.reload import ConfigWatcher
from gateway.runtime import Runtime
from gateway.vault import Vault, master_key_provider

__all__ = ["ServeOptions", "serve"]

log = structlog.get_logger("greenroom.serve")

_DRAIN_SECONDS = 25.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config_dir: Path
    data_dir: Path
    listen_host: str | None = None
    listen_port: int | None = None
    reverse_port: int | None = None
    admin_host: str | None = None
    admin_port: int | None = None
    upstream_overrides: tuple[str, ...] = ()
    upstream_ca: Path | None = None


def serve(opts: ServeOptions) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code."""
    return asyncio.run(_serve(opts))


async def _serve(opts: ServeOptions) -> int:
    metrics = Metrics()
    runtime = Runtime(opts.config_dir, opts.data_dir, metrics=metrics, media_pool=True)
    settings = runtime.current.config.settings
    parse_overrides(opts.upstream_overrides)  # a bad spec stops us before anything listens
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    ca_cert = ensure_ca(opts.data_dir)
    host = opts.listen_host or settings.listen_host
    port = settings.listen_port if opts.listen_port is None else opts.listen_port
    reverse_port = settings.reverse_port if opts.reverse_port is None else opts.reverse_port
    modes = [f"regular@{port}"]
    if reverse_port is not None and reverse_port >= 0:
        modes.append(f"reverse:https://api.openai.com@{reverse_port}")

    recorder = _recorder(opts.data_dir, settings.audit)
    mitm_opts = options.Options(listen_host=host, mode=modes)
    master = Master(mitm_opts)
    upstream_bundle = _upstream_bundle(opts.data_dir, opts.upstream_ca)
    gateway = Greenroom(
        runtime,
        recorder,
        metrics=metrics,
        fingerprints=Fingerprinter.from_data_dir(opts.data_dir),
        fetcher=RemoteFetcher(FetchSettings(
            overrides={o.host: (o.ip, o.port) for o in parse_overrides(opts.upstream_overrides) if o.host != "*"},
            ca_file=str(upstream_bundle),
        )),
        ledger=FileLedger(opts.data_dir / "provider-files.sqlite3"),
        approvals=open_approvals(opts.data_dir, runtime.current.config, audit=recorder.store),
        outputs=OutputLedger.open(opts.data_dir, settings.audit),
    )
    master.addons.add(*proxy_addons())
    # The override's request hook must run after Greenroom's: it reroutes what was inspected.
    master.addons.add(gateway, UpstreamOverride(lambda h: runtime.current.catalog.is_ai_host(h)))
    limits = settings.limits
    mitm_opts.update(
        confdir=str(ca_dir(opts.data_dir)),
        connection_strategy="lazy",
        body_size_limit=str(limits.max_buffered_bytes),
        ssl_verify_upstream_trusted_ca=str(upstream_bundle),
        greenroom_upstream_override=list(opts.upstream_overrides),
        http3=False,
    )
    run = asyncio.create_task(master.run())
    bound = await _wait_bound(master, len(modes), run)
    if not bound:
        log.error("listen_failed", host=host, port=port, reverse_port=reverse_port)
        master.shutdown()
        await _quiet(run)
        return 1

    admin = None
    admin_port = settings.admin.port if opts.admin_port is None else opts.admin_port
    if admin_port:
        admin = AdminServer(
            opts.admin_host or settings.admin.host,
            admin_port,
            lambda: _metrics_text(gateway, runtime),
            lambda: _readiness(gateway, runtime, recorder, ca_cert, opts.data_dir),
        )
        admin_addr = await admin.start()
    _announce(bound, ca_cert, settings.review_url, admin_addr if admin else None, runtime)
    watcher = ConfigWatcher(runtime, interval=settings.reload_interval_seconds).start() \
        if settings.reload_interval_seconds > 0 else None

    purger = asyncio.create_task(_purge_periodically(runtime, recorder))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, runtime.reload))
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if run.done():  # the proxy stopped on its own: an error
        await _quiet(run)
        return 1
    await _drain(gateway)
    if watcher is not None:
        watcher.stop()
    master.shutdown()
    await _quiet(run)
    if admin:
        await admin.stop()
    purger.cancel()
    gateway.close()
    runtime.close()
    log.info("stopped")
    return 0


def proxy_addons() -> list[object]:
    """The mitmproxy addons the gateway needs, instead of mitmproxy's ~30 defaults.

    Left out on purpose: the onboarding app (it answers `mitm.it` through the proxy), script
    loading, flow saving and export (they would write content to disk), replay, map/modify
    rewriting, sticky cookies/auth, anticache/anticomp, and mitmproxy's own proxyauth (Greenroom
    authenticates). Kept: core, `block` (refuses clients from public addresses unless configured),
    `disable_h2c` (no h2c upgrade smuggling), the proxy server, DNS resolution, layer selection,
    TLS, and Alt-Svc stripping for reverse mode. Every hook runs through every loaded addon, so the
    short list is also less work per request.
    """
    return [
        core.Core(),
        block.Block(),
        disable_h2c.DisableH2C(),
        proxyserver.Proxyserver(),
        dns_resolver.DnsResolver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        update_alt_svc.UpdateAltSvc(),
    ]


def _recorder(data_dir: Path, settings: AuditSettings) -> Recorder:
    """The durable audit store (SQLite in the data dir, or PostgreSQL) with the inputs vault."""
    store = open_store(data_dir, settings)
    return Recorder(store, Vault(master_key_provider(data_dir), store), LogSink())


async def _purge_periodically(runtime: Runtime, recorder: Recorder, every: float = 3600.0) -> None:
    """Delete captured inputs older than each production's `retention_days`, hourly (and at start)."""
    while True:
        for production in runtime.current.config.productions:
            try:
                purged = await asyncio.to_thread(recorder.purge, production.retention_days, production.id)
            except Exception as exc:  # noqa: BLE001 - retry next round; the failure is visible in the log
                log.error("purge_failed", production=production.id, error=type(exc).__name__)
                continue
            if purged:
                log.info("captures_purged", production=production.id, count=purged)
        await asyncio.sleep(every)


def _readiness(
    gateway: Greenroom, runtime: Runtime, recorder: Recorder, ca_cert: Path, data_dir: Path
) -> dict[str, bool]:
    """Ready = config loaded, store writable, keys available, registry index and detectors loaded."""
    keys = data_dir / "keys" / "master.key"
    return {
        "config": runtime.current is not None,
        "store": recorder.healthy(),
        "keys": keys.exists() or bool(os.environ.get("GREENROOM_MASTER_KEY")),
        "registry": runtime.current.detection is not None,
        "ca": ca_cert.exists(),
        "not_draining": not gateway.draining,
    }


def _metrics_text(gateway: Greenroom, runtime: Runtime) -> str:
    gateway.metrics.set("greenroom_config_generation", "configuration generation serving", runtime.current.number)
    gateway.metrics.set("greenroom_config_reload_failures", "configurations refused on reload",
                        runtime.reload_failures)
    gateway.metrics.set("greenroom_inflight_requests", "AI requests in flight", len(gateway.inflight))
    return gateway.metrics.render()


async def _wait_bound(master: Master, expected: int, run: asyncio.Task[None]) -> list[tuple[str, int]]:
    proxyserver = master.addons.get("proxyserver")
    for _ in range(1000):
        await asyncio.sleep(0.01)
        if run.done():
            return []
        servers = proxyserver.servers
        if len(servers) == expected and all(s.listen_addrs for s in servers):
            return [a for s in servers for a in s.listen_addrs]
        if len(servers) == expected and any(s.last_exception for s in servers):
            return []
    return []


async def _drain(gateway: Greenroom) -> None:
    gateway.draining = True
    log.info("draining", inflight=len(gateway.inflight))
    deadline = time.monotonic() + _DRAIN_SECONDS
    while gateway.inflight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _quiet(task: asyncio.Task[None]) -> None:
    try:
        await asyncio.wait_for(task, 10)
    except (asyncio.CancelledError, TimeoutError, Exception) as exc:  # noqa: BLE001 - shutting down
        log.warning("shutdown_incomplete", error=type(exc).__name__)


def _upstream_bundle(data_dir: Path, extra_ca: Path | None) -> Path:
    """Upstream trust: the public roots plus, for staging and tests, one more CA."""
    bundle = data_dir / "upstream-ca-bundle.pem"
    pem = Path(certifi.where()).read_bytes()
    if extra_ca is not None:
        try:
            pem += b"\n" + extra_ca.read_bytes()
        except OSError as exc:
            raise ConfigError(f"--upstream-ca {extra_ca}: cannot read it: {exc.strerror}") from exc
    bundle.write_bytes(pem)
    return bundle


def _announce(
    addrs: Sequence[tuple[str, int]],
    ca_cert: Path,
    review_url: str,
    admin: tuple[str, int] | None,
    runtime: Runtime,
) -> None:
    proxy = addrs[0]
    lines = [
        f"Greenroom is running (config {runtime.config_dir}, generation {runtime.current.number}).",
        f"  proxy:       http://{proxy[0]}:{proxy[1]}  (HTTPS_PROXY=http://USER:PASSWORD@{proxy[0]}:{proxy[1]})",
    ]
    if len(addrs) > 1:
        lines.append(f"  reverse:     http://{addrs[1][0]}:{addrs[1][1]}/openai/v1  (header X-Greenroom-Token)")
    lines.append(f"  CA cert:     {ca_cert.resolve()}  (SSL_CERT_FILE / install on workstations)")
    if admin:
        lines.append(f"  admin:       http://{admin[0]}:{admin[1]}/healthz /readyz /metrics")
    lines.append(f"  review UI:   {review_url}  (greenroom review --config {runtime.config_dir})")
    print("\n".join(lines), file=sys.stderr, flush=True)
    log.info("started", proxy=f"{proxy[0]}:{proxy[1]}", generation=runtime.current.number)
