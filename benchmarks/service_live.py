"""Live transcription latency of ``wav2vec2 serve``: from a word being spoken to it
appearing in a partial transcript.

Real speech (sentences by the built-in corpus's held-out TTS voices) is streamed to
``/v1/listen`` at real time, in 100 ms messages, as a microphone would send it: the audio
up to time x leaves the client at x seconds after the start. A word counts as shown when a
partial first holds a word starting within ``--match`` seconds of where the final
transcript puts it; its latency is that partial's arrival minus the word's end in the
audio. Words no partial showed before the final are counted apart.

    .venv/bin/python benchmarks/service_live.py --out benchmarks/results/service_live.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
import websockets

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from service_support import MODEL, served, speech  # noqa: E402

STEP = 1600  # samples per message: 100 ms


async def stream(url: str, wave: np.ndarray) -> tuple[list[tuple[float, dict]], dict, float]:
    """(partials with arrival times, the final, when the stop was sent), times in seconds
    from the first sample sent."""
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    partials: list[tuple[float, dict]] = []
    async with websockets.connect(url.replace("http", "ws") + "/v1/listen") as ws:
        start = time.monotonic()

        async def receive() -> dict:
            async for raw in ws:
                m = json.loads(raw)
                if m["type"] != "partial":
                    return m
                partials.append((time.monotonic() - start, m))
            raise RuntimeError("closed without a final transcript")

        listener = asyncio.create_task(receive())
        for i in range(0, len(pcm), STEP):
            await asyncio.sleep(max(0.0, start + i / 16000 - time.monotonic()))
            await ws.send(pcm[i : i + STEP].tobytes())
        await asyncio.sleep(max(0.0, start + len(pcm) / 16000 - time.monotonic()))
        stopped = time.monotonic() - start
        await ws.send(json.dumps({"type": "stop"}))
        final = await listener
        final["arrived"] = time.monotonic() - start
    return partials, final, stopped


def latencies(partials, final, match: float) -> tuple[list[float], int]:
    shown, missed = [], 0
    for w in final["words"]:
        near = (t for t, p in partials if any(abs(q["start"] - w["start"]) <= match
                                               for q in p["words"]))  # fmt: skip
        when = next(near, None)
        if when is None:
            missed += 1
        else:
            shown.append(when - w["end"])
    return shown, missed


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--threads", type=int, default=None, help="the service's --threads")
    p.add_argument("--streams", type=int, default=3, help="recordings, one after another")
    p.add_argument("--sentences", type=int, default=4, help="per recording")
    p.add_argument("--match", type=float, default=0.1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    waves = [speech(args.sentences, voice_index=i % 3) for i in range(args.streams)]
    runs = []
    flags = [] if args.threads is None else ["--threads", str(args.threads)]
    with served(args.model, *flags) as (url, _):
        for wave in waves:
            partials, final, stopped = asyncio.run(stream(url, wave))
            shown, missed = latencies(partials, final, args.match)
            gaps = np.diff([t for t, _ in partials]) if len(partials) > 1 else np.array([])
            runs.append({
                "seconds": round(len(wave) / 16000, 2), "words": len(final["words"]),
                "partials": len(partials),
                "partial_interval_s": round(float(np.median(gaps)), 3) if len(gaps) else None,
                "word_latency_s": [round(x, 3) for x in shown], "words_only_in_final": missed,
                "final_after_stop_s": round(final["arrived"] - stopped, 3),
            })  # fmt: skip
    every = np.array([x for r in runs for x in r["word_latency_s"]])
    report = {
        "command": "benchmarks/service_live.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": str(args.model), "runs": runs,
        "word_latency_s": {"median": round(float(np.median(every)), 3),
                           "p90": round(float(np.percentile(every, 90)), 3),
                           "max": round(float(every.max()), 3), "words": len(every)},
        "words_only_in_final": sum(r["words_only_in_final"] for r in runs),
        "final_after_stop_s": [r["final_after_stop_s"] for r in runs],
    }  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    lat = report["word_latency_s"]
    print(f"word latency (spoken -> shown): median {lat['median']} s, p90 {lat['p90']} s, "
          f"max {lat['max']} s over {lat['words']} words; "
          f"{report['words_only_in_final']} words first seen in the final; final after stop: "
          f"{report['final_after_stop_s']} s")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
