"""The settings flags that ``pretrain`` and ``finetune`` share, collected into one mapping of
dotted overrides (later sources win: --config FILE, then each --set, then --max-updates)."""

from __future__ import annotations

from typing import Any

from wav2vec2.training.config import parse_set, read_config_file


def add_settings_args(p) -> None:
    p.add_argument("--max-updates", type=int, default=None)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting: model.* for the model (model.transformer.layers=6), "
        "anything else for training (optim.lr=1e-4, data.max_tokens=400000)",
    )  # fmt: skip
    p.add_argument("--config", help="JSON file of settings (nested or dotted keys)")


def settings_overrides(args) -> dict[str, Any]:
    overrides = read_config_file(args.config) if args.config else {}
    overrides.update(parse_set(args.set))
    if args.max_updates is not None:
        overrides["max_updates"] = args.max_updates
    return overrides
