"""Cold start: help, argument and configuration errors import no heavy library (checked in fresh
subprocesses through sys.modules, not by timing); the package's lazy exports; the compilation-cache switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "sympy", "matplotlib", "scipy", "pandas")

# Run the CLI on argv, then print which heavy modules the process imported.
PROBE = """
import json, sys
%s
from linreg_collapse.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}))
"""


def probe(*argv: str, preload: str = "") -> dict:
    """Exit code and heavy modules imported by ``linreg-collapse ARGV`` in a fresh process (after ``preload``)."""
    result = subprocess.run([sys.executable, "-c", PROBE % (preload, HEAVY), *argv], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(result.stdout.strip().splitlines()[-1])


CHEAP = {
    "help": ["--help"],
    "command help": ["simulate", "--help"],
    "sweep help": ["sweep", "--help"],
    "figures help": ["figures", "--help"],
    "argument error": ["simulate", "--T", "x"],
    "unknown figure": ["figures", "--only", "nope"],
    "figure settings error": ["figures", "--trials", "1"],
    "configuration error": ["simulate", "--T", "5", "--d", "5"],
    "bound error": ["bound", "--regime", "replace", "--T", "5", "--d", "5"],
}


@pytest.mark.parametrize("name", CHEAP)
def test_help_and_errors_import_no_heavy_library(name):
    outcome = probe(*CHEAP[name])
    assert outcome["code"] in (0, 2), outcome
    assert outcome["heavy"] == [], f"{CHEAP[name]} imported {outcome['heavy']}"


def test_probe_sees_heavy_imports():
    """Negative control: the same probe reports JAX once something has imported the simulator."""
    assert "jax" in probe("--help", preload="import linreg_collapse.simulate")["heavy"]


def test_lazy_exports_stay_functions():
    code = ("import linreg_collapse.simulate, linreg_collapse.sweep, sys\n"
            "import linreg_collapse as lc\n"
            "from linreg_collapse import simulate, sweep, SimResult\n"
            "print(callable(simulate) and callable(sweep) and lc.simulate is simulate and lc.sweep is sweep\n"
            "      and sys.modules['linreg_collapse.simulate'].SimResult is SimResult)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == "True", result.stderr


@pytest.mark.parametrize("setting, expected", [("off", None), ("~/jit-cache", str(Path("~/jit-cache").expanduser()))])
def test_cache_setting(setting, expected, tmp_path):
    code = ("import os; from linreg_collapse.compilation_cache import enable_compilation_cache as e\n"
            "print(repr((e(), os.environ.get('JAX_COMPILATION_CACHE_DIR'))))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(PYTHONPATH=str(ROOT), LINREG_COLLAPSE_JAX_CACHE=setting)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.stdout.strip() == repr((expected, expected)), result.stderr


def test_figure_names_match_the_figures():
    from linreg_collapse.figure_settings import FIGURE_NAMES
    from linreg_collapse.figures import FIGURES

    assert tuple(FIGURES) == FIGURE_NAMES


def test_xla_settings_keep_what_the_user_set():
    """The package's XLA defaults (scheduler, LLVM level 1) are added to XLA_FLAGS only where the user set
    neither; a wrong rule that always appends its own level is caught by the last assertion."""
    from linreg_collapse.jax_setup import OPT_LEVEL_FLAG, SCHEDULER_FLAG, configure_xla

    fresh = {}
    configure_xla(fresh)
    assert fresh["XLA_FLAGS"].split() == [f"{SCHEDULER_FLAG}=false", f"{OPT_LEVEL_FLAG}=1"]
    own = {"XLA_FLAGS": f"--xla_force_host_platform_device_count=4 {OPT_LEVEL_FLAG}=0"}
    configure_xla(own)
    assert own["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=4", f"{OPT_LEVEL_FLAG}=0",
                                        f"{SCHEDULER_FLAG}=false"]
    assert own["XLA_FLAGS"].count(OPT_LEVEL_FLAG) == 1
