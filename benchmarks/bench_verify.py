"""Where ``linreg-collapse verify`` spends its time: imports, sympy, each configuration's tracing, XLA
compiles and run, judging, the invariances and the mutants, in one cold process.

Usage::

    LINREG_COLLAPSE_JAX_CACHE=off python benchmarks/bench_verify.py [--reduced] [--mutants] [--json out.json]

Set the cache off (or ``JAX_COMPILATION_CACHE_DIR=$(mktemp -d)``) before starting: the process reads it on
import. Like the command, it compiles with ``jax_setup.prefer_fast_compiles``'s flags unless ``XLA_FLAGS`` sets
them. Compile counts and seconds come from JAX's monitoring events (``backend_compile`` per XLA program,
``jaxpr_trace`` per traced function); sympy's CPU seconds from the thread that derives the theory. Print one
line per configuration, then the totals; with ``--mutants`` also each mutant's kill margin.
"""

from __future__ import annotations

import argparse
import json
import os
import time

start = time.perf_counter()
cpu_start = time.process_time()

from linreg_collapse.compilation_cache import enable_compilation_cache  # noqa: E402
from linreg_collapse.jax_setup import prefer_fast_compiles  # noqa: E402

enable_compilation_cache()
prefer_fast_compiles()  # as the command does

import jax  # noqa: E402
from jax import monitoring  # noqa: E402

EVENTS = {"/jax/core/compile/backend_compile_duration": "compile",
          "/jax/core/compile/jaxpr_trace_duration": "trace",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower"}
totals = {name: [0, 0.0] for name in EVENTS.values()}
compiles: list[tuple[str, float]] = []


def listener(event: str, seconds: float, fun_name: str = "", **_) -> None:
    if event in EVENTS:
        entry = totals[EVENTS[event]]
        entry[0] += 1
        entry[1] += seconds
        if EVENTS[event] == "compile":
            compiles.append((fun_name, seconds))


monitoring.register_event_duration_secs_listener(listener)

from linreg_collapse import theory, verify  # noqa: E402
from linreg_collapse.mutants import applied, registry  # noqa: E402


def snapshot() -> dict:
    return {name: tuple(value) for name, value in totals.items()}


def kill_margins(checks, samples) -> dict:
    """Per mutant, (margin, check) of the check that kills it with the largest margin: how many times wider
    the check's interval could be before it passes the mutant (its square: about how many times fewer trials
    the check could have). An ``equal`` or ``upper`` check kills at distance |theory - estimate| beyond a
    half-width h (or a limit's tolerance, if larger), margin distance/h; an ``above`` check kills when h exceeds
    estimate - value, margin h/(estimate - value); the ``tight`` optimiser check has no interval (inf)."""
    out = {}
    for mutant in registry():
        with applied(mutant):
            outcomes = verify.judge_all(checks, samples)
        best = (0.0, "")
        for o in outcomes:
            if o.passed:
                continue
            half = (o.high - o.low) / 2
            if o.check.relation == "equal":  # a limit's tolerance counts like the half-width
                reach = max(half, o.check.tolerance * abs(o.theory))
                margin = abs(o.theory - o.estimate) / reach if reach > 0 else float("inf")
            elif o.check.relation == "upper":
                margin = (o.estimate - o.theory) / half if half > 0 else float("inf")
            elif o.check.relation == "above":
                margin = half / (o.estimate - o.theory) if o.estimate > o.theory else float("inf")
            else:
                margin = float("inf")
            best = max(best, (margin, f"{o.check.name} [{o.check.estimator}]"))
        out[mutant.name] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true")
    parser.add_argument("--mutants", action="store_true")
    parser.add_argument("--serial", action="store_true",
                        help="derive the theory before sampling, not beside it (clean CPU seconds per configuration)")
    parser.add_argument("--json")
    args = parser.parse_args()
    out: dict = {"load_before": os.getloadavg(), "imports_s": time.perf_counter() - start, "configurations": []}
    checks = verify.default_checks(0, reduced=args.reduced)
    sympy_cpu = []

    def derive():
        begin = time.thread_time()
        theory.results()
        sympy_cpu.append(time.thread_time() - begin)

    runs = dict(verify.ESTIMATOR_RUNS)

    def timed(estimator):
        def run(cfg):
            before, begin, cpu = snapshot(), time.perf_counter(), time.process_time()
            samples = runs[estimator](cfg)
            after = snapshot()
            row = {"estimator": estimator, "regime": cfg.regime, "edit_op": cfg.edit_op, "mask": cfg.mask,
                   "design": cfg.design, "T": cfg.T, "d": cfg.d, "generations": cfg.generations,
                   "trials": cfg.trials, "wall_s": time.perf_counter() - begin, "cpu_s": time.process_time() - cpu,
                   **{f"{k}_n": after[k][0] - before[k][0] for k in totals},
                   **{f"{k}_s": after[k][1] - before[k][1] for k in totals}}
            out["configurations"].append(row)
            print(f"{estimator:9s} {cfg.regime:20s} {cfg.edit_op:8s} {cfg.mask:8s} {cfg.design:5s} T={cfg.T:<4d} "
                  f"d={cfg.d:<3d} G={cfg.generations:<3d} trials={cfg.trials:<5d} {row['wall_s']:6.2f} s "
                  f"(cpu {row['cpu_s']:5.2f} s)  "
                  f"compiles {row['compile_n']} ({row['compile_s']:.2f} s)  traces {row['trace_n']}", flush=True)
            return samples
        return run

    verify.ESTIMATOR_RUNS.update({name: timed(name) for name in runs})
    begin = time.perf_counter()
    if args.serial:
        derive()
    with verify.ThreadPoolExecutor(1) as pool:
        derived = pool.submit(derive) if not args.serial else pool.submit(lambda: None)
        samples = verify.relative_samples(checks)
        sampled = time.perf_counter()
        derived.result()
    out["sampling_s"], out["sympy_wait_s"] = sampled - begin, time.perf_counter() - sampled
    out["sympy_cpu_s"] = sympy_cpu[0]
    begin = time.perf_counter()
    outcomes = verify.judge_all(checks, samples)
    out["judge_s"] = time.perf_counter() - begin
    out["passed"] = f"{sum(o.passed for o in outcomes)}/{len(outcomes)}"
    if not args.reduced:
        before, begin = snapshot(), time.perf_counter()
        verify.invariance_checks(0)
        out["invariances_s"] = time.perf_counter() - begin
        out["invariance_compiles"] = snapshot()["compile"][0] - before["compile"][0]
    if args.mutants:
        begin = time.perf_counter()
        verdicts = verify.run_mutants(checks, samples, registry())
        out["mutants_s"] = time.perf_counter() - begin
        out["killed"] = f"{sum(bool(k) for _, k in verdicts)}/{len(verdicts)}"
        out["margins"] = kill_margins(checks, samples)
        for name, (margin, check) in sorted(out["margins"].items(), key=lambda item: item[1][0]):
            print(f"  kill margin {margin:8.2f}  {name:34s} {check}")
    out["totals"] = {name: {"count": count, "seconds": seconds} for name, (count, seconds) in totals.items()}
    out["wall_s"], out["cpu_s"] = time.perf_counter() - start, time.process_time() - cpu_start
    out["jax"] = jax.__version__
    out["compiles"] = compiles
    print(json.dumps({k: v for k, v in out.items() if k not in ("configurations", "compiles")}))
    for name, seconds in sorted(compiles, key=lambda c: -c[1]):
        print(f"  compile {seconds:6.2f} s  {name}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
