#!/usr/bin/env python3
"""Memory under a burst of large replay uploads, against a running server.

Posts CLIENTS (64) replay chunks of about 4.5-5 MiB at once, each to its own
session, and reports the answers. With --pid (the server's process id) it
also reads VmRSS before the burst, VmHWM (peak RSS since start) after it,
and VmRSS again once the server is idle. It starts nothing itself: run a
release binary first, e.g.

    OBSERVER_DATA_DIR=$(mktemp -d) OBSERVER_RATE_LIMIT_PER_IP=0 \\
      OBSERVER_RATE_LIMIT_PER_SESSION=0 target/release/observer &
    python3 bench/replay_memory.py --pid $! --kind gzip-dom

Kinds of chunk (all valid rrweb):
  gzip-dom     page-like text, ~4.5 MiB of gzip that inflates ~10x (to ~45 MiB)
  gzip-random  random base64 (an inlined image), ~4.5 MiB of gzip, ~1.3x
  plain        random base64 sent as plain JSON, ~4.9 MiB

Standard library only, loopback only, bounded: one request per client
(plus at most --retries re-sends after a 503).
"""

import argparse
import base64
import collections
import gzip
import http.client
import json
import os
import random
import threading
import time
import urllib.parse

MIB = 1024 * 1024


def rrweb_chunk(payload_strings):
    """A Meta, a FullSnapshot whose text nodes carry the payload, a few moves."""
    nodes = [
        {"type": 3, "id": 10 + i, "textContent": text} for i, text in enumerate(payload_strings)
    ]
    events = [
        {"type": 4, "data": {"href": "https://bench.example/page", "width": 1280, "height": 800},
         "timestamp": 1_700_000_000_000},
        {"type": 2, "timestamp": 1_700_000_000_001, "data": {"node": {
            "type": 0, "id": 1, "childNodes": [
                {"type": 2, "tagName": "html", "id": 2, "attributes": {}, "childNodes": [
                    {"type": 2, "tagName": "body", "id": 3, "attributes": {"class": "bench"},
                     "childNodes": nodes}]}]},
            "initialOffset": {"left": 0, "top": 0}}},
    ]
    events += [{"type": 3, "timestamp": 1_700_000_000_002 + i,
                "data": {"source": 1, "positions": [{"x": i, "y": i, "id": 3, "timeOffset": 0}]}}
               for i in range(50)]
    return json.dumps(events, separators=(",", ":")).encode()


def make_body(kind, rng):
    if kind == "gzip-dom":
        # Sentences drawn from a small pool compress about 10x, like page text.
        words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                 for _ in range(300)]
        sentences = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(250)]
        texts, size = [], 0
        while size < 44 * MIB:
            text = " ".join(rng.choice(sentences) for _ in range(15)) + f" {rng.randrange(10**9)}"
            texts.append(text)
            size += len(text) + 40
        return gzip.compress(rrweb_chunk(texts), 6), "gzip"
    random_text = lambda n: base64.b64encode(rng.randbytes(n)).decode()
    if kind == "gzip-random":
        return gzip.compress(rrweb_chunk([random_text(45_000) for _ in range(100)]), 6), "gzip"
    if kind == "plain":
        return rrweb_chunk([random_text(36_000) for _ in range(100)]), "identity"
    raise SystemExit(f"unknown kind {kind}")


def vm(pid, field):
    if pid is None:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024  # kB -> MiB
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--pid", type=int, help="server process id, to read its RSS from /proc")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--kind", default="gzip-dom", choices=["gzip-dom", "gzip-random", "plain"])
    p.add_argument("--retries", type=int, default=0, help="re-sends after a 503 (honouring Retry-After)")
    p.add_argument("--settle", type=float, default=10.0, help="seconds to wait before the idle reading")
    p.add_argument("--key", help="ingest key (X-Observer-Key), if the server needs one")
    args = p.parse_args()

    url = urllib.parse.urlsplit(args.url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback addresses only")
    body, encoding = make_body(args.kind, random.Random(7))
    print(f"chunk: {args.kind}, {len(body) / MIB:.2f} MiB as sent, {args.clients} clients")

    idle_before = vm(args.pid, "VmRSS")
    barrier = threading.Barrier(args.clients)
    answers = collections.Counter()
    lock = threading.Lock()
    run = os.urandom(4).hex()

    def client(i):
        headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
        if args.key:
            headers["X-Observer-Key"] = args.key
        path = f"/api/observer/replay-events?session_id=bench-{run}-{i}&seq=0"
        barrier.wait()
        for attempt in range(args.retries + 1):
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=120)
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status, retry_after = resp.status, resp.getheader("Retry-After")
            except OSError as e:
                status, retry_after = type(e).__name__, None
            finally:
                conn.close()
            with lock:
                answers[status] += 1
            if status != 503 or attempt == args.retries:
                return
            time.sleep(float(retry_after or 1) * (1 + random.random()))

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    print(f"answers: {dict(sorted(answers.items(), key=str))} in {elapsed:.1f} s")
    if args.pid is not None:
        peak = vm(args.pid, "VmHWM")
        time.sleep(args.settle)
        print(f"RSS MiB: idle before {idle_before}, peak (VmHWM) {peak}, "
              f"idle {args.settle:.0f} s after {vm(args.pid, 'VmRSS')}")


if __name__ == "__main__":
    main()
