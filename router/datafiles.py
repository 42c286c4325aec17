"""Where turnout finds the public data files it reads: a mirror folder (TURNOUT_DATA_DIR, or
`../shared/data` beside a checkout), then the cache that `python -m evals.datasets fetch` fills.

The dataset registry (evals.datasets) resolves every training and eval file through these folders,
and the gateway reads the one file it needs at run time (gitleaks' rules) through them too. This
module never downloads anything and never copies a file into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def mirror_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("TURNOUT_DATA_DIR"):
        dirs.append(Path(os.environ["TURNOUT_DATA_DIR"]))
    dirs.append(CHECKOUT.parent / "shared" / "data")
    return dirs


def cache_dir() -> Path:
    return Path(os.environ.get("TURNOUT_CACHE_DIR", Path.home() / ".cache" / "turnout")) / "datasets"


def candidates(local_path: str) -> list[Path]:
    """Where a file laid out like the mirror (`secrets/gitleaks.toml`) may be, in the order searched."""
    return [folder / local_path for folder in mirror_dirs()] + [cache_dir() / local_path]


def find(local_path: str) -> Path | None:
    return next((path for path in candidates(local_path) if path.is_file()), None)
