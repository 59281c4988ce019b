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
--smoke (2 s runs, one round, 64 connections; exits 1 unless every response is a 2xx).

Every process runs from a temporary directory on free 127.0.0.1 ports and is stopped at
the end, on errors and on Ctrl-C. Python 3 standard library only; nginx, haproxy, wrk and
h2load are installed with apt-get when missing.

    python3 benches/peers/run.py [--rounds 3] [--duration 10] [--conns 64,256] [--write-docs]
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


class BenchError(Exception):
    """A failure with a message for the user (printed without a traceback)."""


# ---------------------------------------------------------------- tools and processes

def ensure_tools():
    """Installs nginx, haproxy, wrk and h2load with apt-get when one is missing."""
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
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


def http_get(url, timeout=2.0):
    """(status, X-Backend, body) of one GET on a fresh connection."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.headers.get("X-Backend"), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("X-Backend"), e.read()


def wait_ready(procs, name, url, deadline_s=15.0):
    """Polls url until it answers 200; fails at once if the process exits."""
    proc, deadline, last = procs.running[name], time.monotonic() + deadline_s, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}:\n{procs.log_tail(name)}")
        try:
            last = http_get(url, timeout=1.0)[0]
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


def cpu_seconds(pids):
    """utime + stime of pids (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


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


# ---------------------------------------------------------------- the session

class Session:
    """The backends and the proxies under test, on free loopback ports, in a temp dir."""

    def __init__(self, tmp, nofile):
        self.tmp, self.nofile, self.procs = tmp, nofile, Procs(tmp)
        self.port = free_ports(BACKENDS + ["status", "admin", "admin_base", "h2"] + PROXIES)
        self.baseline, self.baseline_toml = None, ""
        self.port["ceiling"] = self.port["b1"]

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
        if name in ("ringward", "baseline"):
            binary = RINGWARD if name == "ringward" else self.baseline
            conf = self.config(
                "ringward.toml", PORT=port, FILE=f"{name}.toml",
                ADMIN_PORT=self.port["admin" if name == "ringward" else "admin_base"],
                IDLE_LISTEN='header_read_timeout = "60s"' if idle else "",
                IDLE_LIMITS=f"[limits]\nmax_connections = {limit}" if idle else "",
                EXTRA=self.baseline_toml if name == "baseline" else "")
            check = subprocess.run([str(binary), "check", "--config", conf],
                                   capture_output=True, text=True)
            if check.returncode != 0:
                raise BenchError(f"ringward check refused it:\n{check.stdout}{check.stderr}")
            argv = [str(binary), "run", "--config", conf]
        elif name == "nginx":
            # nginx counts upstream connections too, and closes idle keep-alive ones once
            # fewer than 1/16 of its slots are free: twice the limit keeps all N open.
            conf = self.config("nginx.conf", NAME="nginx", PORT=port,
                               WORKER_CONNECTIONS=2 * limit if idle else limit)
            argv = self.nginx_argv("nginx", conf)
        else:
            argv = ["haproxy", "-db", "-f", self.config("haproxy.cfg", PORT=port, MAXCONN=limit)]
        self.procs.start(name, argv)
        wait_ready(self.procs, name, f"http://127.0.0.1:{port}/v/val0/run")

    def pids(self, name):
        return [] if name == "ceiling" else process_tree(self.procs.running[name].pid)

    def accepts(self):
        """The backends' accepted connections so far (this read's own included)."""
        body = http_get(f"http://127.0.0.1:{self.port['status']}/status")[2].decode()
        return int(body.splitlines()[2].split()[0])

    def verify_routing(self, name, sample=40):
        """Every path answers 200, and through a proxy a path always lands on one backend."""
        seen = {}
        for path in PATHS[:sample] * 3:
            status, backend, _ = http_get(f"http://127.0.0.1:{self.port[name]}{path}")
            if status != 200:
                raise BenchError(f"{name}: GET {path} answered {status}, expected 200")
            if seen.setdefault(path, backend) != backend:
                raise BenchError(f"{name}: {path} went to {seen[path]}, then to {backend}")
        used = sorted(set(seen.values()))
        if name != "ceiling" and len(used) < 2:
            raise BenchError(f"{name}: {sample} paths all went to {used}: not hashing by path")
        return used


# ---------------------------------------------------------------- load

def run_wrk(port, conns, duration, lua):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "5s",
            "-s", lua, f"http://127.0.0.1:{port}/"]
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
    accepts0, cpu0 = session.accepts(), cpu_seconds(pids)
    sampler.start()
    try:
        w = run_wrk(port, conns, args.duration, lua)
    finally:
        rss = sampler.stop()
    cpu = cpu_seconds(pids) - cpu0
    opened = session.accepts() - accepts0 - 1  # minus the second stub_status read itself
    return {"target": name, "conns": conns, "requests": w["requests"], "rps": w["rps"],
            "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000,
            "cpu_s": cpu if pids else None,
            "req_per_cpu_s": w["requests"] / cpu if pids and cpu > 0 else None,
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
        for key in ("rps", "p50_ms", "p99_ms", "req_per_cpu_s", "rss_mb", "reconnects_per_1000"):
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


# ---------------------------------------------------------------- report

def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def main_table(rows):
    lines = ["| proxy | conns | req/s | vs best peer | p50 ms | p99 ms | req per CPU-s | vs best peer "
             "| RSS MB | reconnects /1000 | errors |", "|" + "---|" * 11]
    for row in rows:
        peers = [r for r in rows if r["conns"] == row["conns"] and r["target"] in PEERS]
        best_rps = max((r["rps"] for r in peers), default=None)
        best_cpu = max((r["req_per_cpu_s"] for r in peers if r["req_per_cpu_s"]), default=None)
        vs_rps = row["rps"] / best_rps if best_rps else None
        vs_cpu = row["req_per_cpu_s"] / best_cpu if best_cpu and row["req_per_cpu_s"] else None
        lines.append(
            f"| {row['target']} | {row['conns']} | {row['rps']:.0f} | {fmt(vs_rps, '.2f')} "
            f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {fmt(row['req_per_cpu_s'], '.0f')} "
            f"| {fmt(vs_cpu, '.2f')} | {fmt(row['rss_mb'], '.1f')} "
            f"| {row['reconnects_per_1000']:.2f} | {row['errors']} |")
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


def report(res):
    parts = [main_table(res["medians"])]
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
    return {"ringward": f"{first_line([str(RINGWARD), '--version'])} (git {rev}"
                        f"{' with uncommitted changes' if dirty else ''})",
            "nginx": first_line(["nginx", "-v"]).replace("nginx version: ", ""),
            "haproxy": first_line(["haproxy", "-v"]).split(" - ")[0],
            "wrk": first_line(["wrk", "-v"]).split(" [")[0],
            "h2load": first_line(["h2load", "--version"]),
            "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}"}


def write_docs(res, text):
    doc = DOCS.read_text()
    if BEGIN not in doc or END not in doc:
        raise BenchError(f"{DOCS} has no {BEGIN} ... {END} section")
    v = res["versions"]
    section = (f"{BEGIN}\nMeasured {res['date']} with `{res['command']}` ({res['rounds']} "
               f"round(s) of {res['duration']} s, median; {v['machine']}). Versions: "
               f"{v['ringward']}; {v['nginx']}; {v['haproxy']}; {v['wrk']}; {v['h2load']}.\n\n"
               f"{text}\n{END}")
    head, rest = doc.split(BEGIN, 1)
    DOCS.write_text(head + section + rest.split(END, 1)[1])
    print(f"wrote the measured section of {DOCS}")


# ---------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured warm-up per run")
    p.add_argument("--conns", default="64,256", help="wrk connection counts, comma-separated")
    p.add_argument("--only", default=",".join(TARGETS), help="some of " + ",".join(TARGETS))
    p.add_argument("--idle", type=int, nargs="?", const=10000, default=0, metavar="N",
                   help="RSS per idle keep-alive connection, N connections (default 10000)")
    p.add_argument("--soak", type=int, default=0, metavar="SECONDS",
                   help="one long run through Ringward at 256 connections, RSS every 5 s")
    p.add_argument("--h2", action="store_true", help="h2load over h2c: Ringward and HAProxy")
    p.add_argument("--smoke", action="store_true", help="2 s runs, 1 round, 64 connections")
    p.add_argument("--write-docs", action="store_true", help="rewrite the section in " + DOCS.name)
    p.add_argument("--no-build", action="store_true", help="use target/release/ringward as it is")
    p.add_argument("--baseline", metavar="BINARY",
                   help="another ringward binary run as the target 'baseline' (before/after)")
    p.add_argument("--baseline-toml", default="", metavar="TOML",
                   help="config lines for the baseline only, \\n for newlines: "
                        "--baseline target/release/ringward --baseline-toml "
                        "'[access_log]\\nenabled = false' measures a setting")
    p.add_argument("--out", default=str(REPO / "target/bench-peers"), help="JSON results directory")
    args = p.parse_args()
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
    return args


def run(args, tmp):
    ensure_tools()
    if "ringward" in args.targets:
        build_ringward(args.no_build)
    nofile = raise_fd_limit()
    if args.idle > nofile // 2 - IDLE_MARGIN - 100:
        # HAProxy wants two descriptors per connection of its maxconn, within this limit.
        args.idle = nofile // 2 - IDLE_MARGIN - 100
        print(f"--idle lowered to {args.idle}: HAProxy needs 2 x maxconn open files and the "
              f"open-file hard limit is {nofile}", flush=True)
    session = Session(tmp, nofile)
    session.baseline = args.baseline
    session.baseline_toml = args.baseline_toml.replace("\\n", "\n")
    lua = str(HERE / "paths.lua")
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "command": " ".join(["python3 benches/peers/run.py"] + sys.argv[1:]),
           "rounds": args.rounds, "duration": args.duration, "versions": versions()}
    try:
        session.start_backends()
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
    failed = [r for r in res["runs"] if r["errors"] or not r["requests"]]
    if args.smoke and failed:
        print(f"bench-peers: smoke failed: errors or no requests in {len(failed)} run(s)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
