"""``wav2vec2 serve MODEL [--host 127.0.0.1] [--port 8000] [--lm DIR] [--api-key KEY]
[--max-upload-mb N] [--max-audio-seconds S] [--queue N] [--backend B | --fast]``: the
transcription service (HTTP API, live WebSocket and a web page at ``/``; see
docs/service.md)."""

from __future__ import annotations

import os

from wav2vec2.cli.decoding_args import add_backend_args, add_device_args, model_args
from wav2vec2.service.config import ServiceConfig

DEFAULTS = ServiceConfig()


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve transcription over HTTP, with a web page")
    p.add_argument("model")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--lm", default=None, metavar="DIR", help="decode with this n-gram LM")
    p.add_argument(
        "--api-key", default=os.environ.get("WAV2VEC2_API_KEY"), metavar="KEY",
        help="require this key on every API route (default: $WAV2VEC2_API_KEY; the "
        "variable keeps it out of the process list)",
    )  # fmt: skip
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULTS.max_upload_mb,
        metavar="N",
        help=f"largest request body, MiB (default {DEFAULTS.max_upload_mb:g})",
    )
    p.add_argument("--max-audio-seconds", type=float, default=DEFAULTS.max_audio_seconds,
                   metavar="S", help="longest audio per request or live stream "
                   f"(default {DEFAULTS.max_audio_seconds:g})")  # fmt: skip
    p.add_argument(
        "--queue",
        type=int,
        default=DEFAULTS.queue,
        metavar="N",
        help=f"requests that may wait; more get 503 (default {DEFAULTS.queue})",
    )
    add_device_args(p)
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch's CPU threads for the model (default: torch's own choice; "
                   "fewer than the cores when other work shares them)")  # fmt: skip
    add_backend_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch
    import uvicorn  # imported here: the other verbs do not need the web stack

    from wav2vec2.inference import Wav2Vec2Inference
    from wav2vec2.service import create_app

    config = ServiceConfig(
        max_upload_mb=args.max_upload_mb, max_audio_seconds=args.max_audio_seconds,
        queue=args.queue, api_key=args.api_key,
    )  # fmt: skip
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    engine = Wav2Vec2Inference.from_pretrained(
        args.model, args.device, lm=args.lm, **model_args(args)
    )
    app = create_app(engine, config)
    # Connections beyond this get uvicorn's own 503: it bounds the uploads being received
    # and decoded at once, before they reach the queue (docs/security.md).
    limit = 2 * (config.queue + config.max_batch) + config.max_streams + 8
    uvicorn.run(app, host=args.host, port=args.port, limit_concurrency=limit,
                timeout_graceful_shutdown=5, log_level="info")  # fmt: skip
    return 0
