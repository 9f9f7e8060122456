"""`cldro tau`: the temperature advisor — τ per anchor for a KL radius, or the radius of a τ."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from validation.cli.app import app, echo

#: column labels of the extreme quantile levels (the others print as percentages)
_LEVEL_LABELS = {0.0: "min", 1.0: "max"}


# ==========================================================================================
# cldro tau  (issue 14: the temperature advisor)
# ==========================================================================================
@app.command("tau")
def tau_cmd(
    extra: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Second view after --embeddings Z1.npy (Z1.npy Z2.npy).", show_default=False
        ),
    ] = None,
    scores: Annotated[
        Path | None,
        typer.Option(help="Scores S.npy: B × N anchor-to-negative similarities or 1-D."),
    ] = None,
    embeddings: Annotated[
        list[Path] | None,
        typer.Option(help="Embeddings Z.npy (N × d), or two views Z1.npy Z2.npy (positive pairs)."),
    ] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="A `cldro train` checkpoint.")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="With --checkpoint: data set (default: the checkpoint's).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="With --checkpoint: CIFAR npz / folder.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="With --checkpoint: pairs B (default: the checkpoint's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="With --checkpoint: seed of the batch draw.")] = 0,
    device: Annotated[str, typer.Option(help="With --checkpoint: auto, cpu, cuda[:N].")] = "cpu",
    cache_dir: Annotated[Path | None, typer.Option(help="Decoded-image cache folder.")] = None,
    eval_mode: Annotated[
        bool, typer.Option("--eval-mode", help="BatchNorm running statistics (default: batch's).")
    ] = False,
    radius: Annotated[
        float | None, typer.Option(help="KL radius η > 0: solve τ per anchor.")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Temperature τ > 0: the implied η per anchor.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Histogram over anchors (PNG).")] = None,
) -> None:
    """Temperature ↔ KL radius per anchor (Wu et al. 2023, Cor. 3.4): the temperature advisor."""
    from dro_theory.advisor import advise, check_one_of

    check_one_of(radius, temperature)
    views = list(embeddings or []) + list(extra or [])
    if extra and not embeddings:
        from dro_theory.errors import InputError

        raise InputError(
            f"--embeddings: expected the second view after --embeddings Z1.npy, found a stray "
            f"argument {str(extra[0])!r}"
        )
    source, negatives = _tau_scores(
        scores, views, checkpoint, dataset, data, batch_size, seed, device, cache_dir, eval_mode
    )
    advice = advise(negatives, radius=radius, temperature=temperature)
    _tau_print(advice, source, negatives.shape[-1])
    if json_out is not None:
        from validation.atomic import write_json

        write_json(json_out, _tau_record(advice, source, negatives.shape[-1]))
        echo(f"wrote {json_out}")
    if plot is not None:
        from validation.plotting import plot_temperature_advice

        plot_temperature_advice(advice, plot)
        echo(f"wrote {plot}")


def _tau_scores(
    scores: Path | None,
    views: list[Path],
    checkpoint: Path | None,
    dataset: str | None,
    data: Path | None,
    batch_size: int | None,
    seed: int,
    device: str,
    cache_dir: Path | None,
    eval_mode: bool,
) -> tuple[str, Any]:
    """(description of the input, (B, N) or (N,) negative scores) from exactly one source."""
    from dro_theory.errors import InputError
    from estimators.io import load_npy

    given = [
        name
        for name, v in (("--scores", scores), ("--embeddings", views), ("--checkpoint", checkpoint))
        if v
    ]
    if len(given) != 1:
        raise InputError(
            "--scores/--embeddings/--checkpoint: expected exactly one input, found "
            + (", ".join(given) if given else "none")
        )
    if scores is not None:
        return f"scores {scores}", load_npy(scores, "--scores")
    if views:
        from estimators.similarity import negative_scores

        if len(views) > 2:
            raise InputError(f"--embeddings: expected one or two .npy files, found {len(views)}")
        z = [load_npy(p, "--embeddings") for p in views]
        neg = negative_scores(z[0], z[1] if len(z) == 2 else None).negatives
        return "embeddings " + " ".join(map(str, views)), neg
    from validation.advisor import checkpoint_scores, load_encoder

    assert checkpoint is not None
    enc = load_encoder(checkpoint, dataset=dataset, device=device)
    neg = checkpoint_scores(
        enc,
        batch_size=batch_size,
        dataset=dataset,
        data=data,
        seed=seed,
        cache_dir=cache_dir,
        batch_stats=not eval_mode,
    ).negatives
    return f"checkpoint {checkpoint} (epoch {enc.epoch}, {enc.config['dataset']})", neg


def _tau_print(advice: Any, source: str, negatives: int) -> None:
    radius_mode = advice.mode == "radius"
    echo(f"cldro tau  input: {source}")
    echo(f"  anchors {advice.anchors}, negatives per anchor {negatives}")
    if radius_mode:
        echo(f"  given radius η = {advice.mean_radius:g}: temperature τ per anchor")
    else:
        echo(f"  given temperature τ = {advice.matched_temperature:g}: radius η per anchor")
    labels = [_LEVEL_LABELS.get(q, f"{100 * q:g}%") for q in advice.quantile_levels]
    echo("  " + f"{'':<12}" + "".join(f"{lab:>11}" for lab in labels))
    rows = (
        (
            ("τ exact", advice.quantiles),
            ("√(Var/2η)", advice.law_quantiles),
        )
        if radius_mode
        else (("η exact", advice.quantiles), ("Var/(2τ²)", advice.law_quantiles))
    )
    for name, values in rows:
        echo("  " + f"{name:<12}" + "".join(f"{v:>11.5g}" for v in values))
    if radius_mode:
        echo(f"  matched τ (mean radius over anchors = η): {advice.matched_temperature:.10g}")
    else:
        echo(f"  mean radius over anchors: {advice.mean_radius:.10g}")
    for note in advice.notes:
        echo(f"  note: {note}")


def _tau_record(advice: Any, source: str, negatives: int) -> dict[str, Any]:
    return {
        "input": source,
        "mode": advice.mode,
        "anchors": advice.anchors,
        "negatives": int(negatives),
        "quantile_levels": list(advice.quantile_levels),
        "quantiles": advice.quantiles,
        "law_quantiles": advice.law_quantiles,
        "matched_temperature": advice.matched_temperature,
        "mean_radius": advice.mean_radius,
        "notes": list(advice.notes),
        "per_anchor": {
            "temperature": advice.temperature,
            "radius": advice.radius,
            "law": advice.law,
            "variance": advice.variance,
            "point_mass_radius": advice.point_mass,
        },
    }
