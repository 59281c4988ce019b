#!/usr/bin/env python3
"""Ringward side by side with nginx and HAProxy, on this machine, in one session.

Three nginx backends (one nginx master with one worker and three server blocks on three
loopback ports, each answering every path with a 100-byte 200 and `X-Backend: bN`;
stub_status on a fourth port) sit behind each target in turn:

- ceiling:  wrk straight at backend b1, no proxy (what wrk and the backend worker give);
- ringward: target/release/ringward, defaults except the addresses, the three hosts and
            the key from path segment 1;
- nginx:    `hash $uri consistent`, upstream keepalive 1024, one worker process;
- haproxy:  `balance uri` + `hash-type consistent`, `http-reuse always`, nbthread 2.

A run is wrk (one thread, `--latency`) over the 1000 paths `/v/val{i}/run`, round-robin,
after an unmeasured warm-up. Per run: req/s; p50/p99; requests per proxy CPU-second
(utime+stime of the proxy's processes, /proc/PID/stat); the proxy's peak RSS (VmRSS of
its processes every 0.5 s); upstream connections opened per 1000 requests (the delta of
the backends' stub_status `accepts`); errors (non-2xx/3xx plus socket errors). Rounds are
interleaved, the target order rotating each round, and the median over rounds is shown.

Optional modes: --idle [N] (proxy RSS per idle keep-alive connection), --soak SECONDS
(Ringward's RSS through a long run), --h2 (h2load over h2c to Ringward and HAProxy),
--smoke (2 s runs, one round, 64 connections; exits 1 unless every response is a 2xx),
--tls (below).

--tls, a mode of its own (instead of the plaintext runs; 6 s runs after a 1 s warm-up unless
--duration/--warmup say otherwise, so about 5 minutes; with --smoke under one): TLS
termination by Ringward, nginx and HAProxy (not the ceiling), in front of the same three
backends, in interleaved rounds, medians. One ECDSA P-256 certificate, self-signed for
CN/SAN localhost and IP 127.0.0.1, is made per session with `openssl req` in the temp dir and
served by every proxy, on a TLS listener beside its plaintext one:

- ringward: its defaults plus `[listen.tls]` (addr, cert, key; docs/configuration.md):
            rustls with the provider it is built with, ALPN h2 and http/1.1, TLS 1.2 and
            1.3, its session cache, handshake_timeout 10 s;
- nginx:    a copy of its server block with `listen ... ssl http2` (nginx before 1.25.1,
            `listen ... ssl` + `http2 on` after) and Mozilla's "intermediate" settings, which
            nginx's docs point to for production: `ssl_protocols TLSv1.2 TLSv1.3`, the
            intermediate `ssl_ciphers`, `ssl_prefer_server_ciphers off`, `ssl_session_cache
            shared:SSL:10m`, `ssl_session_timeout 1d`, `ssl_session_tickets off`;
- haproxy:  `bind ... ssl crt FILE alpn h2,http/1.1` (FILE: certificate and key in one PEM)
            and the same intermediate settings as `ssl-default-bind-ciphers`,
            `ssl-default-bind-ciphersuites` and `ssl-default-bind-options
            prefer-client-ciphers ssl-min-ver TLSv1.2 no-tls-tickets`; its session cache
            (tune.ssl.cachesize, 20000) as it comes; nbthread 2 as above.

Before measuring, 40 paths go three times through each TLS listener (every answer a 200, each
path on one backend, the certificate verified for 127.0.0.1), and each must choose h2 when
offered h2,http/1.1 and complete a TLS 1.2-only and a TLS 1.3-only handshake. Then per round:

1. h1 keep-alive: wrk over https at each --conns count (64, 256), as the main table: req/s,
   p50/p99, requests per proxy CPU-second, peak RSS;
2. full handshakes: h2load --h1 in batches of 256 clients with one request each
   (`-c 256 -n 256`), batch after batch for the run's duration: each connection is one full
   TLS handshake, one HTTP/1.1 request, then closed. h2load gives every client a fresh TLS
   session and so never offers resumption (nginx's $ssl_session_reused said so for all of
   them when this was written; wrk with `Connection: close`, and h2load when a client
   reconnects, resume whenever the server lets them, and Ringward's session cache does).
   Handshakes per second of h2load's run time, and per proxy CPU-second (the handshake, the
   request and its proxying); one path per batch, the next of the 1000 for each batch;
3. h2: h2load -c 64 -m 10 over TLS with ALPN h2, the 1000 paths: req/s, per CPU-second.

A Ringward without TLS (its `check` refuses `listen.tls`) stops the mode with a message; leave
it out with --only nginx,haproxy. --write-docs writes the table between
<!-- bench-peers-tls:begin --> and <!-- bench-peers-tls:end --> in docs/benchmarks.md (added
at the end of the bench-peers section when missing).

Every process runs from a temporary directory on free 127.0.0.1 ports and is stopped at
the end, on errors and on Ctrl-C. Python 3 standard library only; nginx, haproxy, wrk and
h2load (and for --tls the openssl CLI) are installed with apt-get when missing.

    python3 benches/peers/run.py [--rounds 3] [--duration 10] [--conns 64,256] [--write-docs]
    python3 benches/peers/run.py --tls [--only nginx,haproxy] [--smoke] [--write-docs]
"""

import argparse
import asyncio
import datetime
import grp
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RINGWARD = REPO / "target/release/ringward"
DOCS = REPO / "docs/benchmarks.md"
BEGIN, END = "<!-- bench-peers:begin -->", "<!-- bench-peers:end -->"
BACKENDS = ["b1", "b2", "b3"]
PATHS = [f"/v/val{i}/run" for i in range(1000)]
TARGETS = ["ceiling", "ringward", "baseline", "nginx", "haproxy"]
PROXIES = TARGETS[1:]
# The peers Ringward is held against ("vs best peer").
PEERS = ["nginx", "haproxy"]
TOOLS = {"nginx": "nginx", "haproxy": "haproxy", "wrk": "wrk", "h2load": "nghttp2-client"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
IDLE_MARGIN = 500  # --idle: each proxy's connection limit is N + this
# --tls
TLS_BEGIN, TLS_END = "<!-- bench-peers-tls:begin -->", "<!-- bench-peers-tls:end -->"
TLS_HEADING = "### TLS termination (`--tls`)"
TLS_TOOLS = {"openssl": "openssl"}
HANDSHAKE_BATCH = 256  # h2load clients per batch of full handshakes, one request each
H2_CLIENTS, H2_STREAMS = 64, 10
# Mozilla's "intermediate" configuration (ssl-config.mozilla.org, guidelines 5.7).
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                 "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")
TLS13_SUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"


