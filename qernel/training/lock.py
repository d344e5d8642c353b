"""A lock file that keeps two runs out of one output directory.

``run.lock`` holds ``{"pid": ..., "host": ...}`` of the process that owns the directory. It is
created with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems). A lock left by a
process that no longer exists on this host (e.g. after ``kill -9``) is stale and taken over; a lock
of another host cannot be checked and is reported with the command to remove it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

__all__ = ["RunLock", "LockError", "LOCK_NAME"]

LOCK_NAME = "run.lock"


class LockError(RuntimeError):
    """The output directory is in use by another run."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """Context manager owning ``directory/run.lock`` for the lifetime of a run.

    Raises:
        LockError: another live process holds the lock (the message names its PID and host).
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = Path(directory) / LOCK_NAME
        self.owned = False

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> "RunLock":
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                pid, host = holder.get("pid"), holder.get("host")
                if host not in (None, me["host"]):
                    raise LockError(f"{self.path.parent} is in use by process {pid} on host {host} (lock file "
                                    f"{self.path}); if that run is dead, remove the lock file") from None
                if isinstance(pid, int) and _alive(pid):
                    raise LockError(f"{self.path.parent} is in use by process {pid} (lock file {self.path}); "
                                    "wait for it or choose another run.output_dir") from None
                print(f"qernel: taking over the stale lock {self.path} of process {pid} (no longer running)",
                      file=sys.stderr)
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            self.owned = True
            return self
        raise LockError(f"could not take the lock {self.path} (another process keeps replacing it)")

    def release(self) -> None:
        if self.owned and self._read().get("pid") == os.getpid():
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self.owned = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
