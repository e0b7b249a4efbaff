#!/usr/bin/env python3
"""`make bench`: Greenroom against direct, bare mitmdump and LiteLLM's proxy, in one run, one table.

    .venv/bin/python bench/run.py [--quick] [--only direct,bare,greenroom,litellm]
                                  [--workloads chat_c1,chat_c8,...] [--secs S] [--reps N]
    .venv/bin/python bench/run.py --profile [--secs S] [--profile-workload W] [--profile-workers]  # py-spy

Sets up what it needs (Debian nginx-light + hey through apt-get, LiteLLM into bench/.venv-litellm,
a throwaway test PKI, request bodies under bench/.lab/), then for every workload and repetition
runs each system back to back, so every ratio is taken pair by pair within the same repetition.
Prints one markdown table and the issue's targets (PASS/FAIL, informational), and writes
bench/results/latest.json. Exits 0 unless something could not run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import benchlib  # noqa: E402

LAB = HERE / ".lab"
RESULTS = HERE / "results"
VENV_BIN = Path(sys.executable).parent
LITELLM_VENV = HERE / ".venv-litellm"
# Pinned: the newest release whose [proxy] extra resolves from PyPI here (1.108+ need packages that are
# not published; 1.107.0 is reported as a compromised release and must never be installed).
LITELLM_SPEC = "litellm[proxy]==1.106.12"
SUT_CPU, LOAD_CPU = 0, 1
API_KEY = "sk-bench-7c1e0f4a9b2d4e6f8a0b1c2d3e4f5a6b"  # also LiteLLM's master key
AUTH = f"Authorization: Bearer {API_KEY}"
# hey per-request timeout (s): a request that hangs counts as an error instead of stalling the cell
HEY_TIMEOUT = 5
TALENT_PNG = REPO / "config" / "demo" / "registry" / "talent" / "eileen-collins" / "reference.png"

PHASE_A = ("chat_c1", "chat_c8", "chat_c64", "chat_newconn", "image_face", "image_edit", "text_under_image", "scale2")
PHASE_B = ("stream_ttfe", "streams500")
WORKLOADS = PHASE_A + PHASE_B

NGINX_CONF = """# bench/run.py: fast TLS upstream (fixed answers), as in the reference baseline
worker_processes 1;
daemon off;
pid __DIR__/nginx.pid;
error_log __DIR__/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path __DIR__/body; proxy_temp_path __DIR__/proxy; fastcgi_temp_path __DIR__/fcgi;
    uwsgi_temp_path __DIR__/uwsgi; scgi_temp_path __DIR__/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_max_body_size 200m;
    client_body_buffer_size 4m;
    server {
        listen 127.0.0.1:__PORT__ ssl;  # HTTP/1.1 only: see README (h2 + early `return` stalls lazy mitmproxy)
        ssl_certificate __CERT__; ssl_certificate_key __KEY__;
        location /v1/images/ { default_type application/json; return 200 '__IMAGE__'; }
        location / { default_type application/json; return 200 '__CHAT__'; }
    }
}
"""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# setup


def ensure_debian_tools() -> None:
    missing = [t for t in ("nginx", "hey", "taskset") if not shutil.which(t)]
    if not missing:
        return
    pkgs = {"nginx": "nginx-light", "hey": "hey", "taskset": "util-linux"}
    names = sorted({pkgs[t] for t in missing})
    log(f"missing {', '.join(missing)}: installing Debian packages {' '.join(names)} with apt-get "
        "(nginx-light = the fast TLS upstream, hey = the HTTP load generator, taskset = CPU pinning)")
    if os.geteuid() != 0:
        raise SystemExit(f"bench: run as root or install first: apt-get install -y {' '.join(names)}")
    subprocess.run(["apt-get", "update", "-q"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-q", *names], check=True, env={**os.environ,
                   "DEBIAN_FRONTEND": "noninteractive"})
    # the package may start a system nginx on port 80; the benchmark runs its own and leaves that alone


def ensure_litellm() -> Path:
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    base = getattr(sys, "_base_executable", sys.executable)
    log(f"creating {LITELLM_VENV} with {base} and installing {LITELLM_SPEC} from PyPI (first run only, ~1-3 min)")
    subprocess.run([base, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run([str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    LITELLM_SPEC], check=True)
    if not exe.exists():
        raise SystemExit("bench: LiteLLM installed but bin/litellm is missing")
    return exe


def make_pki() -> dict[str, str]:
    sys.path.insert(0, str(REPO / "tests" / "support"))
    import pki as test_pki  # tests/support/pki.py

    p = test_pki.make_pki(LAB / "pki")
    return {"ca": str(p.ca_cert), "cert": str(p.leaf_cert), "key": str(p.leaf_key)}


def chat_body(size: int = 2000) -> bytes:
    notes = "Scene 12, INT. STUDIO - NIGHT. The crew resets the dolly track while the gaffer re-rigs the key. "
    body = {"model": "gpt-4o-mini", "temperature": 0.2, "messages": [
        {"role": "system", "content": "You are a helpful assistant for a film studio. " * 6},
        {"role": "user", "content": "Summarise the following scene notes. "}]}
    while len(json.dumps(body)) < size - len(notes):
        body["messages"][1]["content"] += notes
    return json.dumps(body).encode()


def face_png() -> bytes:
    """The demo talent's reference photo resized to 1000x1000 (1 megapixel, one face), PNG."""
    from PIL import Image

    img = Image.open(TALENT_PNG).convert("RGB").resize((1000, 1000), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def generated_png_b64() -> str:
    """The images endpoints' answer: a 192x192 synthetic scene (shapes, no face; ~2 KB of base64, an nginx
    `return` string must stay under 4 KB), so Greenroom's output
    inspection has features to look at (a 1x1 PNG is refused as uninspectable, fail-closed)."""
    import random

    from PIL import Image, ImageDraw

    rnd = random.Random(7)
    img = Image.new("RGB", (192, 192), (40, 60, 90))
    d = ImageDraw.Draw(img)
    for _ in range(18):
        x, y = rnd.randrange(0, 170), rnd.randrange(0, 170)
        box = (x, y, x + rnd.randrange(8, 60), y + rnd.randrange(8, 60))
        color = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        (d.rectangle if rnd.random() < 0.5 else d.ellipse)(box, fill=color, outline=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def write_bodies() -> dict[str, tuple[Path, str]]:
    d = LAB / "bodies"
    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, str]] = {}
    (d / "chat.json").write_bytes(chat_body())
    out["chat"] = (d / "chat.json", "application/json")
    png_path = d / "face-1mp.png"
    if not png_path.exists():
        png_path.write_bytes(face_png())
    png = png_path.read_bytes()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    img = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe the lighting in this production still."},
        {"type": "image_url", "image_url": {"url": url}}]}]}
    (d / "image_chat.json").write_text(json.dumps(img))
    out["image_chat"] = (d / "image_chat.json", "application/json")
    b = "----greenroom-bench-boundary"
    parts = [f'--{b}\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-image-1\r\n'.encode(),
             f'--{b}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nWarmer key light\r\n'.encode(),
             f'--{b}\r\nContent-Disposition: form-data; name="image"; filename="still.png"\r\n'
             'Content-Type: image/png\r\n\r\n'.encode() + png + b"\r\n", f"--{b}--\r\n".encode()]
    (d / "edit.multipart").write_bytes(b"".join(parts))
    out["edit"] = (d / "edit.multipart", f"multipart/form-data; boundary={b}")
    return out


