"""Small randomly initialised transformers models, the reference for parity tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers

LETTERS = list("ETAONISHRDLUCMWFGYPBVK'XJQZ")
HF_VOCAB = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|", *LETTERS])}

# Several small shapes: BASE-like (group norm, post-LN), LV60K-like (layer norm, pre-LN, conv
# bias), and odd head counts / conv stacks / an odd positional kernel.
_COLUMNS = (
    "conv_dim", "conv_kernel", "conv_stride", "hidden_size", "num_hidden_layers",
    "num_attention_heads", "intermediate_size", "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups", "feat_extract_norm", "do_stable_layer_norm", "conv_bias",
)  # fmt: skip
_ROWS = {
    "base_like": ((32,) * 4, (10, 3, 3, 2), (5, 2, 2, 2), 48, 3, 3, 96, 16, 4, "group", False,
                  False),
    "lv60k_like": ((32,) * 4, (10, 3, 3, 2), (5, 2, 2, 2), 40, 3, 4, 80, 16, 4, "layer", True,
                   True),
    "odd_shapes": ((24, 40, 40), (7, 5, 3), (3, 3, 2), 45, 2, 5, 70, 15, 5, "group", False, True),
}  # fmt: skip
CONFIGS = {name: dict(zip(_COLUMNS, row, strict=True)) for name, row in _ROWS.items()}


def hf_config(name: str, **extra) -> transformers.Wav2Vec2Config:
    return transformers.Wav2Vec2Config(
        **CONFIGS[name],
        vocab_size=len(HF_VOCAB),
        codevector_dim=24,
        proj_codevector_dim=20,
        num_codevectors_per_group=16,
        num_codevector_groups=2,
        num_negatives=7,
        hidden_dropout=0.0,
        activation_dropout=0.0,
        attention_dropout=0.0,
        feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.05,
        **extra,
    )


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Perturb every parameter so norms and biases are not at their trivial init."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model.eval()


def make_ctc(name: str, seed: int = 0) -> transformers.Wav2Vec2ForCTC:
    torch.manual_seed(seed)
    model = randomize(transformers.Wav2Vec2ForCTC(hf_config(name)), seed)
    with torch.no_grad():  # keep specials other than the blank out of greedy paths
        model.lm_head.bias[1:4] -= 100.0
    return model


def make_pretraining(name: str, seed: int = 0) -> transformers.Wav2Vec2ForPreTraining:
    torch.manual_seed(seed)
    return randomize(transformers.Wav2Vec2ForPreTraining(hf_config(name)), seed)


def save_with_processor(model: transformers.PreTrainedModel, dest: Path) -> Path:
    """save_pretrained plus the tokenizer/feature extractor a real hub model ships."""
    model.save_pretrained(dest)
    (dest / "vocab.json").write_text(json.dumps(HF_VOCAB))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(dest / "vocab.json"))
    extractor = transformers.Wav2Vec2FeatureExtractor(
        do_normalize=model.config.feat_extract_norm == "layer",
        return_attention_mask=model.config.feat_extract_norm == "layer",
    )
    transformers.Wav2Vec2Processor(
        feature_extractor=extractor, tokenizer=tokenizer
    ).save_pretrained(dest)
    return dest


def padded_batch(lengths=(4000, 3100, 2417), seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded (B, samples) batch of unequal lengths and its (B,) lengths."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randn(n, generator=gen)
    return x, torch.tensor(lengths)


def assert_close(ours: torch.Tensor, theirs: torch.Tensor, what: str, atol: float = 1e-4) -> None:
    diff = (ours - theirs).abs().max().item()
    assert diff < atol, f"{what}: max abs difference {diff:.2e}"


def attention_mask(lengths: torch.Tensor, total: int) -> torch.Tensor:
    return (torch.arange(total)[None, :] < lengths[:, None]).long()
