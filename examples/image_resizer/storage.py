"""The storage folder the web app and the workers share, and the one rule for paths in it.

    $ROUTING_STORAGE (default ./storage)
        uploads/    what the web app received, as sent
        resized/    what the workers wrote
        results/    one JSON file per job (results.py)

A job names its files by path; a path that leads outside the storage folder (`../../etc/passwd`,
an absolute path elsewhere, a symbolic link that points out) is refused, never opened.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from routing.worker import Permanent

__all__ = ["RESIZED", "RESULTS", "STORAGE_ENV", "UPLOADS", "atomic_write", "inside", "storage_dir"]

STORAGE_ENV = "ROUTING_STORAGE"
UPLOADS = "uploads"
RESIZED = "resized"
RESULTS = "results"


def storage_dir() -> Path:
    """The storage folder: `$ROUTING_STORAGE`, else `./storage`, read at each call (made if missing)."""
    root = Path(os.environ.get(STORAGE_ENV) or "storage").resolve()
    for sub in (UPLOADS, RESIZED, RESULTS):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def inside(folder: Path, path: str, *, what: str) -> Path:
    """`path` (relative to `folder`, or absolute) resolved, if it lies within `folder`;
    else `Permanent`: no retry makes an escaping path acceptable."""
    if not path or "\x00" in path:
        raise Permanent(f"{what} {path!r} is no file name")
    base = folder.resolve()
    resolved = (base / path).resolve()  # an absolute `path` replaces `base`; links are followed
    if resolved == base or not resolved.is_relative_to(base):
        raise Permanent(f"{what} {path!r} is outside {base}: refused")
    return resolved


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the whole new one, never a
    part: a temporary file beside it, flushed to disk, then renamed over it (`os.replace`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