class BenchError(Exception):
    """A failure with a message for the user (printed without a traceback)."""


# ---------------------------------------------------------------- tools and processes

def ensure_tools(tools=TOOLS):
    """Installs nginx, haproxy, wrk and h2load (and the others in tools) with apt-get when one
    is missing."""
    missing = sorted({pkg for tool, pkg in tools.items() if not shutil.which(tool)})
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing {' '.join(missing)} with apt-get", flush=True)
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q"] + missing, check=True, env=env)


def build_ringward(skip):
    if not skip:
        subprocess.run(["cargo", "build", "--release", "-p", "ringward-bin", "--bin", "ringward"],
                       cwd=REPO, check=True)
    if not RINGWARD.exists():
        raise BenchError(f"{RINGWARD} is missing: build it, or drop --no-build")


def raise_fd_limit():
    """Raises this process's (and so its children's) open-file limit to the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_ports(names):
    """A free loopback port per name (all bound at once, so distinct, then released)."""
    socks = [socket.socket() for _ in names]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return {name: s.getsockname()[1] for name, s in zip(names, socks)}
    finally:
        for s in socks:
            s.close()


class Procs:
    """The processes this script started, each in a process group of its own."""

    def __init__(self, tmp):
        self.tmp, self.running = tmp, {}

    def start(self, name, argv):
        with open(self.tmp / f"{name}.log", "wb") as log:
            self.running[name] = subprocess.Popen(
                argv, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self, name):
        proc = self.running.pop(name, None)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc is None or proc.poll() is not None:
                return
            try:
                os.killpg(proc.pid, sig)  # the group created for it: nginx master and workers
                proc.wait(5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass

    def stop_all(self):
        for name in list(self.running):
            self.stop(name)

    def log_tail(self, name, lines=15):
        path = self.tmp / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def http_get(url, timeout=2.0, ctx=None):
    """(status, X-Backend, body) of one GET on a fresh connection (https: with TLS context ctx)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return resp.status, resp.headers.get("X-Backend"), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("X-Backend"), e.read()


def wait_ready(procs, name, url, deadline_s=15.0, ctx=None):
    """Polls url until it answers 200; fails at once if the process exits."""
    proc, deadline, last = procs.running[name], time.monotonic() + deadline_s, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}:\n{procs.log_tail(name)}")
        try:
            last = http_get(url, timeout=1.0, ctx=ctx)[0]
            if last == 200:
                return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise BenchError(f"{name}: {url} not answering 200 within {deadline_s:.0f} s "
                     f"(last: {last})\n{procs.log_tail(name)}")


# ---------------------------------------------------------------- /proc

def process_tree(pid):
    """pid and its direct children (nginx: the master and its workers)."""
    kids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return [pid] + kids


def cpu_usage(pids):
    """(utime s, stime s, involuntary context switches) of pids, all their threads."""
    user = system = preempted = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                status = (task / "status").read_text()
            except OSError:
                continue  # a thread that ended meanwhile
            for line in status.splitlines():
                if line.startswith("nonvoluntary_ctxt_switches:"):
                    preempted += int(line.split()[1])
    return user / CLK_TCK, system / CLK_TCK, preempted


def cpu_seconds(pids):
    """utime + stime of pids (all their threads), in seconds."""
    user, system, _ = cpu_usage(pids)
    return user + system


def rss_kib(pids):
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class RssSampler(threading.Thread):
    """Samples the summed VmRSS of pids every interval seconds until stopped."""

    def __init__(self, pids, interval):
        super().__init__(daemon=True)
        self.pids, self.interval, self.samples, self.halt = pids, interval, [], threading.Event()

    def run(self):
        while True:
            self.samples.append(rss_kib(self.pids))
            if self.halt.wait(self.interval):
                return

    def stop(self):
        self.halt.set()
        self.join()
        return self.samples


# ---------------------------------------------------------------- configurations

def render(template, values):
    """benches/peers/<template> with every @NAME@ filled in from values."""
    text = (HERE / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    if left := re.findall(r"@[A-Z0-9_]+@", text):
        raise BenchError(f"{template}: {', '.join(sorted(set(left)))} not filled in")
    return text


def nginx_user():
    """nginx's `user` line: as root, workers would otherwise switch to nobody."""
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(0).gr_name};"


# ---------------------------------------------------------------- --tls configurations

def client_context(cafile, alpn=("http/1.1",), versions=(None, None)):
    """A client TLS context that trusts only cafile, offering alpn, within (min, max) versions."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)  # a bare self-signed leaf
    ctx.set_alpn_protocols(list(alpn))
    if versions[0]:
        ctx.minimum_version = versions[0]
    if versions[1]:
        ctx.maximum_version = versions[1]
    return ctx


def make_certificate(tmp):
    """A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1, made with the openssl
    CLI: its files (key in PKCS#8; HAProxy's PEM holds both) and client contexts trusting it."""
    cert, key, both = tmp / "tls-cert.pem", tmp / "tls-key.pem", tmp / "tls-cert-key.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
            "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0 or not cert.exists() or not key.exists():
        raise BenchError(f"openssl could not make the certificate ({' '.join(argv)}):\n"
                         f"{out.stdout}{out.stderr}")
    both.write_text(cert.read_text() + key.read_text())
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          capture_output=True, text=True).stdout
    if "prime256v1" not in text and "P-256" not in text:
        raise BenchError(f"{cert} is not an ECDSA P-256 certificate:\n{text}")
    return {"cert": str(cert), "key": str(key), "pem": str(both),
            "ctx": client_context(str(cert))}


def ringward_tls_toml(port, tls):
    """Ringward's TLS listener: [listen.tls] with the address, certificate and key."""
    return (f'\n\n[listen.tls]\naddr = "127.0.0.1:{port}"\ncert = {json.dumps(tls["cert"])}\n'
            f'key = {json.dumps(tls["key"])}\n')


def nginx_version():
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    if not found:
        raise BenchError(f"`nginx -v` gave no version: {out.stdout}{out.stderr}")
    return tuple(int(x) for x in found.groups())


