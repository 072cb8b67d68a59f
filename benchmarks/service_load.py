"""Load test of ``wav2vec2 serve`` on loopback: N concurrent clients send real speech for a
bounded time (and request count); the report gives requests per second, p50/p95/p99
latency, every answer by status, and the service's memory over time.

The service runs as its own process (``wav2vec2 serve MODEL --queue Q``). The run has one
phase per entry of ``--clients`` (e.g. ``4,24``: first below the queue's capacity, then
above it), each ``--seconds`` long, against the same process, so memory is followed across
all of them. Each client is an asyncio task posting a clip to ``/v1/transcribe``, waiting
for the answer, and posting the next (after ``Retry-After`` when it got a 503). The clips
are real speech: a built corpus's utterances (``--corpus DIR/test.tsv``), or by default
sentences spoken by the built-in corpus's held-out TTS voices.

    .venv/bin/python benchmarks/service_load.py --clients 4,24 --seconds 60 \\
        --out benchmarks/results/service_load.json --plot docs/img/service_load.png

Below capacity (clients <= queue + 1) there must be no error at all; above it, only 503s.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import soundfile as sf

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from service_support import MODEL, served, speech, wav_bytes  # noqa: E402


def clips(corpus: Path | None, count: int) -> list[bytes]:
    """``count`` WAV files of real speech (16 kHz PCM)."""
    if corpus is not None:
        lines = corpus.read_text().splitlines()
        root = Path(lines[0])
        paths = [root / line.split("\t")[0] for line in lines[1 : count + 1]]
        return [wav_bytes(sf.read(p, dtype="float32")[0]) for p in paths]
    out = []
    for i in range(count):  # one or two sentences each, several voices
        wave = speech(1 + i % 2, voice_index=i % 3)
        out.append(wav_bytes(wave))
    return out


class Memory(threading.Thread):
    """The service's resident memory (MiB), sampled every ``every`` seconds."""

    def __init__(self, pid: int, start: float, every: float = 0.5):
        super().__init__(daemon=True)
        self.process, self.start_time, self.every = psutil.Process(pid), start, every
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                rss = self.process.memory_info().rss / 2**20
            except psutil.Error:
                return
            self.samples.append((time.monotonic() - self.start_time, rss))
            self.stopped.wait(self.every)


async def phase(url: str, data: list[bytes], clients: int, seconds: float, max_requests: int,
                start: float) -> list[tuple[float, float, int]]:  # fmt: skip
    """(sent at, latency, status) of every request of ``clients`` clients that send for
    ``seconds`` (the answers in flight then are waited for)."""
    results: list[tuple[float, float, int]] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def client(k: int) -> None:
            i = k
            while time.monotonic() < deadline and len(results) < max_requests:
                sent = time.monotonic()
                try:
                    r = await http.post("/v1/transcribe", content=data[i % len(data)],
                                        headers={"Content-Type": "audio/wav"})  # fmt: skip
                    status = r.status_code
                except httpx.TransportError:
                    status = 0  # no answer at all: counted as an error
                results.append((sent - start, time.monotonic() - sent, status))
                i += clients
                if status == 503:
                    await asyncio.sleep(float(r.headers.get("retry-after", 1)))

        await asyncio.gather(*(client(k) for k in range(clients)))
    return results


def summary(results: list[tuple[float, float, int]], clients: int, seconds: float) -> dict:
    statuses: dict[str, int] = {}
    for _, _, status in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    ok = np.array([lat for _, lat, s in results if s == 200])
    busy = np.array([lat for _, lat, s in results if s == 503])
    pct = lambda a, q: round(float(np.percentile(a, q)) * 1000, 1) if len(a) else None  # noqa: E731
    return {
        "clients": clients, "seconds": round(seconds, 1), "requests": len(results),
        "statuses": statuses,
        "ok_per_second": round(len(ok) / seconds, 2),
        "latency_ms": {"p50": pct(ok, 50), "p95": pct(ok, 95), "p99": pct(ok, 99)},
        "busy_latency_ms": {"p50": pct(busy, 50), "p99": pct(busy, 99)},
        "errors_other_than_503": sum(n for s, n in statuses.items() if s not in ("200", "503")),
    }  # fmt: skip


def plot(path: Path, results, memory, phases) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for status, colour in ((200, "tab:blue"), (503, "tab:red")):
        pts = [(t, lat) for t, lat, s in results if s == status]
        if pts:
            t, lat = zip(*pts)
            top.scatter(t, np.array(lat) * 1000, s=4, color=colour, label=f"{status}")
    top.set_ylabel("latency (ms)")
    top.set_yscale("log")
    top.legend(loc="lower right")
    for start, p in phases:
        top.axvline(start, color="grey", lw=0.8)
        top.annotate(f"{p['clients']} clients", (start, 1), xycoords=("data", "axes fraction"),
                     xytext=(3, -12), textcoords="offset points", fontsize=9)  # fmt: skip
    t, rss = zip(*memory)
    bottom.plot(t, rss, color="tab:green")
    bottom.set_ylabel("service RSS (MiB)")
    bottom.set_xlabel("time (s)")
    bottom.set_ylim(0, max(rss) * 1.15)
    fig.suptitle("wav2vec2 serve under load (loopback)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--threads", type=int, default=None, help="the service's --threads")
    p.add_argument("--clients", default="4,24", help="clients per phase, comma-separated")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    p.add_argument("--max-requests", type=int, default=100_000, help="per phase")
    p.add_argument("--queue", type=int, default=4, help="the service's --queue")
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--corpus", type=Path, default=None, help="a built corpus's test.tsv")
    p.add_argument("--out", type=Path, default=None, help="results as JSON")
    p.add_argument("--plot", type=Path, default=None, help="latency and memory (PNG)")
    args = p.parse_args(argv)
    data = clips(args.corpus, args.clips)
    seconds = [sf.info(io.BytesIO(d)).duration for d in data]
    phases, results = [], []
    flags = ["--queue", str(args.queue)]
    flags += [] if args.threads is None else ["--threads", str(args.threads)]
    with served(args.model, *flags) as (url, process):
        start = time.monotonic()
        memory = Memory(process.pid, start)
        memory.start()
        for clients in (int(c) for c in args.clients.split(",")):
            began = time.monotonic() - start
            got = asyncio.run(phase(url, data, clients, args.seconds, args.max_requests, start))
            results += got
            elapsed = time.monotonic() - start - began  # the last answers included
            phases.append((began, summary(got, clients, elapsed)))
        memory.stopped.set()
        memory.join()
    rss = [m for _, m in memory.samples]
    report = {
        "command": "benchmarks/service_load.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": str(args.model), "queue": args.queue,
        "clip_seconds": [round(s, 2) for s in seconds],
        "phases": [p for _, p in phases],
        "memory_mib": {"first": round(rss[0], 1), "max": round(max(rss), 1),
                       "last": round(rss[-1], 1), "samples": [
                           [round(t, 1), round(m, 1)] for t, m in memory.samples]},
    }  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        plot(args.plot, results, memory.samples, phases)
    print("| clients | requests | ok/s | p50 ms | p95 ms | p99 ms | statuses |")
    print("|---|---|---|---|---|---|---|")
    for _, s in phases:
        lat = s["latency_ms"]
        print(f"| {s['clients']} | {s['requests']} | {s['ok_per_second']} | {lat['p50']} | "
              f"{lat['p95']} | {lat['p99']} | {s['statuses']} |")  # fmt: skip
    m = report["memory_mib"]
    print(f"service RSS: first {m['first']} MiB, max {m['max']}, last {m['last']}")
    return report


if __name__ == "__main__":
    main()
