"""Sweep grids: ``simulate``'s flag names mapped to a value or a list of values (TOML or a mapping).

Its configurations are the Cartesian product, in the order the keys are written (the last key varies
fastest), every other field at ``simulate``'s default. Parsing and validation need no JAX, so a bad grid
is reported at once (one line naming the key, or the configuration and the constraint it breaks).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from pathlib import Path
from typing import Any, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .config import SimConfig, load_masks
from .errors import InputError, require

MASKS_FILE = "masks-file"
_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def grid_keys() -> dict[str, dataclasses.Field]:
    """Grid key (``simulate``'s flag without ``--``) -> its SimConfig field."""
    return {f.name.replace("_", "-"): f for f in dataclasses.fields(SimConfig) if f.name != "masks"}


@dataclasses.dataclass(frozen=True)
class Grid:
    """A parsed grid: each key's values, in file order; relative ``masks-file`` paths start at ``base_dir``."""

    values: dict[str, list]
    source: str = "grid"
    base_dir: Path = Path(".")

    def points(self) -> list[tuple[dict, SimConfig]]:
        """(every parameter by grid key, validated SimConfig) for each point of the product, in order
        (``masks-file`` NaN when none, as pandas writes a missing value)."""
        return [self._point(dict(zip(self.values, values))) for values in itertools.product(*self.values.values())]

    def swept(self, params: Mapping[str, Any]) -> str:
        """``T=8, sigma=0.5``: the values ``params`` has at the keys this grid sweeps (those with more than
        one value); empty when it sweeps none."""
        return ", ".join(f"{k}={params[k]!r}" for k, v in self.values.items() if len(v) > 1)

    def _point(self, chosen: dict) -> tuple[dict, SimConfig]:
        fields = grid_keys()
        masks_file = chosen.get(MASKS_FILE, "")
        try:
            masks = load_masks(str(self.base_dir / masks_file)) if masks_file else None
            cfg = SimConfig(masks=masks, **{fields[k].name: v for k, v in chosen.items() if k != MASKS_FILE})
        except InputError as err:
            swept = self.swept(chosen)
            raise InputError(f"{self.source}: " + (f"configuration {{{swept}}}: " if swept else "") + str(err)) from None
        return {**{k: getattr(cfg, f.name) for k, f in fields.items()}, MASKS_FILE: masks_file or math.nan}, cfg


def parse_grid(grid: Mapping[str, Any] | str | os.PathLike) -> Grid:
    """A :class:`Grid` from a mapping or a TOML file (InputError naming the key on an unknown key or bad value)."""
    source, base_dir = "grid", Path(".")
    if not isinstance(grid, Mapping):
        path = Path(grid)
        source, base_dir = str(path), path.parent
        try:
            grid = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"grid file {source!r} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, IsADirectoryError) as err:
            raise InputError(f"grid file {source!r} is not a TOML file: {err}") from None
    fields = grid_keys()
    require(len(grid) > 0, f"{source}: the grid is empty (give keys like regime = \"edit\", T = [64, 128])")
    values = {}
    for key, value in grid.items():
        require(key in fields or key == MASKS_FILE,
                f"{source}: unknown key {key!r} (keys are simulate's flags: {', '.join([*fields, MASKS_FILE])})")
        items = value if isinstance(value, list) else [value]
        require(len(items) > 0, f"{source}: key {key!r} has no values (empty list)")
        kind = str if key == MASKS_FILE else type(fields[key].default)
        values[key] = [_typed(f"{source}: key {key!r}", kind, item) for item in items]
    return Grid(values, source, base_dir)


def _typed(where: str, kind: type, value):
    """``value`` as ``kind``, the type of the field's default (a float key accepts integers), else InputError.
    Fields of other types (a None default) take the value as written; SimConfig validates it."""
    if kind not in _TYPE_NAMES:
        return value
    accepted = (int, float) if kind is float else kind
    require(isinstance(value, accepted) and (kind is bool or not isinstance(value, bool)),
            f"{where}: {value!r} must be {_TYPE_NAMES[kind]}")
    return float(value) if kind is float else value
