"""DDP pretraining step time with and without ``find_unused_parameters``, LayerDrop on.

Two gloo processes on this CPU (one torch thread each) run the same pretraining steps:
forward + backward (gradients all-reduced) + AdamW, with LayerDrop drawn once per update
from a seed shared by the ranks (``TransformerEncoder.layerdrop_seed``, as the trainer sets
it), so every parameter gets a gradient on every rank and DDP can skip its search for unused
ones. The two settings alternate (True, False, False, True, ...), each in a fresh pair of
processes; rank 0 reports its step times.

    .venv/bin/python benchmarks/ddp_layerdrop.py --preset small --steps 6 --repeats 2

Writes ``benchmarks/results/ddp_layerdrop_<preset>.json``. ``ratio`` is the median step with
find_unused_parameters=True over the median without: > 1 means turning it off is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).parent))
from sidebyside import generated_audio, matmul_probe, timed  # noqa: E402

MODES = (True, False)  # find_unused_parameters


class _Step(nn.Module):
    """The pretraining loss through ``nn.Module.__call__``, so that DDP sees the forward."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from wav2vec2.losses import pretraining_loss

        out = self.model.pretrain(waveforms, None, generator=generator)
        return pretraining_loss(out, self.model.cfg.pretraining).total


def rank_main(rank: int, args: argparse.Namespace, find_unused: bool, init: str, out: str):
    from wav2vec2.config import preset
    from wav2vec2.models.wav2vec2 import Wav2Vec2Model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    cfg = preset(args.preset).with_overrides(**{"transformer.layerdrop": args.layerdrop})
    torch.manual_seed(0)  # the same initial weights on both ranks
    model = Wav2Vec2Model(cfg).train()
    ddp = DistributedDataParallel(_Step(model), find_unused_parameters=find_unused)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch, seconds = args.batch
    gen = torch.Generator().manual_seed(rank)  # each rank its own utterances
    waves = generated_audio(batch, int(seconds * cfg.sample_rate), cfg.sample_rate, gen)
    update = 0

    def step() -> None:
        nonlocal update
        model.encoder.layerdrop_seed = 1000 + update  # same on both ranks
        optimizer.zero_grad(set_to_none=True)
        ddp(waves, torch.Generator().manual_seed(100 * update + rank)).backward()
        optimizer.step()
        update += 1

    wall, cpu = timed(step, args.warmup, args.steps)
    if rank == 0:
        Path(out).write_text(json.dumps({"step_s": wall, "cpu_s": cpu}))
    dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small", choices=["small", "base"])
    p.add_argument("--batch", default="2x4", help="utterances x seconds per rank")
    p.add_argument("--layerdrop", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    b, s = args.batch.lower().split("x")
    args.batch = (int(b), float(s))
    out_path = args.out or Path(__file__).parent / "results" / f"ddp_layerdrop_{args.preset}.json"
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for find_unused in MODES if rep % 2 == 0 else MODES[::-1]:
                init = f"file://{tmp}/rendezvous-{rep}-{find_unused}"
                result = Path(tmp) / "result.json"
                probe = matmul_probe()
                mp.spawn(rank_main, (args, find_unused, init, str(result)), nprocs=2)
                r = json.loads(result.read_text())
                r.update(find_unused_parameters=find_unused, repeat=rep, probe_gflops=probe)
                r["cpu_per_wall"] = sum(r["cpu_s"]) / sum(r["step_s"])
                runs.append(r)
                print(
                    f"repeat {rep} find_unused_parameters={find_unused}: median "
                    f"{statistics.median(r['step_s']):.3f} s, cpu/wall {r['cpu_per_wall']:.2f}, "
                    f"probe {probe:.0f} GFLOP/s",
                    file=sys.stderr,
                )
    med = {}
    for m in MODES:
        med[m] = statistics.median(
            t for r in runs if r["find_unused_parameters"] == m for t in r["step_s"]
        )
    result = {
        "benchmark": "ddp_layerdrop",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {**vars(args), "batch": list(args.batch), "out": str(out_path)},
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "runs": runs,
        "median_step_s": {str(m): v for m, v in med.items()},
        "ratio_find_unused_over_not": med[True] / med[False],
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"| find_unused_parameters | median step (s) |\n|---|---|\n| True | {med[True]:.3f} |\n"
        f"| False | {med[False]:.3f} |\n\nratio True / False: "
        f"**{result['ratio_find_unused_over_not']:.2f}**"
    )
    print(f"\nwrote {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
