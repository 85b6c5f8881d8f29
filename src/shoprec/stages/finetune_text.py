"""DVC stage ``finetune_text``: the MiniLM every later stage embeds with (:class:`~shoprec.layout.TextModelFiles`).

Transfer learning's second step: the pretrained model, fine-tuned on pairs mined from
the shop's training events before the validation window and from its catalog
(:mod:`shoprec.text.pairs`, :mod:`shoprec.text.finetune`). With ``text.finetune_layers: 0``
the pretrained files are copied unchanged, so every later output is what the frozen
model gives. Either way the folder also gets the model's int8 export, the query encoder of
search and of ``train_intents``: it depends on these weights alone, so it is made here, once,
and DVC's run-cache restores it with them (a later stage made it again on every run).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from shoprec.config import Params
from shoprec.layout import SplitFiles, TextModelFiles
from shoprec.models.store import phases
from shoprec.models.training import (
    configure_precision,
    distribution,
    float32_layers,
    output_folder,
    set_seeds,
    write_losses,
)
from shoprec.text.finetune import fine_tune
from shoprec.text.minilm import MiniLMEncoder
from shoprec.text.pairs import mine_pairs
from shoprec.text.quantized import export_int8
from shoprec.text.weights import copy_model_files, resolve_model_dir

LOSS_COLUMNS = ("text_encoder", "text_encoder_held_out")


def finetune_text(split_dir: Path, items_path: Path, out_dir: Path, params: Params) -> Path:
    """Write the model directory, its loss curve and a summary into ``out_dir``.

    Under ``TF_CONFIG`` every worker runs this same function; the chief writes ``out_dir``.
    """
    cfg = params.text
    if cfg.finetune_layers == 0:
        copy_model_files(resolve_model_dir(cfg.model_dir or None), out_dir)
        out = TextModelFiles(out_dir)
        write_losses({name: [] for name in LOSS_COLUMNS}, out.losses)
        out.summary.write_text(json.dumps({"fine_tuned": False}, indent=2) + "\n")
        export_query_encoder(out, cfg.max_length)
        return out_dir
    strategy = distribution()
    set_seeds(params.seed)
    configure_precision(cfg.mixed_precision)
    events, before = phases(SplitFiles(split_dir))["replay"]
    pairs = mine_pairs(events, pd.read_parquet(items_path), before, params.interactions.weights,
                       cfg.finetune_max_pairs, params.seed)
    tuned = fine_tune(pairs, cfg, strategy, params.seed)
    with output_folder(out_dir, strategy) as folder:
        tuned.encoder.save_model_dir(folder)
        out = TextModelFiles(folder)
        export_query_encoder(out, cfg.max_length)
        write_losses(dict(zip(LOSS_COLUMNS, (tuned.losses, tuned.held_out))), out.losses)
        summary = {"fine_tuned": True, "layers": cfg.finetune_layers, "pairs_before": before.isoformat(),
                   "pairs": {str(k): int(v) for k, v in pairs["kind"].value_counts().sort_index().items()},
                   "epochs_run": len(tuned.losses), "best_epoch": tuned.best_epoch,
                   "best_held_out_loss": min(tuned.held_out)}
        out.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return out_dir


def export_query_encoder(out: TextModelFiles, max_length: int) -> Path:
    """The int8 export of the model directory just written, from its saved weights (float32 whatever the
    training's precision policy), as the service and the stages that embed queries load it."""
    with float32_layers():
        return export_int8(MiniLMEncoder(out.folder, max_length=max_length), out.quantized_encoder)
