"""`cldro train`: contrastive training of an encoder (images, WordNet sentences, molecules)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from validation.cli.app import app, echo

if TYPE_CHECKING:
    from validation.training.config import TrainConfig, TrainResult

#: the default encoder of each data set (images other than digits: cnn-small)
_DEFAULT_ENCODER = {"digits": "mlp", "wordnet": "small", "molecules": "gin"}

Opt = typer.Option


# ==========================================================================================
# cldro train  (issues 4 and 13: contrastive training)
# ==========================================================================================
@app.command("train")
def train_cmd(
    dataset: Annotated[
        str, Opt(help="cifar10, digits, fashion-mnist, wordnet, molecules")
    ] = "digits",
    data: Annotated[
        Path | None, Opt(help="Data file/folder (default: data-local or shared data).")
    ] = None,
    encoder: Annotated[
        str | None,
        Opt(help="cnn-small|resnet18|mlp (images), small|minilm (wordnet), gin (molecules)"),
    ] = None,
    loss: Annotated[str, Opt(help="infonce, adnce, dcl, hcl")] = "infonce",
    temperature: Annotated[float, Opt(help="Loss temperature τ.")] = 0.5,
    mu: Annotated[float, Opt(help="ADNCE Gaussian centre μ.")] = 0.7,
    sigma: Annotated[float, Opt(help="ADNCE Gaussian width σ.")] = 0.5,
    adnce_positive: Annotated[
        str, Opt(help="ADNCE positive: unweighted (image), weighted (sentence), none (graph)")
    ] = "unweighted",
    tau_plus: Annotated[float, Opt(help="DCL/HCL class prior τ⁺.")] = 0.1,
    beta: Annotated[float, Opt(help="HCL hardness β.")] = 1.0,
    negatives: Annotated[str, Opt(help="all, or unbiased (drop same-class negatives)")] = "all",
    epochs: Annotated[int, Opt(help="Training epochs.")] = 10,
    batch_size: Annotated[int, Opt(help="Global batch size (pairs per step).")] = 256,
    lr: Annotated[float, Opt(help="AdamW learning rate (cosine schedule).")] = 1e-3,
    weight_decay: Annotated[float, Opt(help="AdamW weight decay.")] = 1e-6,
    subset: Annotated[int | None, Opt(help="Training subset size (wordnet: sentences).")] = None,
    test_subset: Annotated[int | None, Opt(help="Test subset (images: subset // 5).")] = None,
    seed: Annotated[int, Opt(help="Random seed in [0, 2^63).")] = 0,
    device: Annotated[str, Opt(help="auto, cpu, cuda[:N].")] = "auto",
    knn_temperature: Annotated[float, Opt(help="kNN vote temperature (images).")] = 0.1,
    probe: Annotated[bool, Opt(help="Fit the final linear probe (images).")] = True,
    radius_every: Annotated[int, Opt(help="Log η(τ) every N steps.")] = 1,
    radius_anchors: Annotated[int, Opt(help="Anchors per batch for the η(τ) log (0: off).")] = 64,
    log_every: Annotated[int, Opt(help="Read the loss back from the device every N steps.")] = 1,
    checkpoint: Annotated[Path | None, Opt(help="Checkpoint file (--checkpoint-every).")] = None,
    checkpoint_every: Annotated[int, Opt(help="Epochs between checkpoints (+ the last).")] = 1,
    resume: Annotated[bool, Opt("--resume", help="Resume from --checkpoint.")] = False,
    cache_dir: Annotated[Path | None, Opt(help="Folder for the decoded-image cache.")] = None,
    threads: Annotated[int | None, Opt(help="torch.set_num_threads (default: leave).")] = None,
    bf16: Annotated[bool, Opt(help="bf16 autocast on CUDA.")] = True,
    channels_last: Annotated[bool, Opt(help="Channels-last layout on CUDA.")] = True,
    compile_model: Annotated[
        bool, Opt("--compile/--no-compile", help="torch.compile the model.")
    ] = False,
    progress: Annotated[bool, Opt(help="Show a progress bar.")] = True,
    json_out: Annotated[Path | None, Opt("--json", help="Write metrics JSON.")] = None,
) -> None:
    """Contrastive training of an encoder, with the domain's evaluation after every epoch.

    One line per epoch goes to stderr, and with --json the record so far is rewritten
    (atomically) after every epoch, so a run cut short keeps what it has.
    """
    from validation.atomic import json_text
    from validation.cli.outputs import commit, preflight
    from validation.training.loop import train

    preflight({"--json": json_out, "--checkpoint": None if resume else checkpoint})
    config = _config(dict(locals()))
    result = train(config, on_epoch=lambda so_far: _epoch_line(so_far, json_out))
    if result.world_size > 1:
        from validation.training.distributed import rank

        if rank() != 0:
            return
    _report(result)
    commit({"--json": (json_out, json_text(result.to_dict()).encode())})


def _config(options: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of the command's options (same names; paths as strings)."""
    from validation.training.config import TrainConfig

    options["encoder"] = options["encoder"] or _DEFAULT_ENCODER.get(options["dataset"], "cnn-small")
    options["compile"] = options["compile_model"]
    for name in ("data", "checkpoint", "cache_dir"):
        options[name] = None if options[name] is None else str(options[name])
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in options.items() if k in names})


def _metrics_text(metrics: dict[str, float]) -> str:
    """``name value`` pairs of a domain's metrics, rounded for a log line."""
    return " ".join(f"{k} {v:.2f}" for k, v in metrics.items())


def _epoch_line(so_far: TrainResult, json_out: Path | None) -> None:
    """One line to stderr per epoch, and the record so far (atomically) when --json is set."""
    from validation.atomic import write_json

    cfg, t = so_far.config, so_far.epoch_times[-1]
    shown = so_far.metrics[-1] if so_far.metrics else {"knn_top1": so_far.knn_top1[-1]}
    typer.echo(
        f"[epoch {so_far.epochs_done}/{cfg.epochs}] {cfg.loss} loss "
        f"{so_far.loss_curve[-1]:.4f} {_metrics_text(shown)} train "
        f"{t.train_seconds:.1f} s eval {t.eval_seconds:.1f} s",
        err=True,
    )
    if json_out is not None:
        write_json(json_out, so_far.to_dict())


def _report(result: TrainResult) -> None:
    """The closing summary on stdout."""
    cfg = result.config
    knn = " → ".join(f"{v:.1f}" for v in result.knn_top1)
    echo(
        f"{cfg.dataset} / {cfg.encoder} / {cfg.loss} (τ={cfg.temperature}), "
        f"{result.epochs_done} epochs on {result.device} (world size {result.world_size}), "
        f"{result.seconds:.1f} s"
    )
    echo(f"kNN top-1 (%) per epoch: {knn}")
    if result.metrics:
        echo(f"before: {_metrics_text(result.metrics[0])}")
        echo(f"after:  {_metrics_text(result.metrics[-1])}")
    if result.linear_probe_top1 is not None:
        echo(f"linear probe top-1: {result.linear_probe_top1:.2f} %")
    if result.implied_radius:
        last = result.implied_radius[-1]
        echo(
            f"last epoch: mean η(τ) exact {last.eta_exact_mean:.4g}, "
            f"Var/(2τ²) {last.eta_approx_mean:.4g}, Var(neg sim) {last.neg_variance_mean:.4g}"
        )
