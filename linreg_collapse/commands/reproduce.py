"""``linreg-collapse reproduce``: the main job. Simulates every regime on built-in defaults, prints a
summary table beside the theory, writes one JSON per run into ``--out``, then the theorem figures
(``--out``/figures) and the language-model experiment (``--out``/lm, tiny preset). A rerun reuses what
is finished (a run whose JSON holds the same configuration, a figure or the language-model experiment
whose manifest.json records the same settings and unchanged files) and says what it reused; an
interrupted job continues where it stopped (simulation chunks and language-model generations resume)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..config import SimConfig
from ..errors import require
from ..io import check_writable, write_json
from ..manifest import MANIFEST, Manifest, code_fingerprint
from ..progress import Progress, add_progress_argument, inner

DEFAULT = SimConfig(T=100, d=10, sigma=1.0, generations=20, trials=2000, seed=0)

# name -> overrides of DEFAULT: every regime, both edit operators, every built-in mask schedule.
RUNS = {
    "replace": dict(regime="replace"),
    "accumulate": dict(regime="accumulate"),
    "accumulate-subsample": dict(regime="accumulate-subsample"),
    "edit-perturb-random": dict(regime="edit", edit_op="perturb", mask="random", edit_fraction=0.05),
    "edit-resample-random": dict(regime="edit", edit_op="resample", mask="random", edit_fraction=0.05),
    "edit-perturb-disjoint": dict(regime="edit", edit_op="perturb", mask="disjoint", edit_fraction=0.5, decay=0.5),
    "edit-resample-disjoint": dict(regime="edit", edit_op="resample", mask="disjoint", edit_fraction=0.5, decay=0.5),
    "edit-resample-threshold": dict(regime="edit", edit_op="resample", mask="threshold", threshold=0.5),
}


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="the main job: simulate every regime, print the table, write results",
                              description=__doc__.replace("``", ""))  # --help shows plain text
    p.add_argument("--out", default="results", help="output directory (default: results)")
    p.add_argument("--trials", type=int, default=DEFAULT.trials)
    p.add_argument("--generations", type=int, default=DEFAULT.generations)
    p.add_argument("--seed", type=int, default=DEFAULT.seed)
    p.add_argument("--no-figures", action="store_true", help="skip the theorem figures")
    p.add_argument("--no-lm", action="store_true", help="skip the language-model experiment")
    add_progress_argument(p)
    p.set_defaults(run=run)


def configs(trials: int, generations: int, seed: int) -> dict[str, SimConfig]:
    """The validated configuration of every run of the main job."""
    base = dataclasses.replace(DEFAULT, trials=trials, generations=generations, seed=seed)
    return {name: dataclasses.replace(base, **overrides) for name, overrides in RUNS.items()}


def run(args: argparse.Namespace) -> int:
    runs = configs(args.trials, args.generations, args.seed)
    out = Path(args.out)
    require(not out.is_file(), f"--out {args.out!r} is a file, not a directory")
    check_writable("--out", out / "summary.json")
    from ..simulate import simulate, stored_result

    progress = not args.no_progress
    rows, reused = [], []
    with Progress(len(runs), "reproduce: runs", "run", enabled=progress) as bar:
        for name, cfg in runs.items():
            path = out / f"{name}.json"
            result = stored_result(path, cfg)
            if result is None:
                result = simulate(cfg, progress=inner(progress), checkpoint=f"{path}.partial.npz")
                write_json(path, result.to_json_dict())
                Path(f"{path}.partial.npz").unlink(missing_ok=True)
            else:
                reused.append(name)
            rows.append(_summary_row(name, result.to_json_dict(), cfg))
            bar.update(1, note=f"{name} (reused)" if reused[-1:] == [name] else name)
    write_json(out / "summary.json", rows)
    print(format_summary(rows, runs), flush=True)
    print(f"\nwrote {len(runs)} runs and summary.json to {out}/" + _reused_note(reused, "runs"), flush=True)
    if not args.no_figures:
        from ..figures import write_all

        paths, reused_figures = write_all(out / "figures", progress=progress)
        print(f"wrote {len(paths)} figure files to {out / 'figures'}/" + _reused_note(reused_figures, "figures"),
              flush=True)
    if not args.no_lm:
        _language_model(out / "lm", progress)
    return 0


def _reused_note(names: list[str], what: str) -> str:
    return f" (reused {len(names)} finished {what}: {', '.join(names)})" if names else ""


def _language_model(out: Path, progress: bool) -> None:
    """The tiny-preset language-model experiment, reused when out/manifest.json records it finished."""
    from ..lm.experiment import PRESETS, preset_dict, run_default

    manifest = Manifest(out / MANIFEST)
    inputs = {"preset": preset_dict(PRESETS["tiny"]), "code": code_fingerprint()}
    if manifest.reusable("experiment", inputs) is not None:
        print(f"reused the language-model experiment (tiny preset) in {out}/ (finished, same settings)", flush=True)
        return
    results = run_default(out, progress=progress)
    manifest.record("experiment", inputs, [out / "results.json", *results["figures"]])
    print(f"wrote the language-model experiment (tiny preset) to {out}/", flush=True)


def _summary_row(name: str, data: dict, cfg: SimConfig) -> dict:
    from ..theory import expected_relative_error, theory_kind

    base, last = data["base"], -1
    fractions = data["edit_fraction"]
    theory = expected_relative_error(cfg)
    return {
        "run": name,
        "generations": data["generation"][last],
        "final_mean_over_base": data["mean"][last] / base,
        "final_ci95_over_base": [data["ci_low"][last] / base, data["ci_high"][last] / base],
        "total_edit_fraction": None if fractions is None else sum(fractions),
        "theory_over_base": None if theory is None else float(theory[last]),
        "theory_kind": theory_kind(cfg),
    }


def format_summary(rows: list[dict], runs: dict[str, SimConfig]) -> str:
    cfg = next(iter(runs.values()))
    lines = [f"# T={cfg.T} d={cfg.d} sigma={cfg.sigma:g} trials={cfg.trials}; error after N={cfg.generations} "
             f"generations / base, base = sigma^2 d/(T-d-1) = {cfg.base:.4g}; generation 0 = fit on real data",
             "# theory: 'exact' = expectation at these T, d; 'limit' = proportional limit d/T -> gamma; "
             "'-' = no closed form (see docs/theory.md)",
             f"{'run':<26} {'mean/base':>10} {'95% interval / base':>22} {'sum p_n':>8} {'theory':>8} {'':<6}"]
    for row in rows:
        lo, hi = row["final_ci95_over_base"]
        total = "" if row["total_edit_fraction"] is None else f"{row['total_edit_fraction']:.3f}"
        theory = "-" if row["theory_over_base"] is None else f"{row['theory_over_base']:.3f}"
        lines.append(f"{row['run']:<26} {row['final_mean_over_base']:>10.3f} [{lo:>9.3f}, {hi:>9.3f}] "
                     f"{total:>8} {theory:>8} {row['theory_kind'] or '':<6}")
    return "\n".join(lines)