def nginx_tls(conf, port, tls_port, tls):
    """nginx.conf with a TLS copy of the server block listening on port, on tls_port."""
    listen = re.compile(rf"^([ \t]*)listen 127\.0\.0\.1:{port}\b([^;\n]*);", re.M)
    block = next((m for m in re.finditer(r"(?ms)^([ \t]*)server \{\n.*?^\1\}\n", conf)
                  if listen.search(m.group(0))), None)
    if block is None:
        raise BenchError(f"nginx.conf: no `server` block listening on 127.0.0.1:{port} to copy "
                         f"for the TLS listener")
    # `http2 on` is nginx 1.25.1's; before it, http2 is a parameter of listen.
    http2_on = nginx_version() >= (1, 25, 1)

    def tls_lines(m):
        lines = [f"listen 127.0.0.1:{tls_port} ssl{'' if http2_on else ' http2'}{m.group(2)};"]
        lines += ["http2 on;"] if http2_on else []
        lines += [f"ssl_certificate {tls['cert']};", f"ssl_certificate_key {tls['key']};",
                  "ssl_protocols TLSv1.2 TLSv1.3;", f"ssl_ciphers {TLS12_CIPHERS};",
                  "ssl_prefer_server_ciphers off;", "ssl_session_cache shared:SSL:10m;",
                  "ssl_session_timeout 1d;", "ssl_session_tickets off;"]
        return "\n".join(m.group(1) + line for line in lines)

    copy = listen.sub(tls_lines, block.group(0), count=1)
    return conf[:block.end()] + "\n" + copy + conf[block.end():]


def haproxy_tls(cfg, port, tls_port, tls):
    """haproxy.cfg with a TLS bind beside the plaintext one on port, and Mozilla's
    intermediate defaults for TLS binds in its global section."""
    cfg, n_global = re.subn(
        r"(?m)^global[ \t]*\n",
        lambda m: (m.group(0) + f"  ssl-default-bind-ciphers {TLS12_CIPHERS}\n"
                   f"  ssl-default-bind-ciphersuites {TLS13_SUITES}\n"
                   "  ssl-default-bind-options prefer-client-ciphers ssl-min-ver TLSv1.2 "
                   "no-tls-tickets\n"), cfg, count=1)
    cfg, n_bind = re.subn(
        rf"(?m)^([ \t]*)bind 127\.0\.0\.1:{port}[ \t]*\n",
        lambda m: (m.group(0) + f"{m.group(1)}bind 127.0.0.1:{tls_port} ssl crt {tls['pem']} "
                   "alpn h2,http/1.1\n"), cfg, count=1)
    if not n_global or not n_bind:
        raise BenchError(f"haproxy.cfg: no `global` section or no `bind 127.0.0.1:{port}` line "
                         f"to add the TLS listener to")
    return cfg


# ---------------------------------------------------------------- the session

class Session:
    """The backends and the proxies under test, on free loopback ports, in a temp dir."""

    def __init__(self, tmp, nofile):
        self.tmp, self.nofile, self.procs = tmp, nofile, Procs(tmp)
        self.port = free_ports(BACKENDS + ["status", "admin", "admin_base", "h2"] + PROXIES
                               + [f"{p}_tls" for p in PROXIES])
        self.baseline, self.baseline_toml, self.baseline_listen = None, "", ""
        self.port["ceiling"] = self.port["b1"]
        self.tls = None  # --tls: make_certificate()'s files and client contexts
        self.next_path = 0  # --tls: the path of the next batch of handshakes

    def write(self, name, text):
        (self.tmp / name).write_text(text)
        return str(self.tmp / name)

    def config(self, template, **values):
        """Writes template, filled in with the ports, the temp dir and values, to the temp dir."""
        merged = {f"{k.upper()}_PORT": v for k, v in self.port.items()}
        merged.update(TMP=self.tmp, NOFILE=self.nofile, USER=nginx_user())
        merged.update(values)
        return self.write(values.pop("FILE", template), render(template, merged))

    def nginx_argv(self, name, conf):
        return ["nginx", "-p", str(self.tmp), "-e", f"{self.tmp}/{name}.error.log",
                "-c", conf, "-g", "daemon off;"]

    def start_backends(self):
        conf = self.config("backends.conf", NAME="backends", WORKER_CONNECTIONS=self.nofile)
        self.procs.start("backends", self.nginx_argv("backends", conf))
        wait_ready(self.procs, "backends", f"http://127.0.0.1:{self.port['status']}/status")
        for b in BACKENDS:
            wait_ready(self.procs, "backends", f"http://127.0.0.1:{self.port[b]}/v/val0/run")

    def start_proxy(self, name, idle=0):
        """Starts one proxy; idle > 0 raises its connection limits above that many."""
        port, limit = self.port[name], idle + IDLE_MARGIN if idle else 4096
        tls_port = self.port[f"{name}_tls"]
        if name in ("ringward", "baseline"):
            binary = RINGWARD if name == "ringward" else self.baseline
            extra = self.baseline_toml if name == "baseline" else ""
            if self.tls:
                extra += ringward_tls_toml(tls_port, self.tls)
            conf = self.config(
                "ringward.toml", PORT=port, FILE=f"{name}.toml",
                ADMIN_PORT=self.port["admin" if name == "ringward" else "admin_base"],
                LISTEN="\n".join(filter(None, [
                    'header_read_timeout = "60s"' if idle else "",
                    self.baseline_listen if name == "baseline" else ""])),
                IDLE_LIMITS=f"[limits]\nmax_connections = {limit}" if idle else "",
                EXTRA=extra)
            check = subprocess.run([str(binary), "check", "--config", conf],
                                   capture_output=True, text=True)
            if check.returncode != 0:
                said = f"{check.stdout}{check.stderr}".strip()
                if self.tls and "listen.tls" in said:
                    raise BenchError(
                        f"{binary} has no TLS termination: `ringward check` refused the "
                        f"[listen.tls] section ({said}). Build one that has it, or measure "
                        f"the peers alone: --tls --only nginx,haproxy")
                raise BenchError(f"ringward check refused it:\n{said}")
            argv = [str(binary), "run", "--config", conf]
        elif name == "nginx":
            # nginx counts upstream connections too, and closes idle keep-alive ones once
            # fewer than 1/16 of its slots are free: twice the limit keeps all N open.
            conf = self.config("nginx.conf", NAME="nginx", PORT=port,
                               WORKER_CONNECTIONS=2 * limit if idle else limit)
            if self.tls:
                Path(conf).write_text(nginx_tls(Path(conf).read_text(), port, tls_port, self.tls))
            argv = self.nginx_argv("nginx", conf)
        else:
            conf = self.config("haproxy.cfg", PORT=port, MAXCONN=limit)
            if self.tls:
                Path(conf).write_text(haproxy_tls(Path(conf).read_text(), port, tls_port,
                                                  self.tls))
            argv = ["haproxy", "-db", "-f", conf]
        self.procs.start(name, argv)
        wait_ready(self.procs, name, f"http://127.0.0.1:{port}/v/val0/run")
        if self.tls:
            wait_ready(self.procs, name, f"https://127.0.0.1:{tls_port}/v/val0/run",
                       ctx=self.tls["ctx"])

    def pids(self, name):
        return [] if name == "ceiling" else process_tree(self.procs.running[name].pid)

    def accepts(self):
        """The backends' accepted connections so far (this read's own included)."""
        body = http_get(f"http://127.0.0.1:{self.port['status']}/status")[2].decode()
        return int(body.splitlines()[2].split()[0])

    def verify_routing(self, name, sample=40, tls=False):
        """Every path answers 200, and through a proxy a path always lands on one backend
        (tls: through its TLS listener, the certificate verified)."""
        seen, ctx = {}, self.tls["ctx"] if tls else None
        base = (f"https://127.0.0.1:{self.port[name + '_tls']}" if tls
                else f"http://127.0.0.1:{self.port[name]}")
        for path in PATHS[:sample] * 3:
            status, backend, _ = http_get(f"{base}{path}", ctx=ctx)
            if status != 200:
                raise BenchError(f"{name}: GET {path} answered {status}, expected 200")
            if seen.setdefault(path, backend) != backend:
                raise BenchError(f"{name}: {path} went to {seen[path]}, then to {backend}")
        used = sorted(set(seen.values()))
        if name != "ceiling" and len(used) < 2:
            raise BenchError(f"{name}: {sample} paths all went to {used}: not hashing by path")
        return used


