"""``linreg-collapse verify``: the default grid of theory-vs-simulation checks (exit 0 only when all pass);
``--mutants`` also judges every registered mutation of the theory on the same samples (exit 0 only when every
mutant is killed)."""

from __future__ import annotations

import argparse

from ..errors import require
from ..io import check_writable, write_json
from ..jax_setup import prefer_fast_compiles
from ..progress import add_progress_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="check every closed form and bound against simulation; exit 0 only when all pass",
        description="Run the default grid: every closed form against the exact conditional estimator and the "
                    "plain simulator, bounds against the worst schedules measured, the resample supremum against "
                    "a schedule optimiser, and the whitening invariances. Print a table with each check's "
                    "resolution and write JSON. Exit code 0 only when every check passes (and, with --mutants, "
                    "every mutant is killed), else 1.")
    p.add_argument("--seed", type=int, default=0, help="seed of every configuration (default 0)")
    p.add_argument("--json", metavar="PATH", default="results/verify.json",
                   help="where to write the results (default results/verify.json)")
    p.add_argument("--mutants", action="store_true",
                   help="also apply each registered mutation of the theory alone and judge it on the same samples")
    p.add_argument("--reduced", action="store_true",
                   help="the CI grid: exact estimator and simulator-only checks with fewer trials, no invariances")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prefer_fast_compiles()  # before JAX is imported: the grid's programs compile for longer than they run
    from ..mutants import registry
    from ..verify import (INVARIANCE_TOLERANCE, LEVEL, default_checks, format_table, invariance_checks,
                          run_checks, run_mutants)

    require(args.seed >= 0, f"--seed {args.seed} must be >= 0")
    check_writable("--json", args.json)
    checks = default_checks(args.seed, reduced=args.reduced)
    outcomes, samples, wall = run_checks(checks, progress=not args.no_progress)
    print(format_table(outcomes))
    passed = all(o.passed for o in outcomes)
    report = {"passed": passed, "level": LEVEL, "seed": args.seed, "reduced": args.reduced,
              "checks": [o.to_dict() for o in outcomes]}
    if not args.reduced:
        invariances = invariance_checks(args.seed)
        print("\ninvariances (max relative per-trial difference, same keys):")
        for name, difference in invariances:
            print(f"  {name:70s} {difference:9.2e}  {'pass' if difference <= INVARIANCE_TOLERANCE else 'FAIL'}")
        passed = passed and all(diff <= INVARIANCE_TOLERANCE for _, diff in invariances)
        report["invariances"] = [{"name": name, "max_relative_difference": diff} for name, diff in invariances]
    if args.mutants:
        verdicts = run_mutants(checks, samples, registry())
        print("\nmutants (each applied alone, judged on the same samples):")
        for mutant, killers in verdicts:
            verdict = f"killed by {killers[0]}" + (f" (+{len(killers) - 1})" if len(killers) > 1 else "") \
                if killers else "survived"
            print(f"  {mutant.name:34s} {mutant.mistake[:52]:52s} {verdict}")
        killed = sum(bool(k) for _, k in verdicts)
        print(f"{killed}/{len(verdicts)} mutants killed")
        passed = passed and killed == len(verdicts)
        report["mutants"] = [{"name": m.name, "mistake": m.mistake, "killed_by": k} for m, k in verdicts]
    report["passed"] = passed
    report["wall_seconds"] = wall
    print(f"wall time {wall:.1f} s")
    write_json(args.json, report)
    return 0 if passed else 1
