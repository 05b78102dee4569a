"""Private files and directories under the state directory.

The state directory holds the admin password (``clouds.yaml``), the token
signing key, every database and every disk byte of every server. None of it
may be readable by other local users, whatever umask the process inherited,
and no write may be redirected by a file someone planted: a stale temp file
left world-readable, or a symlink at a predictable temp name.

So every write here goes to a fresh, randomly named file created with
``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600 in the destination's own
directory, is fsynced, and only then renamed over the destination. The mode
is set by ``fchmod`` as well, since the mode given to ``open`` is still
filtered through the umask.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

FILE_MODE = 0o600
DIR_MODE = 0o700

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def private_dir(path: str) -> str:
    """Create ``path`` and any missing parents as 0700; tighten it if it already exists.

    ``os.makedirs(mode=...)`` applies the mode only to the last component and
    through the umask, so each missing component is made and chmodded here.
    Existing parents are left alone (they may be shared, like /tmp); the
    directory itself loses group and other bits when this user owns it.
    """
    path = os.path.abspath(path)
    missing = []
    head = path
    while not os.path.lexists(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue  # another thread or process made it first; tightened below
        os.chmod(directory, DIR_MODE)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        # an operator may point the state dir (or image store) elsewhere on purpose;
        # the target is what must be private
        st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(path)
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
    return path


def create_private(path: str) -> int:
    """Open a new file at ``path`` for writing, 0600; fails if anything is already there.

    A planted symlink or an old file at ``path`` makes this raise instead of
    being written through or reused.
    """
    fd = os.open(path, _CREATE_FLAGS, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _new_temp(directory: str, name: str) -> tuple[int, str]:
    # mkstemp already opens with O_EXCL and 0600 and, being O_EXCL, never follows a
    # symlink; O_NOFOLLOW is not one of its flags, so create_private is used when the
    # caller needs a temp name of its own.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def write_atomic(path: str, data: bytes | bytearray | memoryview | str,
                 tmp_path: str | None = None, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` all at once: readers see the old or the new file.

    ``tmp_path`` names the temp file when the caller sweeps its own stale temp
    files by name; it must not exist yet. Otherwise a random name is used.
    ``durable=False`` skips the fsync, for content that is verified on every
    read and written at a rate where a sync each time would cost too much.
    """
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    if tmp_path is None:
        fd, tmp = _new_temp(directory, name)
    else:
        tmp = tmp_path
        fd = create_private(tmp)
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def ensure_private_file(path: str) -> None:
    """Make sure ``path`` exists as a 0600 regular file before another library opens it.

    SQLite creates its database 0644 less the umask and gives its -wal and -shm
    files the database file's mode, so creating the (empty, valid) database file
    here first makes all three private. An existing file of this user is tightened.
    """
    try:
        os.close(create_private(path))
        return
    except FileExistsError:
        pass
    tighten(path)


def tighten(path: str) -> None:
    """Drop group and other bits of an existing file of this user (left by an older
    version or another umask); a symlink or a missing file is left alone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
