"""The ``cldro`` command line (the only module that prints to the terminal).

Errors: exit code 2 and one line naming the option and what was wrong; ``--debug`` shows the
traceback. Long work shows a tqdm progress bar (on stderr). Output files are written atomically.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from dro_theory.errors import CldroError

app = typer.Typer(
    name="cldro",
    help="Contrastive learning as distributionally robust optimization (Wu et al., NeurIPS 2023).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}


def _echo(text: str = "") -> None:
    typer.echo(text)


def _fail(message: str) -> typer.Exit:
    """Print one error line to stderr and return the exit-2 exception to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _STATE["debug"] = debug


# ==========================================================================================
# cldro worst-case  (issue 2: the theory core)
# ==========================================================================================
@app.command("worst-case")
def worst_case_cmd(
    scores: Annotated[Path, typer.Argument(help="Scores f as a 1-D .npy file.")],
    divergence: Annotated[
        str, typer.Option(help="kl, reverse_kl, chi2, hellinger, tv, js, cressie_read:ALPHA")
    ] = "kl",
    radius: Annotated[float, typer.Option(help="Ball radius η ≥ 0.")] = 0.1,
    weights: Annotated[Path | None, typer.Option(help="Reference weights q0 (.npy).")] = None,
    solver: Annotated[str | None, typer.Option(help="cvxpy solver (default Clarabel).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    q_out: Annotated[Path | None, typer.Option("--q-out", help="Write q* as .npy.")] = None,
) -> None:
    """Worst-case distribution in a φ-ball: primal (cvxpy) and dual side by side."""
    import numpy as np

    from dro_theory.duals import worst_case_dual
    from dro_theory.worst_case import worst_case

    f = _wc_load_vector(scores, "scores")
    q0 = None if weights is None else _wc_load_vector(weights, "weights")
    primal = worst_case(f, divergence, radius, weights=q0, solver=solver)
    dual = worst_case_dual(f, divergence, radius, weights=q0)
    q_p, q_d = np.asarray(primal.q, dtype=np.float64), np.asarray(dual.q, dtype=np.float64)
    agreement = {
        "abs_value_difference": abs(float(primal.value) - float(dual.value)),
        "q_l1_difference": float(np.abs(q_p - q_d).sum()),
    }
    _wc_print_table(primal, dual, agreement, n=f.shape[0])
    if json_out is not None:
        from validation.atomic import write_json

        record = {
            "scores": str(scores),
            "weights": None if weights is None else str(weights),
            "n": int(f.shape[0]),
            "divergence": primal.divergence,
            "radius": float(radius),
            "primal": _wc_summary(primal),
            "dual": _wc_summary(dual),
            "agreement": agreement,
        }
        write_json(json_out, record)
        _echo(f"wrote {json_out}")
    if q_out is not None:
        from validation.atomic import atomic_path

        with atomic_path(q_out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, q_p)
        _echo(f"wrote {q_out}")


def _wc_load_vector(path: Path, name: str) -> Any:
    """Load a 1-D numeric .npy file (estimators.io.load_npy); InputError naming ``name``."""
    from dro_theory.errors import InputError
    from estimators.io import load_npy

    if path.suffix.lower() != ".npy":
        raise InputError(f"{name}: expected a .npy file, found {path.name!r}")
    arr = load_npy(path, name)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array, found shape {arr.shape} in {path}")
    return arr


def _wc_summary(result: Any) -> dict[str, Any]:
    return {
        "value": float(result.value),
        "multiplier": float(result.multiplier),
        "normalizer": float(result.normalizer),
        "status": result.status,
        "solver": result.solver,
        "seconds": float(result.seconds),
        "diagnostics": result.diagnostics,
    }


def _wc_print_table(primal: Any, dual: Any, agreement: dict[str, float], n: int) -> None:
    _echo(f"worst case  divergence={primal.divergence}  radius={primal.radius:g}  n={n}")
    rows = [
        ("", "primal (cvxpy)", "dual"),
        ("value", f"{float(primal.value):.10g}", f"{float(dual.value):.10g}"),
        ("multiplier", f"{float(primal.multiplier):.10g}", f"{float(dual.multiplier):.10g}"),
        ("normalizer", f"{float(primal.normalizer):.10g}", f"{float(dual.normalizer):.10g}"),
        ("time (s)", f"{primal.seconds:.4f}", f"{dual.seconds:.4f}"),
        ("status", primal.status, dual.status),
        ("solver", primal.solver, dual.solver),
    ]
    for label, left, right in rows:
        _echo(f"  {label:<11} {left:>20}  {right:>20}")
    _echo(
        f"  |Δvalue| = {agreement['abs_value_difference']:.3g}   "
        f"L1(q_primal − q_dual) = {agreement['q_l1_difference']:.3g}"
    )


# ==========================================================================================
# cldro mi  (issue 3: φ-MI)
# ==========================================================================================
@app.command("mi")
def mi_cmd(
    data: Annotated[Path, typer.Argument(help="Data: .npz (x, y), .npy, or .csv.")],
    data_y: Annotated[Path | None, typer.Argument(help="Y as a second .npy.")] = None,
    divergence: Annotated[
        str, typer.Option(help="kl, reverse_kl, chi2, hellinger, tv, js, cressie_read:ALPHA")
    ] = "kl",
    bound: Annotated[str, typer.Option(help="tight, plain, infonce, nwj, dv")] = "tight",
    critic: Annotated[str, typer.Option(help="separable or concat")] = "separable",
    steps: Annotated[int | None, typer.Option(help="Training steps (default: auto).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    x_dims: Annotated[
        int | None, typer.Option("--x-dims", help="Single .npy: number of leading x columns.")
    ] = None,
    x_cols: Annotated[
        str | None, typer.Option("--x-cols", help="CSV: x columns, e.g. a,b or 0,1.")
    ] = None,
    y_cols: Annotated[
        str | None, typer.Option("--y-cols", help="CSV: y columns (default: the rest).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
) -> None:
    """Generalized (φ-divergence) mutual information of paired data, with a confidence interval."""
    from estimators.io import load_pairs
    from estimators.phi_mi import PhiMI

    pairs = load_pairs(data, data_y, x_dims=x_dims, x_cols=x_cols, y_cols=y_cols)
    est = PhiMI(
        divergence=divergence,
        bound=bound,
        critic=critic,
        steps=steps,
        seed=seed,
        device=device,
        progress=True,
    ).fit(pairs.x, pairs.y)
    res = est.result_
    _echo(
        f"I_{res.divergence}(X;Y) = {res.estimate:.4g} [{res.ci_low:.4g}, {res.ci_high:.4g}]"
        f"  n_test={res.n_test}"
    )
    if json_out is not None:
        from validation.atomic import write_json

        keys = ("estimate", "ci_low", "ci_high", "divergence", "bound", "n_train", "n_test")
        record: dict[str, Any] = {k: getattr(res, k) for k in keys}
        record.update(
            seconds=res.seconds,
            seed=res.seed,
            ci_level=res.ci_level,
            ci_method=res.ci_method,
            critic=res.critic,
            n_val=res.n_val,
            steps=res.steps,
            best_step=res.best_step,
            source=pairs.source,
        )
        write_json(json_out, record)
        _echo(f"wrote {json_out}")


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
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint file (every epoch).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Resume from --checkpoint.")] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Folder for the decoded-image cache.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="torch.set_num_threads (default: leave).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics JSON.")] = None,
) -> None:
    """Contrastive training of an encoder, with a kNN monitor and a linear probe."""
    from validation.atomic import write_json
    from validation.training.loop import TrainConfig, train

    if encoder is None:
        encoder = "mlp" if dataset == "digits" else "cnn-small"
    config = TrainConfig(
        dataset=dataset,
        data=None if data is None else str(data),
        encoder=encoder,
        loss=loss,
        temperature=temperature,
        mu=mu,
        sigma=sigma,
        tau_plus=tau_plus,
        beta=beta,
        negatives=negatives,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        subset=subset,
        test_subset=test_subset,
        seed=seed,
        device=device,
        knn_temperature=knn_temperature,
        probe=probe,
        radius_every=radius_every,
        radius_anchors=radius_anchors,
        checkpoint=None if checkpoint is None else str(checkpoint),
        resume=resume,
        cache_dir=None if cache_dir is None else str(cache_dir),
        threads=threads,
        progress=progress,
    )
    result = train(config)
    record = result.to_dict()
    if result.world_size > 1:
        from validation.training.distributed import rank

        if rank() != 0:
            return
    knn = " → ".join(f"{v:.1f}" for v in result.knn_top1)
    _echo(
        f"{dataset} / {encoder} / {loss} (τ={temperature}), {result.epochs_done} epochs on "
        f"{result.device} (world size {result.world_size}), {result.seconds:.1f} s"
    )
    _echo(f"kNN top-1 (%) per epoch: {knn}")
    if result.linear_probe_top1 is not None:
        _echo(f"linear probe top-1: {result.linear_probe_top1:.2f} %")
    if result.implied_radius:
        last = result.implied_radius[-1]
        _echo(
            f"last epoch: mean η(τ) exact {last.eta_exact_mean:.4g}, "
            f"Var/(2τ²) {last.eta_approx_mean:.4g}, Var(neg sim) {last.neg_variance_mean:.4g}"
        )
    if json_out is not None:
        write_json(json_out, record)
        _echo(f"wrote {json_out}")


# ==========================================================================================
# cldro list / validate / figures  (issue 5: claims, records, figures)
# ==========================================================================================
def _claim_names(names: list[str] | None) -> list[str]:
    from validation.claims import CLAIMS, get_claim

    if not names:
        return list(CLAIMS)
    return [get_claim(n).name for n in dict.fromkeys(names)]


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x == x else "nan"


def _print_table(records: list[tuple[str, object]]) -> bool:
    """Print the pass/fail table; return whether everything passed."""
    from validation.records import Record

    all_ok = True
    _echo(f"{'claim':28s} {'checks':>8s} {'seconds':>8s}  result")
    for name, rec in records:
        if not isinstance(rec, Record):
            all_ok = False
            _echo(f"{name:28s} {'-':>8s} {'-':>8s}  ERROR  {rec}")
            continue
        ok = rec.passed
        all_ok &= ok
        n_ok = sum(c.passed for c in rec.checks)
        _echo(
            f"{name:28s} {f'{n_ok}/{len(rec.checks)}':>8s} {rec.seconds:8.1f}  "
            f"{'PASS' if ok else 'FAIL'}"
        )
    for name, rec in records:
        if isinstance(rec, Record):
            for c in rec.failed:
                _echo(
                    f"  FAILED {name}: {c.name}: observed {_fmt(c.observed)}, expected "
                    f"{_fmt(c.expected)} ({c.relation}, tolerance {_fmt(c.tolerance)})"
                )
    return all_ok


@app.command("list")
def list_cmd() -> None:
    """The claims of the paper that `cldro validate` checks."""
    from validation.claims import CLAIMS

    for spec in CLAIMS.values():
        _echo(f"{spec.name:28s} {spec.reference}")
        _echo(f"{'':28s} {spec.summary}")


@app.command("validate")
def validate_cmd(
    claims: Annotated[list[str] | None, typer.Argument(help="Claims to run (default all).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes (< 3 min in all).")] = False,
    out: Annotated[Path, typer.Option(help="Output folder for records, figures.")] = Path(
        "runs/validate"
    ),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run the claim checks, print a pass/fail table, write records and figures."""
    import time

    from tqdm import tqdm

    from validation.claims import run_claim
    from validation.plotting import plot_record
    from validation.records import write_record

    names = _claim_names(claims)
    results: list[tuple[str, object]] = []
    t0 = time.perf_counter()
    bar = tqdm(names, desc="validate", unit="claim", file=sys.stderr, leave=False)
    for name in bar:
        bar.set_postfix_str(name)
        try:
            record = run_claim(name, quick=quick, seed=seed)
        except Exception as exc:  # a claim that crashes is reported, the others still run
            if _STATE["debug"]:
                traceback.print_exc()
            results.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        folder = out / name
        write_record(record, folder)
        try:
            plot_record(record, folder / f"{name}.png")
        except Exception as exc:  # a figure that cannot be drawn does not lose the record
            typer.echo(f"warning: {name}: figure not drawn ({type(exc).__name__}: {exc})", err=True)
        results.append((name, record))
    bar.close()
    ok = _print_table(results)
    _echo(f"records in {out}/  ({time.perf_counter() - t0:.1f} s)")
    if not ok:
        raise typer.Exit(code=1)


@app.command("figures")
def figures_cmd(
    from_dir: Annotated[Path, typer.Option("--from", help="Folder of records.")] = Path(
        "runs/validate"
    ),
    out: Annotated[Path, typer.Option(help="Folder for the figures.")] = Path("figures"),
) -> None:
    """Re-plot figures from saved records (no recomputation)."""
    from dro_theory.errors import InputError
    from validation.plotting import plot_record
    from validation.records import find_records, read_record

    paths = find_records(from_dir)
    if not paths:
        raise InputError(f"from: expected record folders (*/record.json), found none in {from_dir}")
    for path in paths:
        record = read_record(path)
        target = plot_record(record, out / f"{record.claim}.png")
        _echo(f"{record.claim:28s} -> {target}")


# ==========================================================================================
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cldro`` console script; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        rc = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:  # pragma: no cover - typer internals
        return int(exc.code or 0)
    except (CldroError, ValueError, FileNotFoundError, OSError) as exc:
        if "--debug" in args:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        return 2
    except Exception as exc:
        # click's usage errors (typer vendors click) carry show() and an exit code.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        if type(exc).__name__ == "Abort":
            return 130
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