# ---------------------------------------------------------------- load

def run_wrk(port, conns, duration, lua, scheme="http"):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "5s",
            "-s", lua, f"{scheme}://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            w = json.loads(line[6:])
            w["rps"] = w["requests"] / (w["duration_us"] / 1e6)
            w["errors"] = w["non2xx"] + w["socket_errors"]
            return w
    raise BenchError(f"wrk gave no result ({' '.join(argv)}):\n{out.stdout}{out.stderr}")


def measure(session, name, conns, args, lua):
    """One unmeasured warm-up, then one measured wrk run through target `name`."""
    port, pids = session.port[name], session.pids(name)
    run_wrk(port, conns, args.warmup, lua)
    sampler = RssSampler(pids, 0.5)
    accepts0, usage0 = session.accepts(), cpu_usage(pids)
    sampler.start()
    try:
        w = run_wrk(port, conns, args.duration, lua)
    finally:
        rss = sampler.stop()
    user, system, preempted = (b - a for a, b in zip(usage0, cpu_usage(pids)))
    cpu = user + system
    opened = session.accepts() - accepts0 - 1  # minus the second stub_status read itself

    def per_request(value, scale=1):
        return value * scale / w["requests"] if pids and w["requests"] else None

    return {"target": name, "conns": conns, "requests": w["requests"], "rps": w["rps"],
            "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000,
            "cpu_s": cpu if pids else None,
            "req_per_cpu_s": w["requests"] / cpu if pids and cpu > 0 else None,
            "user_us": per_request(user, 1e6), "kernel_us": per_request(system, 1e6),
            "preempted": per_request(preempted),
            "rss_mb": max(rss) / 1024 if pids else None,
            "reconnects_per_1000": opened / max(w["requests"], 1) * 1000, "errors": w["errors"]}


def main_runs(session, args, lua):
    targets, runs, t0 = args.targets, [], time.monotonic()
    total = args.rounds * len(args.conns) * len(targets)
    for rnd in range(args.rounds):
        order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
        for conns in args.conns:
            for name in order:
                r = dict(measure(session, name, conns, args, lua), round=rnd + 1)
                runs.append(r)
                eta = (time.monotonic() - t0) / len(runs) * (total - len(runs))
                print(f"[{len(runs)}/{total}] round {rnd + 1} {name:8} c={conns:<4} "
                      f"{r['rps']:8.0f} req/s  p99 {r['p99_ms']:6.2f} ms  "
                      f"errors {r['errors']}  (about {eta:.0f} s left)", flush=True)
    return runs


def medians(runs):
    """One row per (connections, target): the median of each figure over the rounds."""
    groups = {}
    for r in runs:
        groups.setdefault((r["conns"], TARGETS.index(r["target"])), []).append(r)
    rows = []
    for (conns, t), rs in sorted(groups.items()):
        row = {"target": TARGETS[t], "conns": conns, "rounds": len(rs),
               "errors": sum(r["errors"] for r in rs)}
        for key in ("rps", "p50_ms", "p99_ms", "req_per_cpu_s", "rss_mb", "reconnects_per_1000",
                    "user_us", "kernel_us", "preempted"):
            values = [r[key] for r in rs if r[key] is not None]
            row[key] = statistics.median(values) if values else None
        rows.append(row)
    return rows


# ---------------------------------------------------------------- optional modes

async def hold_idle(port, n, pids, concurrency=256):
    """Opens n keep-alive connections with one request each and holds them; RSS before/after."""
    before, gate, held, statuses = rss_kib(pids), asyncio.Semaphore(concurrency), [], {}

    async def one(i):
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            held.append((reader, writer))
            path = PATHS[i % len(PATHS)]
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            status = int(head.split(b" ", 2)[1])
            statuses[status] = statuses.get(status, 0) + 1

    t0 = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    open_s = time.monotonic() - t0
    await asyncio.sleep(1.0)
    after = rss_kib(pids)
    still_open = sum(1 for reader, _ in held if not reader.at_eof())
    for _, writer in held:
        writer.close()
    return {"connections": n, "failed": sum(isinstance(r, Exception) for r in results),
            "statuses": statuses, "open_s": open_s, "still_open": still_open,
            "rss_before_mb": before / 1024, "rss_after_mb": after / 1024,
            "kib_per_conn": (after - before) / n}


def idle_mode(session, args):
    """Each proxy restarted with limits above N, then N idle connections held open."""
    out = []
    for name in [t for t in args.targets if t != "ceiling"]:
        session.procs.stop(name)
        session.start_proxy(name, idle=args.idle)
        for path in PATHS[:20]:
            http_get(f"http://127.0.0.1:{session.port[name]}{path}")
        time.sleep(0.5)
        hold = hold_idle(session.port[name], args.idle, session.pids(name))
        r = dict(asyncio.run(asyncio.wait_for(hold, 300)), target=name)
        out.append(r)
        print(f"idle {name:8} {r['kib_per_conn']:.2f} KiB per connection ({r['still_open']}/"
              f"{args.idle} open, opened in {r['open_s']:.1f} s, {r['failed']} failed, "
              f"statuses {r['statuses']})", flush=True)
        session.procs.stop(name)
    return out