# ------------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _tree(pid: int) -> list[Any] | None:
    """A process and its living children (psutil), or None when it is gone."""
    import psutil

    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.Error:
        return None


def _tree_sum(pid: int, measure: Callable[[Any], float]) -> float | None:
    """Sum of `measure` over a process tree; processes that exit meanwhile are left out."""
    import psutil

    procs = _tree(pid)
    if procs is None:
        return None
    total = 0.0
    for q in procs:
        with contextlib.suppress(psutil.Error):
            total += measure(q)
    return total


def tree_rss_mb(pid: int) -> float | None:
    total = _tree_sum(pid, lambda q: q.memory_info().rss)
    return None if total is None else total / 2**20


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its living children (media workers included)."""
    return _tree_sum(pid, lambda q: q.cpu_times().user + q.cpu_times().system)


def set_affinity(pid: int, cpu: int) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        p = psutil.Process(pid)
        for q in [p, *p.children(recursive=True)]:
            q.cpu_affinity([cpu])


@dataclass
class Proc:
    name: str
    cmd: list[str]
    port: int
    env: dict[str, str] | None = None
    cpu: int | None = SUT_CPU
    popen: subprocess.Popen[bytes] | None = None
    logf: Any = None

    def start(self, timeout: float = 60) -> Proc:
        LAB.mkdir(parents=True, exist_ok=True)
        self.logf = (LAB / f"{self.name}.log").open("wb")
        cmd = (["taskset", "-c", str(self.cpu)] if self.cpu is not None else []) + self.cmd
        self.logf.write(("$ " + " ".join(cmd) + "\n").encode())
        self.logf.flush()
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(self.env or {})
        self.popen = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                      start_new_session=True)
        if not wait_port(self.port, timeout, self.popen):
            tail = (LAB / f"{self.name}.log").read_text(errors="replace")[-3000:]
            self.stop()
            raise RuntimeError(f"{self.name} did not listen on {self.port}:\n{tail}")
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        if self.logf:
            self.logf.close()
            self.logf = None


def start_nginx(pki: dict[str, str]) -> Proc:
    d = LAB / "nginx"
    d.mkdir(parents=True, exist_ok=True)
    chat = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1767225600,
                       "model": "gpt-4o-mini", "choices": [{"index": 0, "message": {"role": "assistant",
                       "content": "y" * 720}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 500, "completion_tokens": 200, "total_tokens": 700}})
    image = json.dumps({"created": 1767225600, "data": [{"b64_json": generated_png_b64()}]})
    port = free_port()
    conf = (NGINX_CONF.replace("__DIR__", str(d)).replace("__PORT__", str(port)).replace("__CERT__", pki["cert"])
            .replace("__KEY__", pki["key"]).replace("__CHAT__", chat).replace("__IMAGE__", image))
    (d / "nginx.conf").write_text(conf)
    return Proc("nginx", ["nginx", "-c", str(d / "nginx.conf"), "-p", str(d)], port, cpu=LOAD_CPU).start(20)


def start_stream_upstream(pki: dict[str, str]) -> Proc:
    port = free_port()
    return Proc("stream-upstream", [sys.executable, str(HERE / "stream_upstream.py"), "--port", str(port),
                                    "--cert", pki["cert"], "--key", pki["key"]], port, cpu=LOAD_CPU).start(30)


def start_mitmdump(pki: dict[str, str], name: str = "bare", cpu: int = SUT_CPU, stream: bool = False) -> Proc:
    """Bare mitmdump, no addons. With `stream`, stream_large_bodies=1 so that SSE is passed through as it
    arrives (without it mitmdump buffers the whole answer; Greenroom streams SSE in its addon)."""
    port = free_port()
    cmd = [str(VENV_BIN / "mitmdump"), "-q", "--listen-host", "127.0.0.1", "-p", str(port),
           "--set", f"confdir={LAB / 'mitm-confdir'}", "--set", f"ssl_verify_upstream_trusted_ca={pki['ca']}"]
    cmd += ["--set", "stream_large_bodies=1"] if stream else []
    return Proc(name, cmd, port, cpu=cpu).start()


def start_greenroom(pki: dict[str, str], upstream_port: int, name: str = "greenroom", cpu: int = SUT_CPU) -> Proc:
    port = free_port()
    data = LAB / f"{name}-data"
    shutil.rmtree(data, ignore_errors=True)
    cmd = [str(VENV_BIN / "greenroom"), "serve", "--config", str(REPO / "config" / "demo"), "--data-dir", str(data),
           "--listen-host", "127.0.0.1", "--listen-port", str(port), "--reverse-port", "-1", "--admin-port", "0",
           "--upstream-override", f"*=127.0.0.1:{upstream_port}", "--upstream-ca", pki["ca"],
           "--log-level", "warning"]
    return Proc(name, cmd, port, cpu=cpu).start(90)


def greenroom_ca(proc: Proc) -> str:
    data = LAB / f"{proc.name}-data"
    out = subprocess.run([str(VENV_BIN / "greenroom"), "ca", "path", "--data-dir", str(data)], capture_output=True,
                         text=True, check=True, cwd=REPO)
    return out.stdout.strip().splitlines()[-1]


def start_litellm(pki: dict[str, str], chat_port: int, stream_port: int | None) -> Proc:
    exe = ensure_litellm()
    cfg = benchlib.litellm_config(f"https://127.0.0.1:{chat_port}/v1",
                                  f"https://127.0.0.1:{stream_port}/v1" if stream_port else None, pki["ca"],
                                  master_key=API_KEY)
    path = LAB / "litellm.yaml"
    path.write_text(benchlib.litellm_config_yaml(cfg))
    port = free_port()
    env = {"SSL_CERT_FILE": pki["ca"], "SSL_VERIFY": pki["ca"], "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "LITELLM_MODE": "PRODUCTION",
           "NO_DOCS": "True", "DISABLE_SCHEMA_UPDATE": "True"}
    proc = Proc("litellm", [str(exe), "--config", str(path), "--host", "127.0.0.1", "--port", str(port),
                            "--num_workers", "1"], port, env=env)
    return proc.start(180)


class RssSampler(threading.Thread):
    """Peak RSS of each watched process tree, in windows (one window per measured cell)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.watch: dict[str, int] = {}
        self.peaks: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            with self.lock:
                items = list(self.watch.items())
            for name, pid in items:
                v = tree_rss_mb(pid)
                if v is not None:
                    with self.lock:
                        self.peaks[name] = max(self.peaks.get(name, 0.0), v)

    def window(self) -> None:
        with self.lock:
            self.peaks = {}

    def peak(self, name: str) -> float | None:
        with self.lock:
            pid = self.watch.get(name)
            v = self.peaks.get(name)
        now = tree_rss_mb(pid) if pid else None
        vals = [x for x in (v, now) if x is not None]
        return max(vals) if vals else None


