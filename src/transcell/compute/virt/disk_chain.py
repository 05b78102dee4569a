"""A running guest's root disk frozen layer by layer, so it can be copied while it runs.

Pre-copy needs two things of a disk the guest keeps writing: a consistent
image to read from, and, each round, the chunks written since the last one.
Both come from external qcow2 overlays, the way a hypervisor takes an
external snapshot: the current top layer is frozen (nothing writes it again)
and a new, empty overlay on top of it takes the guest's writes. The frozen
chain is a crash-consistent image of the disk at that instant; the chunks the
guest changed during a round are exactly the clusters the layer frozen at its
end holds, which ``qemu-img map`` reads from qcow2 metadata without reading
any data.

qcow2 persistent dirty bitmaps would answer the second question too, but
reading a bitmap's contents takes an NBD client speaking the dirty-bitmap
meta context (qemu-nbd plus libnbd), which a host does not otherwise need,
and a bitmap gives no frozen image to read from while the guest writes.

Layout, in the guest's directory: ``disk`` is always the top (what the guest
writes), ``disk.pre-1`` the disk as it was before the first freeze, ``disk.pre-N``
what the guest wrote between freezes N-1 and N. Each swap is one ``rename(2)``
of a ready overlay over ``disk``, under the disk's writer lock, after a hard
link keeps the old top under its frozen name: a crash anywhere leaves either
the old top or the new one as ``disk``, with the same bytes to the guest.
:func:`collapse` folds the frozen layers back into one file when the move no
longer needs them (abandoned, or reverted).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable

from transcell import exception
from transcell.compute.virt import disk

_PRE_RE = re.compile(r"^(?P<name>.+)\.pre-(?P<n>\d+)$")


def frozen_layers(root: str) -> list[str]:
    """The frozen layers below ``root``, oldest first."""
    directory, name = os.path.split(os.path.abspath(root))
    found = []
    for entry in os.listdir(directory):
        match = _PRE_RE.match(entry)
        if match and match["name"] == name:
            found.append((int(match["n"]), os.path.join(directory, entry)))
    return [path for _, path in sorted(found)]


def root_of(path: str) -> str:
    """The disk a frozen layer belongs to (``path`` itself when it is no layer)."""
    directory, name = os.path.split(path)
    match = _PRE_RE.match(name)
    return os.path.join(directory, match["name"]) if match else path


def chained(root: str) -> bool:
    """Whether a chain of frozen layers stands under ``root`` (its top is then qcow2,
    whatever the disk was built as)."""
    layers = frozen_layers(root)
    return bool(layers) and layers[0].endswith(".pre-1")


def freeze(root: str, fmt: str) -> tuple[str, str]:
    """Freeze the top layer of ``root``; returns (frozen layer's path, its format).

    The guest's next write goes to a new empty qcow2 overlay on the frozen
    layer; the frozen layer and everything below it never change again while
    the chain stands, so they can be read directly by many threads.
    """
    root = os.path.abspath(root)
    with disk.writer_lock(root):
        if not os.path.exists(root):
            raise exception.DiskError(reason=f"no disk at {root}")
        layers = _standing(root)
        if layers and os.path.samefile(layers[-1], root):
            frozen = layers[-1]  # linked by a freeze that died before its swap
        else:
            number = int(_PRE_RE.match(os.path.basename(layers[-1]))["n"]) + 1 if layers else 1
            frozen = f"{root}.pre-{number}"
        size = disk.virtual_size(root, fmt)
        fresh = disk.temp_path_for(root)
        # -u: the backing file is named now and comes into being by the link below
        disk._run([disk.QEMU_IMG, "create", "-q", "-u", "-f", "qcow2", "-b", frozen,
                   "-F", fmt, fresh, str(size)], f"qemu-img create overlay on {frozen}")
        try:
            with contextlib.suppress(FileExistsError):  # linked by a crashed earlier try
                os.link(root, frozen)
            os.replace(fresh, root)
        except BaseException:
            disk._unlink_quietly(fresh)
            raise
    return frozen, fmt


def collapse(root: str, fmt: str, unless: Callable[[], bool] | None = None) -> bool:
    """Fold every frozen layer and the top back into the oldest layer (of format
    ``fmt``, the disk's own before any freeze), which becomes ``root`` again;
    False when there was no chain, or when ``unless()`` is true.

    ``unless`` is asked under the disk's writer lock, which every freeze takes:
    a caller outside the move (the audit) re-checks there that no move uses
    the chain, and a pre-copy that starts after that check freezes only once
    the fold is done, so a fold never pulls a layer from under a round reading it.

    Writes only what the guest wrote while the chain stood. Safe to repeat after
    a crash at any point: until the rename the chain reads the same, and after
    it only layers nothing reads are left, which the next call deletes.
    """
    root = os.path.abspath(root)
    with disk.writer_lock(root):
        if not frozen_layers(root) or (unless is not None and unless()):
            return False
        disk._check_format(fmt)
        layers = _standing(root)
        if layers:
            oldest = layers[0]
            if os.path.samefile(root, oldest):
                os.unlink(oldest)  # a link of the top itself: nothing was frozen under it
            else:
                disk._run([disk.QEMU_IMG, "commit", "-q", "-f", "qcow2", "-b", oldest, root],
                          f"qemu-img commit {root} into {oldest}")
                os.replace(oldest, root)
            for layer in layers[1:]:
                disk._unlink_quietly(layer)
    return True


def _standing(root: str) -> list[str]:
    """The layers of the chain under ``root``, after deleting those of a fold that got
    as far as its rename: the disk before the first freeze is layer 1 as long as the
    chain stands, so layers without it are leftovers nothing reads."""
    layers = frozen_layers(root)
    if layers and not layers[0].endswith(".pre-1"):
        for layer in layers:
            disk._unlink_quietly(layer)
        return []
    return layers
