"""Files and folders a node writes for itself: readable by the node's account only.

Queues, documents, the audit log, the operator inbox, logs, generated configurations and
exports hold personal data or secrets, so every one is created with mode 0600 and every folder
the bus makes for them with 0700, whatever the process's umask. ``private_dir`` makes a folder
(and its missing parents) 0700; ``private_file`` creates a file 0600, or narrows an existing
one the node owns to 0600; ``write_private`` replaces a file's content atomically, 0600 from the
first byte. ``run_bus.py`` also sets the umask to 077 (``restrict_umask``), so files that
libraries create beside them (SQLite's ``-wal`` and ``-shm``, uvicorn's) are private too.

Lives in ``signing`` (keys, certificates, the CA's index and CRL are written with it), the
lowest floor that writes files, so the bus, the demo and the bench use the same one.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FILE_MODE", "FOLDER_MODE", "private_dir", "private_file", "restrict_umask",
           "write_private"]

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def restrict_umask() -> int:
    """Make every file this process creates private by default; returns the previous umask."""
    return os.umask(0o077)


def private_dir(path: Path | str) -> Path:
    """Create ``path`` and its missing parents with mode 0700; an existing folder is kept as
    it is (it may be shared on purpose, like /tmp)."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:  # made meanwhile by another process: left as it is
            continue
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode passes through the umask
    return path


def private_file(path: Path | str) -> Path:
    """Create ``path`` (and its folder) with mode 0600 if missing; an existing file this
    process may change is narrowed to 0600."""
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, FILE_MODE)
    try:
        info = os.fstat(fd)
        if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def write_private(path: Path | str, data: bytes | str) -> Path:
    """Replace ``path``'s content with ``data`` atomically; the file is 0600 throughout."""
    path = Path(path)
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), FILE_MODE)
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(temporary, path)
    return path