# ------------------------------------------------------------------------------------------------
# systems: how a client reaches the upstream through each


@dataclass
class Lab:
    pki: dict[str, str]
    bodies: dict[str, tuple[Path, str]]
    nginx: Proc
    procs: dict[str, Proc] = field(default_factory=dict)
    cas: dict[str, str] = field(default_factory=dict)
    sampler: RssSampler = field(default_factory=RssSampler)
    stream: Proc | None = None


USERS = {"text": "alice:alice-demo", "image": "bob:bob-demo"}


def hey_target(lab: Lab, system: str, path: str, user: str = "text", proc: Proc | None = None) -> tuple[list[str], str]:
    """(hey proxy args, URL) for `system`. hey does not verify TLS (like the reference baseline)."""
    ngx = lab.nginx.port
    if system == "direct":
        return [], f"https://127.0.0.1:{ngx}{path}"
    p = proc or lab.procs[system]
    if system == "bare":
        return ["-x", f"http://127.0.0.1:{p.port}"], f"https://127.0.0.1:{ngx}{path}"
    if system == "greenroom":
        return ["-x", f"http://{USERS[user]}@127.0.0.1:{p.port}"], f"https://api.openai.com{path}"
    if system == "litellm":
        return [], f"http://127.0.0.1:{p.port}{path}"
    raise ValueError(system)


