"""The fairseq side of the training-step benchmarks (``pretrain_step.py --fairseq-python``).

fairseq lives in a virtual environment of its own (``scripts/install-peers.sh``): its
processes run under that interpreter, this module's child half, and never import the
project's dependencies beyond what they need:

- **parent** (the project's venv): :func:`write_inputs` writes fairseq's options, from our
  config through ``to_fairseq_options`` (the inverse of the fairseq reader's
  ``build_config``), and our weights;
- **parity child** (``python fairseq_side.py parity WORKDIR``, with the project's
  ``src`` on PYTHONPATH): builds fairseq's model, renames our weights onto it with the
  fairseq reader's own ``map_weights`` applied to fairseq's parameter names (so the table
  is the reader's, read backwards), saves them in fairseq's names, and computes the
  eval-mode loss of the batch;
- **timing children** (``pretrain_step.py --worker fairseq``): :func:`build` loads those
  weights into a fresh fairseq model and returns the training loss closure. They import
  fairseq and torch only, so their memory is fairseq's own.

Pretraining: fairseq's ``Wav2Vec2Model`` and its criterion (``Wav2vecCriterion`` with
infonce and the config's loss weights: contrastive + diversity + feature penalty), given the
shared time mask as ``mask_indices`` and the shared distractors through the instance's
``sample_negatives``. Fine-tuning: ``Wav2VecCtc`` over ``Wav2VecEncoder`` (built from
``w2v_args`` holding the same options, feature_grad_mult 0: the feature encoder runs under
``torch.no_grad``), CTC loss summed with blank 0 on its logits.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

OPTIONS, OURS_STATE, FAIRSEQ_STATE = "fairseq.json", "ours_state.pt", "fairseq_state.pt"
# fairseq's wav2vec2_base_librispeech.yaml logs these from the criterion.
LOG_KEYS = ["prob_perplexity", "code_perplexity", "temp"]


# -- parent (project venv) -------------------------------------------------------------------


def write_inputs(workdir: Path, cfg, state: dict[str, torch.Tensor]) -> None:
    """fairseq's options for ``cfg`` and our weights ``state`` (our names) into ``workdir``."""
    from wav2vec2.interop.fairseq import to_fairseq_options

    pre, fine = to_fairseq_options(cfg)
    options = {
        "config": cfg.to_dict(),
        "model": pre.model,
        "task": pre.task,
        "criterion": pre.criterion,
        "finetuning": fine.model if fine is not None else None,
    }
    (workdir / OPTIONS).write_text(json.dumps(options, indent=2))
    torch.save(state, workdir / OURS_STATE)


def child_env(repo: Path) -> dict[str, str]:
    """The parity child imports the project's ``src`` (the weight renaming), nothing else."""
    return {"PYTHONPATH": str(repo / "src")}


# -- child (peers venv) ----------------------------------------------------------------------


def read_options(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / OPTIONS).read_text())


def build_model(opts: dict[str, Any]) -> torch.nn.Module:
    """fairseq's model for ``opts`` (:func:`read_options`), with random weights."""
    if opts["finetuning"] is None:
        from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

        return Wav2Vec2Model(Wav2Vec2Config(**opts["model"]))
    from fairseq.models.wav2vec.wav2vec2_asr import Wav2Vec2CtcConfig, Wav2VecCtc, Wav2VecEncoder
    from omegaconf import OmegaConf

    # What a fine-tuning run holds when it restores a pretrained checkpoint: the pretraining
    # model's options (here already with the fine-tuning dropouts, LayerDrop and
    # feature_grad_mult, which fairseq would override them with).
    w2v_args = OmegaConf.create(
        {
            "model": {"_name": "wav2vec2", **opts["model"]},
            "task": {"_name": "audio_pretraining", "data": "", **opts["task"]},
        }
    )
    cfg = Wav2Vec2CtcConfig(**opts["finetuning"], w2v_args=w2v_args, data="")
    vocab_size = opts["config"]["vocab_size"]
    return Wav2VecCtc(cfg, Wav2VecEncoder(cfg, vocab_size))


def fixed_negatives(model: torch.nn.Module, negatives: torch.Tensor) -> None:
    """Make ``model`` (fairseq's Wav2Vec2Model) use the shared distractors.

    ``negatives`` (M, K) indexes the M masked steps in row-major order, which is also
    fairseq's flat (B * num) index of its (B, num, C) targets when every utterance has the
    same ``num`` masked steps (require_same_masks). fairseq returns the distractors as
    (K, B, num, C) and their indices as (B, num * K).
    """
    k = negatives.shape[1]

    def sample_negatives(y: torch.Tensor, num: int, padding_count=None):
        bsz, tsz, fsz = y.shape
        if negatives.shape[0] != bsz * num:
            raise ValueError(f"{negatives.shape[0]} distractor rows for {bsz} x {num} steps")
        idx = negatives.reshape(bsz, num * k)
        negs = y.reshape(-1, fsz)[idx.reshape(-1)]
        return negs.view(bsz, num, k, fsz).permute(2, 0, 1, 3), idx

    model.sample_negatives = sample_negatives  # the instance's, shadowing the method