def soak_mode(session, args, lua):
    """One long run through Ringward at 256 connections, RSS every 5 s."""
    pids = session.pids("ringward")
    run_wrk(session.port["ringward"], 256, args.warmup, lua)
    sampler = RssSampler(pids, 5.0)
    sampler.start()
    try:
        w = run_wrk(session.port["ringward"], 256, args.soak, lua)
    finally:
        mb = [s / 1024 for s in sampler.stop()]
    r = {"seconds": args.soak, "rps": w["rps"], "p99_ms": w["p99_us"] / 1000,
         "errors": w["errors"], "rss_first_mb": mb[0], "rss_last_mb": mb[-1],
         "rss_max_mb": max(mb), "rss_samples_mb": mb}
    print(f"soak ringward {args.soak} s: RSS first {mb[0]:.1f} MB, last {mb[-1]:.1f} MB, "
          f"max {max(mb):.1f} MB; {w['rps']:.0f} req/s, errors {w['errors']}", flush=True)
    return r


def run_h2load(duration, uris):
    """(req/s, succeeded, failed) of h2load over h2c with prior knowledge."""
    argv = ["h2load", "-c", "64", "-m", "10", "-t", "1", "-D", str(duration), "-i", uris]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    rate = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    counts = re.search(r"(\d+) succeeded, (\d+) failed", out)
    if not rate or not counts:
        raise BenchError(f"h2load gave no result ({' '.join(argv)}):\n{out}")
    return float(rate.group(1)), int(counts.group(1)), int(counts.group(2))


def h2_mode(session, args):
    ports = {"ringward": session.port["ringward"], "haproxy": session.port["h2"]}
    out = []
    for name in [t for t in args.targets if t in ports]:
        uris = session.write(f"{name}.uris",
                             "".join(f"http://127.0.0.1:{ports[name]}{p}\n" for p in PATHS))
        run_h2load(args.warmup, uris)
        pids = session.pids(name)
        cpu0 = cpu_seconds(pids)
        rps, ok, failed = run_h2load(args.duration, uris)
        cpu = cpu_seconds(pids) - cpu0
        r = {"target": name, "rps": rps, "succeeded": ok, "failed": failed,
             "req_per_cpu_s": ok / cpu if cpu > 0 else None}
        out.append(r)
        print(f"h2 {name:8} {rps:.0f} req/s, {fmt(r['req_per_cpu_s'], '.0f')} req per CPU-s, "
              f"failed {failed}", flush=True)
    return out


def tls_probe(port, ctx):
    """(version, ALPN protocol, cipher) of one TLS handshake with ctx to 127.0.0.1:port."""
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            return conn.version(), conn.selected_alpn_protocol(), conn.cipher()[0]


def check_tls(session, name):
    """The TLS listener's contract: ALPN h2 when offered h2,http/1.1; TLS 1.2 and 1.3 each."""
    port, cafile = session.port[f"{name}_tls"], session.tls["cert"]
    probes = {
        "h2": client_context(cafile, alpn=("h2", "http/1.1")),
        "TLSv1.2": client_context(cafile, versions=(None, ssl.TLSVersion.TLSv1_2)),
        "TLSv1.3": client_context(cafile, versions=(ssl.TLSVersion.TLSv1_3, None)),
    }
    got = {}
    for want, ctx in probes.items():
        try:
            got[want] = tls_probe(port, ctx)
        except (OSError, ssl.SSLError) as e:
            raise BenchError(f"{name}: TLS handshake on 127.0.0.1:{port} ({want}) failed: {e}\n"
                             f"{session.procs.log_tail(name)}")
    if got["h2"][1] != "h2":
        raise BenchError(f"{name}: offered ALPN h2,http/1.1, it chose {got['h2'][1]}, not h2")
    for want in ("TLSv1.2", "TLSv1.3"):
        if got[want][0] != want:
            raise BenchError(f"{name}: asked for {want} only, it negotiated {got[want][0]}")
    return {"alpn": got["h2"][1], "tls12": got["TLSv1.2"][2], "tls13": got["TLSv1.3"][2]}


