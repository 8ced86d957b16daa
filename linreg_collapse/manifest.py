"""Reuse of finished outputs: a manifest (JSON) beside them records, for each step, the fingerprint of
what the step was made from (its settings and :func:`code_fingerprint`) and the SHA-256 of every file it
wrote. A rerun skips a step whose fingerprint is unchanged and whose files are all present and
unmodified, and redoes it otherwise."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from .io import write_json

PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
"""The manifest's file name beside the outputs it describes (figures, the LM experiment)."""


def fingerprint(inputs: Any) -> str:
    """SHA-256 of ``inputs`` (anything JSON can write) as canonical JSON."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the package's Python sources: any change to the code makes earlier outputs stale."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Manifest:
    """The manifest at ``path`` (missing or unreadable: empty); file names are kept relative to its folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.steps = json.loads(self.path.read_text())
            if not isinstance(self.steps, dict):
                self.steps = {}
        except (OSError, ValueError):
            self.steps = {}

    def reusable(self, step: str, inputs: Any) -> Optional[list[Path]]:
        """The files of ``step`` when it was made from ``inputs`` and every file is there unchanged, else None."""
        entry = self.steps.get(step)
        if not isinstance(entry, dict) or entry.get("inputs") != fingerprint(inputs):
            return None
        files = {self.path.parent / name: digest for name, digest in entry.get("files", {}).items()}
        for path, digest in files.items():
            if not path.is_file() or file_digest(path) != digest:
                return None
        return list(files)

    def record(self, step: str, inputs: Any, paths) -> None:
        """Record that ``step`` made ``paths`` from ``inputs`` (written atomically at once)."""
        files = {os.path.relpath(p, self.path.parent): file_digest(p) for p in paths}
        self.steps[step] = {"inputs": fingerprint(inputs), "files": files}
        write_json(self.path, self.steps)
