"""Run the real gateway (`greenroom serve`) as a subprocess for end-to-end tests.

    with GatewayProcess(fake_address="127.0.0.1:PORT", upstream_ca=test_ca, data_dir=tmp) as gw:
        gw.proxy_url                      # http://127.0.0.1:PORT (no credentials)
        gw.proxy_url_for("alice", "alice-demo")
        gw.reverse_url, gw.admin_url, gw.ca_cert

Readiness = the proxy port accepts TCP connections (timeout 30 s; the captured output is included
in the error). On exit: SIGTERM, and the process must exit with code 0 within 15 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .fake_provider import free_port, wait_for_port

__all__ = ["REPO_ROOT", "GatewayProcess", "GatewayStartError", "greenroom_bin", "running_gateway"]

REPO_ROOT = Path(__file__).resolve().parents[2]
# 120 s by default (the first start builds the registry index); GREENROOM_E2E_START_TIMEOUT raises it
# on a slow or heavily loaded machine.
START_TIMEOUT = float(os.environ.get("GREENROOM_E2E_START_TIMEOUT", "120"))
STOP_TIMEOUT = 15.0


class GatewayStartError(RuntimeError):
    pass


def greenroom_bin() -> str:
    venv_bin = REPO_ROOT / ".venv" / "bin" / "greenroom"
    if venv_bin.exists():
        return str(venv_bin)
    import shutil
    import sys

    found = shutil.which("greenroom") or str(Path(sys.executable).parent / "greenroom")
    return found


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    # The gateway must dial upstreams (the fake) directly: drop any proxy settings of the test runner.
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.pop("SSL_CERT_FILE", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class GatewayProcess:
    def __init__(
        self,
        *,
        fake_address: str,
        upstream_ca: str | Path,
        data_dir: str | Path,
        config_dir: str | Path = REPO_ROOT / "config" / "demo",
        env: Mapping[str, str] | None = None,
        extra_overrides: tuple[str, ...] = ("www.example.org",),
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.fake_address = fake_address
        self.upstream_ca = str(upstream_ca)
        self.data_dir = Path(data_dir)
        self.config_dir = Path(config_dir)
        self.env = dict(env or {})
        self.extra_overrides = extra_overrides
        self.extra_args = extra_args
        self.host = "127.0.0.1"
        self.listen_port = free_port()
        self.reverse_port = free_port()
        self.admin_port = free_port()
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.ca_cert: str = ""
        self.reverse_url: str = ""
        self.returncode: int | None = None

    # -- command line ---------------------------------------------------------------------------
    def command(self) -> list[str]:
        cmd = [
            greenroom_bin(),
            "serve",
            "--config",
            str(self.config_dir),
            "--data-dir",
            str(self.data_dir),
            "--listen-host",
            self.host,
            "--listen-port",
            str(self.listen_port),
            "--reverse-port",
            str(self.reverse_port),
            "--admin-port",
            str(self.admin_port),
            "--upstream-override",
            f"*={self.fake_address}",
        ]
        for host in self.extra_overrides:
            cmd += ["--upstream-override", f"{host}={self.fake_address}"]
        cmd += ["--upstream-ca", self.upstream_ca, *self.extra_args]
        return cmd

    # -- URLs -----------------------------------------------------------------------------------
    @property
    def proxy_address(self) -> str:
        return f"{self.host}:{self.listen_port}"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.proxy_address}"

    def proxy_url_for(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@{self.proxy_address}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the gateway's CA only."""
        return ssl.create_default_context(cafile=self.ca_cert)

    # -- lifecycle ------------------------------------------------------------------------------
    def output(self) -> str:
        if self._log:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def start(self) -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        cmd = self.command()
        self._log.write(("$ " + " ".join(cmd) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=_clean_env(self.env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        t0 = time.monotonic()
        if not wait_for_port(self.listen_port, START_TIMEOUT, self.proc, self.host):
            rc = self.proc.poll()
            self._kill()
            raise GatewayStartError(
                f"gateway did not accept connections on {self.proxy_address} within {START_TIMEOUT:.0f}s "
                f"(exit code {rc}). Output:\n{self.output()}"
            )
        # the other listeners may come up a moment after the proxy port
        remaining = max(1.0, START_TIMEOUT - (time.monotonic() - t0))
        wait_for_port(self.reverse_port, min(remaining, 10.0), self.proc, self.host)
        self.ca_cert = self._ca_path()
        self.reverse_url = self._reverse_url()
        return self

    def _ca_path(self) -> str:
        r = subprocess.run(
            [greenroom_bin(), "ca", "path", "--data-dir", str(self.data_dir)],
            cwd=REPO_ROOT,
            env=_clean_env(None),
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
        if r.returncode != 0 or not lines or not Path(lines[-1]).is_file():
            raise GatewayStartError(
                f"`greenroom ca path` failed (rc={r.returncode}): stdout={r.stdout!r} stderr={r.stderr[-3000:]!r}"
            )
        return lines[-1]

    def _reverse_url(self) -> str:
        """The reverse-mode base (no path). Plain HTTP on loopback, as config/demo/gateway.yaml
        documents; GREENROOM_E2E_REVERSE_SCHEME=https tests TLS to the listener (gateway CA) instead."""
        scheme = os.environ.get("GREENROOM_E2E_REVERSE_SCHEME", "http")
        return f"{scheme}://{self.host}:{self.reverse_port}"

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self._log:
            self._log.close()
            self._log = None

    def stop(self, check: bool = True) -> int | None:
        """SIGTERM; with `check`, assert a clean exit (code 0) within 15 s."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                out = self.output()
                self._kill()
                if check:
                    raise AssertionError(
                        f"gateway did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM. Output:\n{out}"
                    ) from None
                return None
        else:
            self.returncode = self.proc.returncode
        out = self.output()
        self._kill()
        if check:
            assert self.returncode == 0, f"gateway exited with {self.returncode} after SIGTERM. Output:\n{out}"
        return self.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # don't mask a test failure with a teardown assertion
        self.stop(check=exc_type is None)


@contextlib.contextmanager
def running_gateway(**kwargs: Any) -> Iterator[GatewayProcess]:
    """Context manager form of GatewayProcess(...)."""
    with GatewayProcess(**kwargs) as gw:
        yield gw