def hey_cmd(lab: Lab, system: str, body: str, path: str, conc: int, secs: float | None = None,
            n: int | None = None, keepalive: bool = True, user: str = "text", cpu: int | None = LOAD_CPU,
            proc: Proc | None = None) -> list[str]:
    proxy, url = hey_target(lab, system, path, user, proc)
    file, ctype = lab.bodies[body]
    cmd = (["taskset", "-c", str(cpu)] if cpu is not None else []) + ["hey"]
    cmd += ["-z", f"{secs}s"] if secs else ["-n", str(n or 10)]
    cmd += ["-c", str(conc), "-m", "POST", "-D", str(file), "-T", ctype, "-H", AUTH, "-t", str(HEY_TIMEOUT), *proxy]
    cmd += [] if keepalive else ["-disable-keepalive"]
    return [*cmd, url]


def run_hey(cmd: list[str], timeout: float) -> dict[str, Any]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    r = benchlib.parse_hey(out.stdout)
    if out.returncode != 0:
        r["error_sample"] = (r.get("error_sample") or "") + out.stderr[-300:]
    return r


def upstream_cpu_for(system: str, lab: Lab) -> None:
    """The reference pinning: direct = the upstream is the system under test (CPU 0); otherwise the
    upstream shares CPU 1 with the load generator."""
    cpu = SUT_CPU if system == "direct" else LOAD_CPU
    for p in (lab.nginx, lab.stream):
        if p and p.popen:
            set_affinity(p.pid, cpu)


# ------------------------------------------------------------------------------------------------
# workloads


@dataclass
class Plan:
    secs: float
    reps: int
    ttfe_n: int
    streams: int
    stream_open_timeout: float


HEY_SPECS: dict[str, dict[str, Any]] = {
    "chat_c1": {"body": "chat", "path": "/v1/chat/completions", "conc": 1},
    "chat_c8": {"body": "chat", "path": "/v1/chat/completions", "conc": 8},
    "chat_c64": {"body": "chat", "path": "/v1/chat/completions", "conc": 64},
    "chat_newconn": {"body": "chat", "path": "/v1/chat/completions", "conc": 8, "keepalive": False},
    "image_face": {"body": "image_chat", "path": "/v1/chat/completions", "conc": 1, "user": "image"},
    "image_edit": {"body": "edit", "path": "/v1/images/edits", "conc": 1, "user": "image"},
}


def warm(lab: Lab, system: str, workload: str) -> None:
    spec = HEY_SPECS.get(workload) or HEY_SPECS["chat_c8"]
    n = 4 if spec["body"] != "chat" else 20
    run_hey(hey_cmd(lab, system, spec["body"], spec["path"], min(spec["conc"], 4), n=n,
                    keepalive=spec.get("keepalive", True), user=spec.get("user", "text")), 120)


def cell_hey(lab: Lab, system: str, workload: str, plan: Plan) -> dict[str, Any]:
    spec = HEY_SPECS[workload]
    lab.sampler.window()
    pid = lab.procs[system].pid if system in lab.procs else None
    cpu_before = tree_cpu_seconds(pid) if pid else None
    r = run_hey(hey_cmd(lab, system, spec["body"], spec["path"], spec["conc"], secs=plan.secs,
                        keepalive=spec.get("keepalive", True), user=spec.get("user", "text")), plan.secs + 180)
    r["rss_mb"] = lab.sampler.peak(system) if system != "direct" else None
    r["cpu_ms"] = benchlib.cpu_per_request(cpu_before, tree_cpu_seconds(pid) if pid else None, r)
    return r


