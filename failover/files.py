"""Files failover reads from its user (config, playbooks, manifests) and files it writes
(manifests, JUnit and drill reports), and the directories it keeps them in.

- An input is a regular file of bounded size, read without blocking: a FIFO, a device
  (``/dev/zero``) or a directory is refused at once with exit 2, never read until memory
  runs out or waited on forever.

- A file is written whole or not at all: a temporary file made with ``mkstemp``
  (``O_CREAT|O_EXCL``, so a planted file or symbolic link of that name is never opened) in
  the destination's directory, then ``os.replace``, which replaces a symbolic link at the
  destination instead of writing through it.
- Its mode is owner-only, 0600, narrowed further by the umask (never widened by it).
- A private directory (the state directory, its ``reports``) is 0700: created so, tightened
  to 0700 when found wider, and refused when it is a symbolic link that failover would
  write through.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from failover.errors import FailoverError, InputError, Problem

DIRECTORY_MODE = 0o700


def read_input(path: Path, *, max_bytes: int, what: str = "file") -> str:
    """The UTF-8 text of ``path``, a regular file of at most ``max_bytes``; InputError (exit 2)
    naming the file otherwise."""
    name = str(path)

    def refused(message: str) -> InputError:
        return InputError([Problem(file=name, message=message)])

    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer (it is refused just below).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise refused(f"{what} not found") from None
    except OSError as exc:
        raise refused(f"cannot read {what}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refused(f"the {what} is not a regular file")
        if info.st_size > max_bytes:
            raise refused(f"larger than {_size(max_bytes)}; refused")
        try:
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise refused(f"cannot read {what}: {exc.strerror}") from None
    if len(data) > max_bytes:  # it grew while being read
        raise refused(f"larger than {_size(max_bytes)}; refused")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise refused("not UTF-8 text") from None


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count // 1024} KiB"


def write_atomic(path: Path, data: bytes | str, *, what: str = "file") -> None:
    """Write ``data`` to ``path`` atomically, owner-only (see the module's docstring)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    content = data.encode("utf-8") if isinstance(data, str) else data
    try:
        # mkstemp: created 0600 less the umask, with O_EXCL under a name of its own.
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise FailoverError(f"cannot write the {what}: {exc.strerror}", where=str(path)) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise FailoverError(f"cannot write the {what}: {exc.strerror}", where=str(path)) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def private_directory(path: Path, *, what: str = "directory") -> Path:
    """``path`` as a directory only its owner can use: created 0700, or tightened to 0700;
    InputError (exit 2, nothing written) when it is a symbolic link or not a directory."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        try:
            path.mkdir(mode=DIRECTORY_MODE, parents=True)
        except FileExistsError:  # made meanwhile: checked below like any other
            pass
        except OSError as exc:
            raise FailoverError(f"cannot create the {what}: {exc.strerror}", where=str(path)) from None
        info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise InputError([Problem(file=str(path), message=f"the {what} is a symbolic link; failover writes only into "
                                                           "a directory of its own: remove the link")])
    if not stat.S_ISDIR(info.st_mode):
        raise InputError([Problem(file=str(path), message=f"the {what} is not a directory")])
    if stat.S_IMODE(info.st_mode) & 0o077:
        try:
            os.chmod(path, stat.S_IMODE(info.st_mode) & DIRECTORY_MODE)
        except OSError as exc:
            raise FailoverError(f"cannot make the {what} owner-only: {exc.strerror}", where=str(path)) from None
    return path