def loss_closure(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    opts: dict[str, Any],
    ctc_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> Callable[[], tuple[torch.Tensor, dict[str, Any]]]:
    """() -> (training loss, fairseq's logging output) for the fixed batch; ``opts`` is
    what :func:`write_inputs` wrote."""
    waveforms = batch["waveforms"]
    if opts["finetuning"] is not None:

        def ctc_step() -> tuple[torch.Tensor, dict[str, Any]]:
            net_output = model(source=waveforms, padding_mask=None)
            logits = model.get_logits(net_output)  # (T, B, V)
            return ctc_loss(logits.transpose(0, 1), batch["labels"]), {}

        return ctc_step
    from fairseq.criterions.wav2vec_criterion import Wav2vecCriterion

    criterion = Wav2vecCriterion(
        None, infonce=True, loss_weights=opts["criterion"]["loss_weights"], log_keys=LOG_KEYS
    )
    fixed_negatives(model, batch["negatives"])
    sample = {
        "id": torch.arange(waveforms.shape[0]),
        "net_input": {"source": waveforms, "mask_indices": batch["mask"]},
    }

    def pretrain_step() -> tuple[torch.Tensor, dict[str, Any]]:
        loss, _, logging_output = criterion(model, sample)
        return loss, logging_output

    return pretrain_step


def build(workdir: Path, batch: dict[str, torch.Tensor], task: str, ctc_loss):
    """A timing child's model (with the weights the parity child saved) and loss closure."""
    import fairseq

    opts = read_options(workdir)
    if (opts["finetuning"] is not None) != (task == "finetune"):
        raise SystemExit(f"{workdir / OPTIONS} was not written for task {task}")
    model = build_model(opts)
    # Memory-mapped, so that no second copy of the weights stays with the allocator (as
    # tcmalloc would keep it): the peak then counts the model, not the loading.
    state = torch.load(workdir / FAIRSEQ_STATE, mmap=True)
    model.load_state_dict(state, strict=True)
    del state
    gc.collect()  # unmaps the file now
    step = loss_closure(model, batch, opts, ctc_loss)
    return model, lambda: step()[0], {"fairseq": fairseq.__version__}


def load_our_weights(model: torch.nn.Module, workdir: Path, opts: dict[str, Any]) -> None:
    """Our weights onto fairseq's ``model``: the fairseq reader's ``map_weights`` renames
    fairseq's own parameters to ours (checking names and shapes against our config), and
    each gets our tensor of that name. Every fairseq parameter must receive one."""
    from wav2vec2.config import Wav2Vec2Config
    from wav2vec2.interop.fairseq import IGNORED_KEYS, map_weights

    cfg = Wav2Vec2Config.from_dict(opts["config"])
    ours = torch.load(workdir / OURS_STATE)
    theirs = model.state_dict()  # tensors sharing storage with the parameters
    # our name -> their tensor
    renamed = map_weights(theirs, cfg, ctc=opts["finetuning"] is not None)
    if sorted(renamed) != sorted(ours):
        raise SystemExit(f"fairseq's parameters map to {sorted(set(renamed) ^ set(ours))}")
    filled = {id(t) for t in renamed.values()}
    left = [k for k, t in theirs.items() if id(t) not in filled and not IGNORED_KEYS.search(k)]
    if left:
        raise SystemExit(f"fairseq parameters without one of ours: {left}")
    with torch.no_grad():
        for name, tensor in renamed.items():
            tensor.copy_(ours[name])


def parity(workdir: Path) -> dict[str, Any]:
    """Build fairseq's model with our weights, save them in its names for the timing
    children, and compute the batch's eval-mode loss (no dropout, no Gumbel noise)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import fairseq
    from pretrain_step import ctc_loss_of

    opts = read_options(workdir)
    model = build_model(opts)
    load_our_weights(model, workdir, opts)
    torch.save(model.state_dict(), workdir / FAIRSEQ_STATE)
    batch = torch.load(workdir / "batch.pt")
    step = loss_closure(model.eval(), batch, opts, ctc_loss_of)
    with torch.no_grad():
        loss, logging_output = step()
    out: dict[str, Any] = {
        "fairseq": fairseq.__version__,
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if opts["finetuning"] is not None:
        out["eval_ctc_loss"] = float(loss)
    else:
        # The criterion logs the contrastive term as loss_0 when extra terms are added.
        out["eval_contrastive_loss"] = float(logging_output.get("loss_0", loss))
        out["eval_total_loss"] = float(loss)
    return out


if __name__ == "__main__":
    mode, workdir = sys.argv[1:]
    if mode != "parity":
        raise SystemExit(f"unknown mode {mode!r}")
    try:
        import fairseq  # noqa: F401
    except ImportError:
        raise SystemExit(f"{sys.executable} has no fairseq: make peers") from None
    print("RESULT " + json.dumps(parity(Path(workdir))))