def cell_text_under_image(lab: Lab, system: str, plan: Plan) -> dict[str, Any]:
    """Text chat (c=8, alice) alone, then the same while another user (bob) sends 1 MP face images (c=2)."""
    alone = run_hey(hey_cmd(lab, system, "chat", "/v1/chat/completions", 8, secs=plan.secs), plan.secs + 180)
    lab.sampler.window()
    img = subprocess.Popen(hey_cmd(lab, system, "image_chat", "/v1/chat/completions", 2, secs=plan.secs + 1,
                                   user="image"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    loaded = run_hey(hey_cmd(lab, system, "chat", "/v1/chat/completions", 8, secs=plan.secs), plan.secs + 180)
    img_out, _ = img.communicate(timeout=plan.secs + 180)
    img_r = benchlib.parse_hey(img_out)
    r = dict(loaded)
    r["alone_p99_ms"], r["loaded_p99_ms"] = alone.get("p99_ms"), loaded.get("p99_ms")
    if alone.get("p99_ms") and loaded.get("p99_ms"):
        r["p99_ratio"] = loaded["p99_ms"] / alone["p99_ms"]
    r["image_rps"] = img_r.get("rps")
    r["image_codes"] = img_r.get("codes")
    r["rss_mb"] = lab.sampler.peak(system) if system != "direct" else None
    return r


def cell_scale2(lab: Lab, system: str, plan: Plan) -> dict[str, Any] | None:
    """One process (CPU 0) at c=16 against two processes (CPU 0 and CPU 1) at c=8 each, split by the client
    (two hey processes, one per gateway port: the 'balancer' is the client, like a PAC file listing two
    proxies). In the two-process run hey and nginx are not pinned: they share both cores with the gateways."""
    if system not in ("bare", "greenroom"):
        return None
    single = run_hey(hey_cmd(lab, system, "chat", "/v1/chat/completions", 16, secs=plan.secs), plan.secs + 180)
    second = (start_mitmdump(lab.pki, "bare-2", cpu=LOAD_CPU) if system == "bare"
              else start_greenroom(lab.pki, lab.nginx.port, "greenroom-2", cpu=LOAD_CPU))
    try:
        for q in _tree(lab.nginx.pid):  # nginx floats over both cores, like the two hey processes
            q.cpu_affinity([SUT_CPU, LOAD_CPU])
        warm_cmd = hey_cmd(lab, system, "chat", "/v1/chat/completions", 4, n=200, proc=second)
        run_hey(warm_cmd, 120)
        cmds = [hey_cmd(lab, system, "chat", "/v1/chat/completions", 8, secs=plan.secs, cpu=None),
                hey_cmd(lab, system, "chat", "/v1/chat/completions", 8, secs=plan.secs, cpu=None, proc=second)]
        ps = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
        outs = [benchlib.parse_hey(p.communicate(timeout=plan.secs + 180)[0]) for p in ps]
    finally:
        second.stop()
        set_affinity(lab.nginx.pid, LOAD_CPU)
    rps = [o.get("rps") or 0.0 for o in outs]
    codes: dict[str, int] = {}
    for o in outs:
        for k, v in (o.get("codes") or {}).items():
            codes[k] = codes.get(k, 0) + v
    total = sum(rps)
    return {"rps": total, "p50_ms": None, "p99_ms": None, "codes": codes,
            "errors": sum(o.get("errors") or 0 for o in outs), "single_rps": single.get("rps"),
            "scale": total / single["rps"] if single.get("rps") else None}


def _tree(pid: int) -> list[Any]:
    import psutil

    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.Error:
        return []


def stream_client(lab: Lab, system: str, long: bool) -> tuple[dict[str, Any], str, dict[str, Any], dict[str, str]]:
    """(httpx client kwargs, URL, JSON body, headers) for one streaming chat request through `system`."""
    assert lab.stream is not None
    port = lab.stream.port
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}],
                            "stream": True}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if long:
        headers.update({"x-fake-events": "400", "x-fake-delay": "0.25"})
    ctx = ssl.create_default_context
    if system == "direct":
        return {"verify": ctx(cafile=lab.pki["ca"])}, f"https://127.0.0.1:{port}/v1/chat/completions", body, headers
    p = lab.procs[system]
    if system == "bare":
        return ({"verify": ctx(cafile=lab.cas["bare"]), "proxy": f"http://127.0.0.1:{p.port}"},
                f"https://127.0.0.1:{port}/v1/chat/completions", body, headers)
    if system == "greenroom":
        return ({"verify": ctx(cafile=lab.cas["greenroom"]), "proxy": f"http://{USERS['text']}@127.0.0.1:{p.port}"},
                "https://api.openai.com/v1/chat/completions", body, headers)
    body["model"] = "stream-long" if long else "stream-fast"
    return {}, f"http://127.0.0.1:{p.port}/v1/chat/completions", body, headers