def h2load_figures(argv, timeout):
    """h2load's figures: run time, requests by outcome and status class, what TLS it had."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"h2load did not finish within {timeout} s ({' '.join(argv)})") from None
    text = out.stdout + out.stderr
    took = re.search(r"finished in ([\d.]+)(us|ms|s|min)\b", text)
    counts = re.search(r"(\d+) succeeded, (\d+) failed", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not took or not counts or not codes:
        raise BenchError(f"h2load gave no result ({' '.join(argv)}):\n{text}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}[took.group(2)]
    fields = {key: (m.group(1) if (m := re.search(rf"^{label}: (.+)$", text, re.M)) else None)
              for key, label in (("protocol", "TLS Protocol"), ("cipher", "Cipher"),
                                 ("key_exchange", "Server Temp Key"),
                                 ("alpn", "Application protocol"))}
    ok = int(codes.group(1)) + int(codes.group(2))
    return {"seconds": float(took.group(1)) * scale, "ok": ok,
            "errors": int(counts.group(2)) + int(codes.group(3)) + int(codes.group(4)),
            "tls": fields, "argv": argv}


def expect_tls(h, alpn, name):
    if h["tls"]["protocol"] is None or h["tls"]["alpn"] != alpn:
        raise BenchError(f"{name}: h2load expected TLS with ALPN {alpn}, had TLS "
                         f"{h['tls']['protocol']}, ALPN {h['tls']['alpn']} "
                         f"({' '.join(h['argv'])})")


def full_handshakes(session, name, port, seconds):
    """Batches of HANDSHAKE_BATCH h2load clients, each one connection with a new TLS session
    (a full handshake) and one HTTP/1.1 request, until `seconds` have passed."""
    deadline, done, took, errors, tls = time.monotonic() + seconds, 0, 0.0, 0, None
    while time.monotonic() < deadline:
        path = PATHS[session.next_path % len(PATHS)]
        session.next_path += 1
        h = h2load_figures(["h2load", "--h1", "-t", "1", "-c", str(HANDSHAKE_BATCH),
                            "-n", str(HANDSHAKE_BATCH), "-N", "5",
                            f"https://127.0.0.1:{port}{path}"], timeout=30)
        expect_tls(h, "http/1.1", name)
        done, took, errors, tls = (done + h["ok"], took + h["seconds"], errors + h["errors"],
                                   h["tls"])
    return {"requests": done, "rps": done / took if took else 0.0, "errors": errors, "tls": tls}


def h2_over_tls(session, name, port, seconds):
    """h2load over TLS with ALPN h2: H2_CLIENTS connections, H2_STREAMS streams each."""
    uris = session.write(f"{name}.tls.uris",
                         "".join(f"https://127.0.0.1:{port}{p}\n" for p in PATHS))
    h = h2load_figures(["h2load", "-c", str(H2_CLIENTS), "-m", str(H2_STREAMS), "-t", "1",
                        "-D", str(seconds), "-i", uris], timeout=seconds + 30)
    expect_tls(h, "h2", name)
    return {"requests": h["ok"], "rps": h["ok"] / h["seconds"] if h["seconds"] else 0.0,
            "errors": h["errors"], "tls": h["tls"]}


def tls_measure(session, name, test, conns, args, lua):
    """One unmeasured warm-up, then one measured run of test through name's TLS listener."""
    port, pids = session.port[f"{name}_tls"], session.pids(name)

    def load(seconds):
        if test == "keepalive":
            w = run_wrk(port, conns, seconds, lua, scheme="https")
            return {"requests": w["requests"], "rps": w["rps"], "errors": w["errors"],
                    "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000}
        if test == "handshake":
            return full_handshakes(session, name, port, seconds)
        return h2_over_tls(session, name, port, seconds)

    load(args.warmup)
    sampler = RssSampler(pids, 0.5)
    cpu0 = cpu_seconds(pids)
    sampler.start()
    try:
        r = load(args.duration)
    finally:
        rss = sampler.stop()
    cpu = cpu_seconds(pids) - cpu0
    return {"test": test, "target": name, "conns": conns, "requests": r["requests"],
            "rps": r["rps"], "p50_ms": r.get("p50_ms"), "p99_ms": r.get("p99_ms"), "cpu_s": cpu,
            "req_per_cpu_s": r["requests"] / cpu if cpu > 0 else None,
            "rss_mb": max(rss) / 1024, "errors": r["errors"], "tls": r.get("tls")}


def tls_tests(args):
    """(test, connections) in the order each round runs them."""
    return ([("keepalive", c) for c in args.conns]
            + [("handshake", HANDSHAKE_BATCH), ("h2", H2_CLIENTS)])


def tls_runs(session, args, lua):
    targets, tests, runs, t0 = args.tls_targets, tls_tests(args), [], time.monotonic()
    total = args.rounds * len(tests) * len(targets)
    for rnd in range(args.rounds):
        order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
        for test, conns in tests:
            for name in order:
                r = dict(tls_measure(session, name, test, conns, args, lua), round=rnd + 1)
                runs.append(r)
                eta = (time.monotonic() - t0) / len(runs) * (total - len(runs))
                print(f"[{len(runs)}/{total}] round {rnd + 1} {name:8} {tls_label(test, conns):30} "
                      f"{r['rps']:8.0f} /s  {fmt(r['req_per_cpu_s'], '7.0f')} per CPU-s  "
                      f"errors {r['errors']}  (about {eta:.0f} s left)", flush=True)
    return runs


def tls_label(test, conns):
    return {"keepalive": f"h1 keep-alive, {conns} conns",
            "handshake": f"full handshakes, {conns} a batch",
            "h2": f"h2, {conns} conns x {H2_STREAMS} streams"}[test]


def tls_medians(runs):
    """One row per (test, connections, target): the median of each figure over the rounds."""
    tests = list(dict.fromkeys((r["test"], r["conns"]) for r in runs))
    groups = {}
    for r in runs:
        groups.setdefault((tests.index((r["test"], r["conns"])), TARGETS.index(r["target"])),
                          []).append(r)
    rows = []
    for (i, t), rs in sorted(groups.items()):
        row = {"test": tests[i][0], "conns": tests[i][1], "target": TARGETS[t],
               "rounds": len(rs), "errors": sum(r["errors"] for r in rs)}
        for key in ("rps", "p50_ms", "p99_ms", "req_per_cpu_s", "rss_mb"):
            values = [r[key] for r in rs if r[key] is not None]
            row[key] = statistics.median(values) if values else None
        rows.append(row)
    return rows


def tls_mode(session, args, lua):
    """The certificate, each proxy with its TLS listener checked, then the interleaved runs."""
    session.tls = make_certificate(session.tmp)
    checked = {}
    for name in args.tls_targets:
        session.start_proxy(name)
        used = session.verify_routing(name, tls=True)
        checked[name] = check_tls(session, name)
        c = checked[name]
        print(f"{name:8} https://127.0.0.1:{session.port[name + '_tls']}: all 200, each path on "
              f"one backend (used: {','.join(used)}); ALPN h2; TLSv1.2 ({c['tls12']}) and "
              f"TLSv1.3 ({c['tls13']})", flush=True)
    print(f"{args.rounds} round(s) x {len(tls_tests(args))} test(s) x {len(args.tls_targets)} "
          f"target(s) x ({args.warmup} s warm-up + {args.duration} s)", flush=True)
    runs = tls_runs(session, args, lua)
    return {"runs": runs, "medians": tls_medians(runs), "checked": checked,
            "certificate": "ECDSA P-256, self-signed, CN localhost, SAN localhost and 127.0.0.1"}


# ---------------------------------------------------------------- report

def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def vs_best_peer(row, rows, group):
    """row's req/s and requests per CPU-second over the best peer's among the rows of its group
    (None where there is nothing to compare)."""
    peers = [r for r in rows if group(r) == group(row) and r["target"] in PEERS]
    best_rps = max((r["rps"] for r in peers), default=None)
    best_cpu = max((r["req_per_cpu_s"] for r in peers if r["req_per_cpu_s"]), default=None)
    vs_rps = row["rps"] / best_rps if best_rps else None
    vs_cpu = row["req_per_cpu_s"] / best_cpu if best_cpu and row["req_per_cpu_s"] else None
    return vs_rps, vs_cpu


def main_table(rows):
    lines = ["| proxy | conns | req/s | vs best peer | p50 ms | p99 ms | req per CPU-s | vs best peer "
             "| RSS MB | reconnects /1000 | errors |", "|" + "---|" * 11]
    for row in rows:
        vs_rps, vs_cpu = vs_best_peer(row, rows, lambda r: r["conns"])
        lines.append(
            f"| {row['target']} | {row['conns']} | {row['rps']:.0f} | {fmt(vs_rps, '.2f')} "
            f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {fmt(row['req_per_cpu_s'], '.0f')} "
            f"| {fmt(vs_cpu, '.2f')} | {fmt(row['rss_mb'], '.1f')} "
            f"| {row['reconnects_per_1000']:.2f} | {row['errors']} |")
    return "\n".join(lines)


def cpu_split_table(rows):
    rows = [r for r in rows if r.get("user_us") is not None]
    lines = ["Where each proxy's CPU goes, per request (medians; utime, stime and "
             "`nonvoluntary_ctxt_switches` of its processes and threads from /proc, over the "
             "measured run):", "",
             "| proxy | conns | user µs | kernel µs | involuntary context switches |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['conns']} | {r['user_us']:.1f} | {r['kernel_us']:.1f} "
              f"| {r['preempted']:.3f} |" for r in rows]
    return "\n".join(lines)


def idle_table(rows):
    n = rows[0]["connections"]
    limit = n + IDLE_MARGIN
    lines = [f"Idle keep-alive connections (`--idle`): {n} opened, one request each, then held. "
             f"For this mode only each proxy is restarted with its connection limit at {limit}: "
             f"Ringward `limits.max_connections = {limit}` (and `listen.header_read_timeout = "
             f"\"60s\"`, so none is closed while the others open), HAProxy `maxconn {limit}`, nginx "
             f"`worker_connections {2 * limit}` (its slots hold upstream connections too, and it "
             f"closes idle ones when fewer than 1/16 are free; they are allocated at start, so "
             f"they are in its RSS before).", "",
             "| proxy | KiB per connection | RSS before -> after, MB | still open | failed |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['kib_per_conn']:.2f} | {r['rss_before_mb']:.1f} -> "
              f"{r['rss_after_mb']:.1f} | {r['still_open']}/{n} | {r['failed']} |" for r in rows]
    return "\n".join(lines)


def h2_table(rows):
    lines = ["h2c with prior knowledge (`h2load -c 64 -m 10 -t 1 -D <duration>`, the same 1000 "
             "paths; HAProxy on a `proto h2` bind):", "",
             "| proxy | req/s | req per CPU-s | failed |", "|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['rps']:.0f} | {fmt(r['req_per_cpu_s'], '.0f')} "
              f"| {r['failed']} |" for r in rows]
    return "\n".join(lines)


def tls_table(res):
    t = res["tls"]
    rows = t["medians"]
    seen = {}
    for r in t["runs"]:
        if r["tls"]:
            key = (r["tls"]["protocol"], r["tls"]["cipher"], r["tls"]["key_exchange"])
            seen.setdefault(key, set()).add(r["target"])
    had = "; ".join(f"{', '.join(k)}" + ("" if len(seen) == 1 else f" ({', '.join(sorted(v))})")
                    for k, v in seen.items())
    lines = [f"TLS termination (`--tls`), one {t['certificate']} certificate for every proxy. "
             f"nginx and HAProxy with Mozilla's intermediate settings (TLS 1.2 and 1.3, "
             f"session cache on, tickets off; nginx `listen ... ssl http2`, HAProxy "
             f"`bind ... ssl crt ... alpn h2,http/1.1`), Ringward with its defaults and "
             f"`[listen.tls]`. **h1 keep-alive**: wrk over https, as the main table. **full "
             f"handshakes**: h2load `--h1 -c {HANDSHAKE_BATCH} -n {HANDSHAKE_BATCH}` batch after "
             f"batch: each connection a fresh TLS session (no resumption offered), one request, "
             f"then closed; the rate is handshakes per second of h2load's run time. **h2**: "
             f"h2load `-c {H2_CLIENTS} -m {H2_STREAMS}` with ALPN h2, the 1000 paths. "
             f"Negotiated by h2load: {had or '-'}.", "",
             "| test | proxy | req/s (handshakes/s) | vs best peer | p50 ms | p99 ms "
             "| req per CPU-s | vs best peer | RSS MB | errors |", "|" + "---|" * 10]
    for row in rows:
        vs_rps, vs_cpu = vs_best_peer(row, rows, lambda r: (r["test"], r["conns"]))
        lines.append(
            f"| {tls_label(row['test'], row['conns'])} | {row['target']} | {row['rps']:.0f} "
            f"| {fmt(vs_rps, '.2f')} | {fmt(row['p50_ms'], '.2f')} | {fmt(row['p99_ms'], '.2f')} "
            f"| {fmt(row['req_per_cpu_s'], '.0f')} | {fmt(vs_cpu, '.2f')} "
            f"| {fmt(row['rss_mb'], '.1f')} | {row['errors']} |")
    return "\n".join(lines)


def report(res):
    if res.get("tls"):
        return tls_table(res)
    parts = [main_table(res["medians"]), cpu_split_table(res["medians"])]
    if res.get("idle"):
        parts.append(idle_table(res["idle"]))
    if res.get("h2"):
        parts.append(h2_table(res["h2"]))
    if res.get("soak"):
        s = res["soak"]
        parts.append(f"Soak, Ringward at 256 connections for {s['seconds']} s, RSS every 5 s: "
                     f"first {s['rss_first_mb']:.1f} MB, last {s['rss_last_mb']:.1f} MB, max "
                     f"{s['rss_max_mb']:.1f} MB; {s['rps']:.0f} req/s, {s['errors']} errors.")
    return "\n\n".join(parts)


def versions():
    def first_line(argv, cwd=None):
        out = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    rev = first_line(["git", "rev-parse", "--short", "HEAD"], cwd=REPO)
    built = (first_line([str(RINGWARD), "--version"]) if RINGWARD.exists()
             else "ringward (not built)")
    return {"ringward": f"{built} (git {rev}{' with uncommitted changes' if dirty else ''})",
            "nginx": first_line(["nginx", "-v"]).replace("nginx version: ", ""),
            "haproxy": first_line(["haproxy", "-v"]).split(" - ")[0],
            "wrk": first_line(["wrk", "-v"]).split(" [")[0],
            "h2load": first_line(["h2load", "--version"]),
            "openssl": first_line(["openssl", "version"]) if shutil.which("openssl") else "-",
            "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}"}


def add_tls_markers(doc):
    """doc with an empty TLS section at the end of the bench-peers one (before the next `## `)."""
    heading = re.search(r"(?m)^## .*make bench-peers.*\n", doc)
    if heading is None:
        raise BenchError(f"{DOCS} has no `## ... (`make bench-peers`)` section to add "
                         f"{TLS_BEGIN} ... {TLS_END} to")
    following = re.search(r"(?m)^## ", doc[heading.end():])
    at = heading.end() + following.start() if following else len(doc)
    head = doc[:at].rstrip("\n") + "\n\n"
    tail = "\n" + doc[at:] if following else ""
    return f"{head}{TLS_HEADING}\n\n{TLS_BEGIN}\n{TLS_END}\n{tail}"


def write_docs(res, text):
    """Rewrites the measured part of the bench-peers section (--tls: of its TLS section)."""
    begin, end = (TLS_BEGIN, TLS_END) if res.get("tls") else (BEGIN, END)
    doc = DOCS.read_text()
    if res.get("tls") and (TLS_BEGIN not in doc or TLS_END not in doc):
        doc = add_tls_markers(doc)
    if begin not in doc or end not in doc:
        raise BenchError(f"{DOCS} has no {begin} ... {end} section")
    v = res["versions"]
    section = (f"{begin}\nMeasured {res['date']} with `{res['command']}` ({res['rounds']} "
               f"round(s) of {res['duration']} s, median; {v['machine']}). Versions: "
               f"{v['ringward']}; {v['nginx']}; {v['haproxy']}; {v['wrk']}; {v['h2load']}"
               f"{'; ' + v['openssl'] if res.get('tls') else ''}.\n\n{text}\n{end}")
    head, rest = doc.split(begin, 1)
    DOCS.write_text(head + section + rest.split(end, 1)[1])
    print(f"wrote the measured {'TLS ' if res.get('tls') else ''}section of {DOCS}")


# ---------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, help="seconds per measured run (10; with --tls 6)")
    p.add_argument("--warmup", type=int,
                   help="seconds of unmeasured warm-up per run (2; with --tls 1)")
    p.add_argument("--conns", default="64,256", help="wrk connection counts, comma-separated")
    p.add_argument("--only", default=",".join(TARGETS), help="some of " + ",".join(TARGETS))
    p.add_argument("--idle", type=int, nargs="?", const=10000, default=0, metavar="N",
                   help="RSS per idle keep-alive connection, N connections (default 10000)")
    p.add_argument("--soak", type=int, default=0, metavar="SECONDS",
                   help="one long run through Ringward at 256 connections, RSS every 5 s")
    p.add_argument("--h2", action="store_true", help="h2load over h2c: Ringward and HAProxy")
    p.add_argument("--tls", action="store_true",
                   help="instead of the plaintext runs, TLS termination (one ECDSA P-256 "
                        "certificate): h1 keep-alive req/s (wrk over https), full handshakes "
                        "per second (h2load, one request per connection) and h2 over TLS "
                        "(ALPN h2), each per proxy CPU-second; the ceiling is left out")
    p.add_argument("--smoke", action="store_true", help="2 s runs, 1 round, 64 connections")
    p.add_argument("--write-docs", action="store_true", help=f"rewrite the section in {DOCS.name} (with --tls, its TLS section)")
    p.add_argument("--no-build", action="store_true", help="use target/release/ringward as it is")
    p.add_argument("--baseline", metavar="BINARY",
                   help="another ringward binary run as the target 'baseline' (before/after)")
    p.add_argument("--baseline-toml", default="", metavar="TOML",
                   help="config lines for the baseline only, \\n for newlines: "
                        "--baseline target/release/ringward --baseline-toml "
                        "'[access_log]\\nenabled = false' measures a setting")
    p.add_argument("--baseline-listen", default="", metavar="TOML",
                   help="lines for the baseline's [listen] table only, \\n for newlines: "
                        "--baseline target/release/ringward --baseline-listen 'workers = 1'")
    p.add_argument("--out", default=str(REPO / "target/bench-peers"), help="JSON results directory")
    args = p.parse_args()
    if args.duration is None:
        args.duration = 6 if args.tls else 10
    if args.warmup is None:
        args.warmup = 1 if args.tls else 2
    if args.smoke:
        args.rounds, args.duration, args.warmup, args.conns = 1, 2, 1, "64"
    only = args.only.split(",")
    if args.baseline and "baseline" not in only:
        only.append("baseline")
    args.targets = [t for t in TARGETS if t in only and (t != "baseline" or args.baseline)]
    args.conns = [int(c) for c in args.conns.split(",") if c]
    if set(only) - set(TARGETS) or not args.targets:
        p.error(f"--only takes some of {','.join(TARGETS)}")
    if (args.soak or args.h2) and "ringward" not in args.targets:
        p.error("--soak and --h2 need ringward among the targets")
    args.tls_targets = [t for t in args.targets if t != "ceiling"]
    if args.tls and (args.idle or args.soak or args.h2):
        p.error("--tls is a mode of its own: run --idle, --soak and --h2 without it")
    if args.tls and not args.tls_targets:
        p.error("--tls measures proxies: --only needs one of ringward,baseline,nginx,haproxy")
    return args


def run(args, tmp):
    ensure_tools(dict(TOOLS, **TLS_TOOLS) if args.tls else TOOLS)
    if "ringward" in args.targets:
        build_ringward(args.no_build)
    nofile = raise_fd_limit()
    if args.idle > nofile // 2 - IDLE_MARGIN - 100:
        # HAProxy wants two descriptors per connection of its maxconn, within this limit.
        args.idle = nofile // 2 - IDLE_MARGIN - 100
        print(f"--idle lowered to {args.idle}: HAProxy needs 2 x maxconn open files and the "
              f"open-file hard limit is {nofile}", flush=True)
    session = Session(tmp, nofile)
    # The proxies run from a temporary directory: a relative path would not be found there.
    session.baseline = os.path.abspath(args.baseline) if args.baseline else None
    session.baseline_listen = args.baseline_listen.replace("\\n", "\n")
    session.baseline_toml = args.baseline_toml.replace("\\n", "\n")
    lua = str(HERE / "paths.lua")
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "command": " ".join(["python3 benches/peers/run.py"] + sys.argv[1:]),
           "rounds": args.rounds, "duration": args.duration, "versions": versions()}
    try:
        session.start_backends()
        if args.tls:
            res["tls"] = tls_mode(session, args, lua)
            return res
        for name in args.targets:
            if name != "ceiling":
                session.start_proxy(name)
            used = session.verify_routing(name)
            print(f"{name:8} 127.0.0.1:{session.port[name]}: all 200, each path on one backend "
                  f"(used: {','.join(used)})", flush=True)
        print(f"{args.rounds} round(s) x {len(args.conns)} connection count(s) x "
              f"{len(args.targets)} target(s) x ({args.warmup} s warm-up + {args.duration} s)",
              flush=True)
        res["runs"] = main_runs(session, args, lua)
        res["medians"] = medians(res["runs"])
        if args.h2:
            res["h2"] = h2_mode(session, args)
        if args.soak:
            res["soak"] = soak_mode(session, args, lua)
        if args.idle:
            res["idle"] = idle_mode(session, args)
    finally:
        session.procs.stop_all()
    return res


def interrupted(*_):
    raise KeyboardInterrupt


def main():
    args = parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in background
    signal.signal(signal.SIGTERM, interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        res = run(args, tmp)
    except BenchError as e:
        print(f"bench-peers: {e}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:
        print(f"bench-peers: `{' '.join(e.cmd)}` failed with {e.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-peers: interrupted; the processes it started are stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(res)
    print("\n" + text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"results-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nraw results: {path}")
    if args.write_docs:
        write_docs(res, text)
    runs = res["tls"]["runs"] if res.get("tls") else res["runs"]
    failed = [r for r in runs if r["errors"] or not r["requests"]]
    if args.smoke and failed:
        print(f"bench-peers: smoke failed: errors or no requests in {len(failed)} run(s)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
