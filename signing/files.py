"""Files the signing layer writes (keys, certificates, the CA's index and CRL): mode 0600, in
folders made 0700, replaced atomically. The bus's own files use ``adapters.private_files``, the
same rules; ``signing`` imports nothing of ours, hence this small twin."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_dir", "write_private"]


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents with mode 0700 (existing folders are kept)."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another process: left as it is
            continue
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Replace ``path``'s content atomically (a reader sees the old or the new, never half);
    the file is 0600 from its first byte."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(data)
    os.replace(temporary, path)
    return path