async def _ttfe(lab: Lab, system: str, n: int, warmup: int = 3) -> dict[str, Any]:
    import httpx

    kw, url, body, headers = stream_client(lab, system, long=False)
    out: list[float] = []
    codes: dict[str, int] = {}
    errors: list[str] = []
    async with httpx.AsyncClient(**kw, timeout=HEY_TIMEOUT, trust_env=False) as c:
        for i in range(n + warmup):
            t0 = time.perf_counter()
            first = None
            try:
                async with c.stream("POST", url, json=body, headers=headers) as r:
                    async for line in r.aiter_lines():
                        if first is None and line.startswith("data:"):
                            first = (time.perf_counter() - t0) * 1000
            except httpx.HTTPError as e:  # a stalled request: counted, and the next one opens a new connection
                if i >= warmup:
                    errors.append(repr(e)[:200])
                continue
            if i >= warmup:
                codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
                if first is not None:
                    out.append(first)
    return {"p50_ms": benchlib.percentile(out, 50), "p99_ms": benchlib.percentile(out, 99), "codes": codes,
            "errors": len(errors), "error_sample": errors[0] if errors else "", "rps": None}


async def _hold_streams(lab: Lab, system: str, n: int, open_timeout: float, hold: float = 2.0) -> dict[str, Any]:
    import httpx

    kw, url, body, headers = stream_client(lab, system, long=True)
    pid = lab.procs[system].pid
    idle = tree_rss_mb(pid)
    opened = 0
    errors: list[str] = []
    release = asyncio.Event()
    samples: list[float] = []
    first_times: list[float] = []
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(180.0)
    t_start = time.perf_counter()
    async with httpx.AsyncClient(**kw, limits=limits, timeout=timeout, trust_env=False) as c:
        async def one() -> None:
            nonlocal opened
            try:
                async with c.stream("POST", url, json=body, headers=headers) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data:"):
                            opened += 1
                            first_times.append((time.perf_counter() - t_start) * 1000)
                            break
                    await release.wait()
            except Exception as e:  # noqa: BLE001 - reported, not raised
                errors.append(repr(e)[:200])

        tasks = [asyncio.create_task(one()) for _ in range(n)]
        end = time.monotonic() + open_timeout
        while opened + len(errors) < n and time.monotonic() < end:
            await asyncio.sleep(0.25)
            v = tree_rss_mb(pid)
            if v is not None:
                samples.append(v)
        for _ in range(int(hold / 0.25)):
            await asyncio.sleep(0.25)
            v = tree_rss_mb(pid)
            if v is not None:
                samples.append(v)
        held = opened
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"rss_mb": max(samples) if samples else None, "idle_rss_mb": idle, "open_streams": held,
            "codes": {"200": held}, "errors": n - held, "error_sample": errors[0] if errors else "",
            "rps": None, "p50_ms": benchlib.percentile(first_times, 50), "p99_ms": benchlib.percentile(first_times, 99)}


# ------------------------------------------------------------------------------------------------
# orchestration


def probe(lab: Lab, system: str) -> dict[str, int]:
    """One request of each kind (hey -n 1), to print the status codes a system answers with."""
    out = {}
    for name, (body, path, user) in {"chat": ("chat", "/v1/chat/completions", "text"),
                                     "image_face": ("image_chat", "/v1/chat/completions", "image"),
                                     "image_edit": ("edit", "/v1/images/edits", "image")}.items():
        r = run_hey(hey_cmd(lab, system, body, path, 1, n=1, user=user), 120)
        codes = r.get("codes") or {}
        out[name] = int(next(iter(codes), 0)) if codes else 0
    return out


