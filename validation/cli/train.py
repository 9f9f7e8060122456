"""`cldro train`: contrastive training of an encoder."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from validation.cli.app import app, echo

if TYPE_CHECKING:
    from validation.training.config import TrainResult


# ==========================================================================================
# cldro train  (issue 4: contrastive training)
# ==========================================================================================
@app.command("train")
def train_cmd(
    dataset: Annotated[str, typer.Option(help="cifar10, digits, fashion-mnist")] = "digits",
    data: Annotated[
        Path | None, typer.Option(help="CIFAR npz / Fashion-MNIST folder (default: shared data).")
    ] = None,
    encoder: Annotated[
        str | None,
        typer.Option(help="cnn-small, resnet18, mlp (default: mlp for digits, else cnn-small)"),
    ] = None,
    loss: Annotated[str, typer.Option(help="infonce, adnce, dcl, hcl")] = "infonce",
    temperature: Annotated[float, typer.Option(help="Loss temperature τ.")] = 0.5,
    mu: Annotated[float, typer.Option(help="ADNCE Gaussian centre μ.")] = 0.7,
    sigma: Annotated[float, typer.Option(help="ADNCE Gaussian width σ.")] = 0.5,
    tau_plus: Annotated[float, typer.Option(help="DCL/HCL class prior τ⁺.")] = 0.1,
    beta: Annotated[float, typer.Option(help="HCL hardness β.")] = 1.0,
    negatives: Annotated[
        str, typer.Option(help="all, or unbiased (drop same-class negatives)")
    ] = "all",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Global batch size (pairs per step).")] = 256,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (cosine schedule).")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 1e-6,
    subset: Annotated[int | None, typer.Option(help="Stratified training subset size.")] = None,
    test_subset: Annotated[
        int | None, typer.Option(help="Test subset size (default subset // 5).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda[:N].")] = "auto",
    knn_temperature: Annotated[float, typer.Option(help="kNN vote temperature.")] = 0.1,
    probe: Annotated[bool, typer.Option(help="Fit the final linear probe.")] = True,
    radius_every: Annotated[int, typer.Option(help="Log η(τ) every N steps.")] = 1,
    radius_anchors: Annotated[
        int, typer.Option(help="Anchors per batch for the η(τ) log (0: off).")
    ] = 64,
    log_every: Annotated[
        int, typer.Option(help="Read the loss back from the device every N steps.")
    ] = 1,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint file (every --checkpoint-every epochs).")
    ] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help="Epochs between checkpoints (the last is always written).")
    ] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Resume from --checkpoint.")] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Folder for the decoded-image cache.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="torch.set_num_threads (default: leave).")
    ] = None,
    bf16: Annotated[bool, typer.Option(help="bf16 autocast on CUDA.")] = True,
    channels_last: Annotated[bool, typer.Option(help="Channels-last layout on CUDA.")] = True,
    compile_model: Annotated[
        bool, typer.Option("--compile/--no-compile", help="torch.compile the model.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics JSON.")] = None,
) -> None:
    """Contrastive training of an encoder, with a kNN monitor and a linear probe.

    One line per epoch goes to stderr, and with --json the record so far is rewritten
    (atomically) after every epoch, so a run cut short keeps what it has.
    """
    from validation.training.config import TrainConfig
    from validation.training.loop import train

    options = dict(locals())
    options["encoder"] = encoder or ("mlp" if dataset == "digits" else "cnn-small")
    options["compile"] = compile_model
    for name in ("data", "checkpoint", "cache_dir"):
        options[name] = None if options[name] is None else str(options[name])
    names = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in options.items() if k in names})
    result = train(config, on_epoch=lambda so_far: _epoch_line(so_far, json_out))
    if result.world_size > 1:
        from validation.training.distributed import rank

        if rank() != 0:
            return
    _report(result, json_out)


def _epoch_line(so_far: TrainResult, json_out: Path | None) -> None:
    """One line to stderr per epoch, and the record so far (atomically) when --json is set."""
    from validation.atomic import write_json

    cfg, t = so_far.config, so_far.epoch_times[-1]
    typer.echo(
        f"[epoch {so_far.epochs_done}/{cfg.epochs}] {cfg.loss} loss "
        f"{so_far.loss_curve[-1]:.4f} kNN {so_far.knn_top1[-1]:.2f} % train "
        f"{t.train_seconds:.1f} s eval {t.eval_seconds:.1f} s",
        err=True,
    )
    if json_out is not None:
        write_json(json_out, so_far.to_dict())


def _report(result: TrainResult, json_out: Path | None) -> None:
    """The closing summary on stdout, and the final record."""
    from validation.atomic import write_json

    cfg = result.config
    knn = " → ".join(f"{v:.1f}" for v in result.knn_top1)
    echo(
        f"{cfg.dataset} / {cfg.encoder} / {cfg.loss} (τ={cfg.temperature}), "
        f"{result.epochs_done} epochs on {result.device} (world size {result.world_size}), "
        f"{result.seconds:.1f} s"
    )
    echo(f"kNN top-1 (%) per epoch: {knn}")
    if result.linear_probe_top1 is not None:
        echo(f"linear probe top-1: {result.linear_probe_top1:.2f} %")
    if result.implied_radius:
        last = result.implied_radius[-1]
        echo(
            f"last epoch: mean η(τ) exact {last.eta_exact_mean:.4g}, "
            f"Var/(2τ²) {last.eta_approx_mean:.4g}, Var(neg sim) {last.neg_variance_mean:.4g}"
        )
    if json_out is not None:
        write_json(json_out, result.to_dict())
        echo(f"wrote {json_out}")
