"""Output files that appear whole or not at all, and never where they must not.

Users run ptviz as root, so an ``-o`` path is checked before anything is
written and again at the rename:

* a path that exists and is not a regular file (a device node, a FIFO, a
  socket, a directory) is refused, and so is a symbolic link: renaming over
  a link would replace the link, writing through it would hit whatever it
  points at — neither is what the user asked for;
* an existing regular file is replaced only when the caller says ``force``.

The data goes to a temporary ``.ptviz-*.part`` file beside the output (same
filesystem, so the final step is a rename or a hard link), which is removed
on every way out: an exception, :meth:`AtomicOutput.abort`, or the process
ending on a signal (the CLI turns SIGTERM/SIGHUP into an exception and calls
:func:`remove_partial_outputs` at exit). Without ``force`` the final step is
``link(tmp, path)``, which fails if anything appeared at ``path`` meanwhile,
so a file created after the check is still not replaced.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from typing import BinaryIO

from ..errors import OutputError

#: Temporary files not yet renamed or removed, for cleanup when the process ends.
_LIVE: set[str] = set()

_KIND_OF_MODE = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                 (stat.S_ISDIR, "a directory"))


def check_output(path: str | os.PathLike, force: bool = False) -> None:
    """Raise :class:`OutputError` if ``path`` may not be written; O(1) system calls.

    Call it before long work, so a refusal comes first, not after minutes.
    """
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise OutputError(f"cannot write: directory {parent} does not exist",
                              path) from None
        return
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror}", path) from None
    if stat.S_ISLNK(st.st_mode):
        raise OutputError("is a symbolic link; ptviz does not write through links "
                          "(give the path of a regular file)", path)
    for test, kind in _KIND_OF_MODE:
        if test(st.st_mode):
            raise OutputError(f"is {kind}; ptviz writes only regular files", path)
    if not stat.S_ISREG(st.st_mode):
        raise OutputError("is not a regular file; ptviz writes only regular files", path)
    if not force:
        raise OutputError("exists; use --force to replace it", path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class AtomicOutput:
    """A binary file written under a temporary name and put in place by :meth:`commit`.

    ``file`` is the open temporary file. ``commit`` syncs it and moves it to
    ``path``; ``abort`` (or leaving a ``with`` block on an exception) removes it.
    OS errors name ``path``, never the temporary name.
    """

    def __init__(self, path: str | os.PathLike, force: bool = False) -> None:
        self.path = os.fspath(path)
        self.force = force
        check_output(self.path, force)
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=".ptviz-", suffix=".part", dir=directory)
        except OSError as exc:
            raise OutputError(f"cannot write: {exc.strerror}", self.path) from None
        _LIVE.add(self._tmp)
        try:
            os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp's 0600 is not what users expect
            self.file: BinaryIO = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self._remove()
            raise
        self.done = False

    def error(self, exc: OSError) -> OutputError:
        """The one-line error for a failed write (a full disk, a quota)."""
        return OutputError(f"cannot write: {exc.strerror or exc}", self.path)

    def commit(self) -> None:
        """Sync the data and move it to ``path``; refuses what :func:`check_output` refuses."""
        if self.done:
            return
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            check_output(self.path, self.force)
            self._place()
        except OSError as exc:
            self.abort()
            raise self.error(exc) from None
        except BaseException:
            self.abort()
            raise
        self.done = True
        _LIVE.discard(self._tmp)

    def _place(self) -> None:
        if self.force:
            os.replace(self._tmp, self.path)   # path is a regular file or absent (checked)
            return
        try:
            os.link(self._tmp, self.path)      # fails if anything is there by now
        except FileExistsError:
            raise OutputError("exists; use --force to replace it", self.path) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            os.rename(self._tmp, self.path)    # no hard links here (vfat, some FUSE)
            return
        self._remove()

    def abort(self) -> None:
        """Drop the output: nothing is renamed, the temporary file is removed."""
        if self.done:
            return
        self.done = True
        try:
            self.file.close()
        except OSError:
            pass
        self._remove()

    def _remove(self) -> None:
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass
        _LIVE.discard(self._tmp)

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def remove_partial_outputs() -> None:
    """Remove every temporary output still open (the process is ending)."""
    for tmp in list(_LIVE):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        _LIVE.discard(tmp)