def run_bench(args: argparse.Namespace) -> int:
    systems = [s for s in benchlib.SYSTEMS if s in args.only]
    workloads = [w for w in WORKLOADS if w in args.workloads]
    plan = (Plan(secs=2, reps=2, ttfe_n=20, streams=500, stream_open_timeout=45) if args.quick
            else Plan(secs=6, reps=3, ttfe_n=60, streams=500, stream_open_timeout=90))
    if args.secs:
        plan.secs = args.secs
    if args.reps:
        plan.reps = args.reps
    ensure_debian_tools()
    if "litellm" in systems:
        ensure_litellm()
    shutil.rmtree(LAB / "mitm-confdir", ignore_errors=True)
    pki = make_pki()
    bodies = write_bodies()
    log(f"bodies: chat {bodies['chat'][0].stat().st_size} B, image chat {bodies['image_chat'][0].stat().st_size} B, "
        f"image edit {bodies['edit'][0].stat().st_size} B")
    results: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": args.quick,
                            "secs": plan.secs, "reps": plan.reps, "systems": systems, "workloads": workloads,
                            "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                            "litellm": LITELLM_SPEC, "probes": {}, "failures": []}
    os.sched_setaffinity(0, {LOAD_CPU})  # this process (clients, samplers) and its children: the load CPU
    nginx = start_nginx(pki)
    lab = Lab(pki, bodies, nginx)
    lab.sampler.start()
    failures: list[str] = meta["failures"]
    try:
        a_work = [w for w in workloads if w in PHASE_A]
        b_work = [w for w in workloads if w in PHASE_B]
        stream_port = None
        if b_work:
            lab.stream = start_stream_upstream(pki)
            stream_port = lab.stream.port
        for s in systems:
            try:
                if s == "bare":
                    lab.procs[s] = start_mitmdump(pki)
                    lab.cas[s] = str(LAB / "mitm-confdir" / "mitmproxy-ca-cert.pem")
                elif s == "greenroom":
                    lab.procs[s] = start_greenroom(pki, nginx.port)
                    lab.cas[s] = greenroom_ca(lab.procs[s])
                elif s == "litellm":
                    lab.procs[s] = start_litellm(pki, nginx.port, stream_port)
                if s != "direct":
                    lab.sampler.watch[s] = lab.procs[s].pid
                    meta.setdefault("idle_rss_mb", {})[s] = tree_rss_mb(lab.procs[s].pid)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{s}: could not start: {e}")
                log(failures[-1])
        systems = [s for s in systems if s == "direct" or s in lab.procs]
        if a_work:
            for s in systems:
                upstream_cpu_for(s, lab)
                meta["probes"][s] = probe(lab, s)
                log(f"{s}: status codes of one request each: {meta['probes'][s]}")
        for w in a_work:
            for s in systems:
                if w in HEY_SPECS:
                    upstream_cpu_for(s, lab)
                    warm(lab, s, w)
            for rep in range(plan.reps):
                for s in systems:
                    upstream_cpu_for(s, lab)
                    _run_cell(lambda s=s, w=w: _phase_a_cell(lab, s, w, plan), s, w, rep, results, failures)
        if b_work:
            bare = lab.procs.get("bare")
            if bare:
                lab.sampler.watch.pop("bare", None)
                bare.stop()
                lab.procs["bare"] = start_mitmdump(pki, "bare-stream", stream=True)
                lab.sampler.watch["bare"] = lab.procs["bare"].pid
            gr = lab.procs.get("greenroom")
            if gr:  # the streaming Greenroom dials the fake provider instead of nginx
                lab.sampler.watch.pop("greenroom", None)
                gr.stop()
                lab.procs["greenroom"] = start_greenroom(pki, stream_port or 0, "greenroom-stream")
                lab.cas["greenroom"] = greenroom_ca(lab.procs["greenroom"])
                lab.sampler.watch["greenroom"] = lab.procs["greenroom"].pid
            for w in b_work:
                for rep in range(plan.reps if w == "stream_ttfe" else 1):
                    for s in systems:
                        if w == "streams500" and s == "direct":
                            continue
                        upstream_cpu_for(s, lab)
                        _run_cell(lambda s=s, w=w: _phase_b_cell(lab, s, w, plan), s, w, rep, results, failures)
    finally:
        lab.sampler.stopped.set()
        for p in lab.procs.values():
            p.stop()
        if lab.stream:
            lab.stream.stop()
        nginx.stop()
    cells = benchlib.summarize(results, workloads)
    targets = benchlib.evaluate_targets(cells)
    table, ttable = benchlib.format_table(cells), benchlib.format_targets(targets)
    print()
    print(f"Greenroom bench — {'quick' if args.quick else 'full'} run, {plan.reps} x {plan.secs:g} s per cell, "
          f"medians; ratios and differences pair by pair per repetition. {time.strftime('%Y-%m-%d %H:%M')}")
    print()
    print(table)
    print()
    print(ttable)
    note = benchlib.machine_note(cells)
    if note:
        print("\n" + note)
    if failures:
        print("\nCould not run:\n" + "\n".join(f"- {f}" for f in failures))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(
        {"meta": meta | {"machine": note}, "runs": results, "summary": [c.as_dict() for c in cells],
         "targets": [t.__dict__ | {"verdict": t.verdict} for t in targets], "table": table}, indent=1, default=str))
    print(f"\nraw results: {RESULTS / 'latest.json'}")
    return 1 if failures else 0


def _phase_a_cell(lab: Lab, system: str, workload: str, plan: Plan) -> dict[str, Any] | None:
    """One measurement against the nginx upstream (None: the workload does not apply to `system`)."""
    if workload in HEY_SPECS:
        return cell_hey(lab, system, workload, plan)
    if workload == "text_under_image":
        return cell_text_under_image(lab, system, plan)
    return cell_scale2(lab, system, plan)


def _phase_b_cell(lab: Lab, system: str, workload: str, plan: Plan) -> dict[str, Any]:
    """One streaming measurement against the fake provider."""
    if workload == "stream_ttfe":
        return asyncio.run(_ttfe(lab, system, plan.ttfe_n))
    r = asyncio.run(_hold_streams(lab, system, plan.streams, plan.stream_open_timeout))
    time.sleep(2)  # let the 500 connections close before the next system opens its own
    return r


def _run_cell(measure: Callable[[], dict[str, Any] | None], system: str, workload: str, rep: int,
              results: list[dict[str, Any]], failures: list[str]) -> None:
    """Run one cell; its figures go to `results`, an exception to `failures` (the table's "Could not run")."""
    try:
        r = measure()
    except Exception as e:  # noqa: BLE001 - reported with the table and in the exit code, never raised
        failures.append(f"{system}/{workload}/rep{rep}: {e!r}"[:400])
        log(failures[-1])
        return
    if r is None:
        return
    r.update(system=system, workload=workload, rep=rep)
    results.append(r)
    log(_oneline(r))


def _oneline(r: dict[str, Any]) -> str:
    keys = ("rps", "p50_ms", "p99_ms", "rss_mb", "p99_ratio", "open_streams", "scale")
    figs = " ".join(f"{k}={r[k]:.2f}" for k in keys if isinstance(r.get(k), int | float))
    return f"{r['system']}/{r['workload']}/rep{r['rep']}: {figs} codes={r.get('codes')} errors={r.get('errors')}" + (
        f" ({r['error_sample'][:120]})" if r.get("error_sample") else "")


# ------------------------------------------------------------------------------------------------
# profile


def run_profile(args: argparse.Namespace) -> int:
    """py-spy (sampling) on Greenroom while hey sends one workload (default 2 KB chat at c=8); prints
    the hottest frames. `--profile-workers` samples the media worker processes too (image workloads)."""
    secs = args.secs or 20
    workload = args.profile_workload
    spec = HEY_SPECS.get(workload)
    if spec is None:
        raise SystemExit(f"bench: --profile-workload must be one of {', '.join(HEY_SPECS)}")
    spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("bench: py-spy missing: .venv/bin/pip install py-spy (it is in the dev extra)")
    ensure_debian_tools()
    pki = make_pki()
    bodies = write_bodies()
    os.sched_setaffinity(0, {LOAD_CPU})
    nginx = start_nginx(pki)
    lab = Lab(pki, bodies, nginx)
    gr = lab.procs["greenroom"] = start_greenroom(pki, nginx.port)
    raw = LAB / "profile.txt"
    try:
        warm(lab, "greenroom", workload)
        load = subprocess.Popen(hey_cmd(lab, "greenroom", spec["body"], spec["path"], spec["conc"], secs=secs + 2,
                                        keepalive=spec.get("keepalive", True) and not args.new_connections,
                                        user=spec.get("user", "text")),
                                stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        subprocess.run([spy, "record", "--pid", str(gr.pid), "--duration", str(int(secs)), "--rate", "250",
                        "--format", "raw", "--output", str(raw), "--nonblocking",
                        *(["--subprocesses"] if args.profile_workers else []), *(["--gil"] if args.gil else [])],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hey_out = benchlib.parse_hey(load.communicate(timeout=secs + 120)[0])
    finally:
        gr.stop()
        nginx.stop()
    print(f"{workload}: hey during the profile: {hey_out.get('rps')} req/s, codes {hey_out.get('codes')}")
    tops = benchlib.profile_tops(raw.read_text())
    print("\nall frames:\n" + benchlib.format_profile(tops, args.top))
    ours = ("(addons/", "(gateway/")
    mine = benchlib.format_profile(tops, args.top, lambda f: any(o in f for o in ours))
    print("\nGreenroom's own code only:\n" + mine)
    print(f"\ncollapsed stacks: {raw} (e.g. flamegraph.pl or speedscope)")
    return 0


# ------------------------------------------------------------------------------------------------


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(f"bench: terminated by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 repetitions x 2 s per cell")
    ap.add_argument("--only", default=",".join(benchlib.SYSTEMS), help="systems, comma-separated")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="workloads, comma-separated")
    ap.add_argument("--secs", type=float, help="seconds per cell (overrides --quick/full)")
    ap.add_argument("--reps", type=int, help="repetitions per cell (overrides --quick/full)")
    ap.add_argument("--profile", action="store_true", help="profile Greenroom with py-spy instead")
    ap.add_argument("--top", type=int, default=25, help="rows of the profile tables")
    ap.add_argument("--new-connections", action="store_true", help="profile with a new connection per request")
    ap.add_argument("--profile-workload", default="chat_c8", help="the hey workload to profile (default chat_c8)")
    ap.add_argument("--profile-workers", action="store_true",
                    help="sample the media worker processes too (py-spy --subprocesses)")
    ap.add_argument("--gil", action="store_true",
                    help="profile only the thread holding the GIL (where the CPU goes; waits and I/O left out)")
    args = ap.parse_args(argv)
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    args.workloads = {w.strip() for w in args.workloads.split(",") if w.strip()}
    unknown = (args.only - set(benchlib.SYSTEMS)) | (args.workloads - set(WORKLOADS))
    if unknown:
        ap.error(f"unknown system/workload: {', '.join(sorted(unknown))} "
                 f"(systems: {', '.join(benchlib.SYSTEMS)}; workloads: {', '.join(WORKLOADS)})")
    signal.signal(signal.SIGTERM, _sigterm)  # stop the started processes on `kill PID` too
    if args.profile:
        return run_profile(args)
    rc = run_bench(args)
    # The benchmark reports; it does not gate. Non-zero only when something could not run.
    return rc


if __name__ == "__main__":
    sys.exit(main())
