"""Atomic writes: a crash never leaves a half-written file or model directory that loads.

Files and folders written here get the permissions any new file gets (0666 / 0777 less the umask), not the
private 0600 / 0700 of the temporary names they are staged under. A folder is only ever replaced when it is
one of ours (`replace_if`), empty, or `force` is given; never the current directory, a parent of it or a
mount point.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zoo.errors import EmozooError

_UMASK_LOCK = threading.Lock()


class OutputPathError(EmozooError):
    """An output path that must not be written: a folder where a file goes, or a folder that is not ours."""


def current_umask() -> int:
    """The process umask, read without changing it where the system tells it (Linux), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~current_umask()


def directory_mode() -> int:
    return 0o777 & ~current_umask()


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """Refuse, with one clear line, a file output that names an existing folder."""
    target = Path(path)
    if target.is_dir():
        raise OutputPathError(f"{target}: is a folder; give the name of a file to write")
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    target = check_output_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), file_mode())
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def _never(_: Path) -> bool:
    return False


def check_directory_target(
    path: str | os.PathLike[str],
    *,
    replace_if: Callable[[Path], bool] = _never,
    what: str = "an emozoo folder",
    force: bool = False,
    advice: str = "choose another folder, or use --force to replace it",
) -> Path:
    """Check that a folder may be written at `path`; return it as an absolute path.

    Allowed: nothing there, an empty folder, a folder `replace_if` accepts (one of ours), or anything else
    with `force`. Never: the current directory, a folder holding it, or a mount point (these cannot be
    replaced, and removing them would take everything in them).
    """
    target = Path(os.path.abspath(path))
    here = Path.cwd()
    if target == here or target in here.parents:
        where = "the current directory" if target == here else "a parent of the current directory"
        raise OutputPathError(f"{path}: is {where}; give the name of a new folder to write {what} into")
    if os.path.ismount(target):
        raise OutputPathError(f"{path}: is a mount point; give the name of a new folder to write {what} into")
    if not os.path.lexists(target) or force:
        return target
    if target.is_dir() and not target.is_symlink():
        if not any(target.iterdir()) or replace_if(target):
            return target
        held = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir())
        shown = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
        raise OutputPathError(f"{path}: exists and is not {what} (it holds {shown}); refusing to replace it: {advice}")
    if target.is_dir() and replace_if(target):
        return target
    kind = "a link" if target.is_symlink() else "a file"
    raise OutputPathError(f"{path}: exists and is {kind}, not {what}; refusing to replace it: {advice}")


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike[str],
    *,
    replace_if: Callable[[Path], bool] = _never,
    what: str = "an emozoo folder",
    force: bool = False,
    advice: str = "choose another folder, or use --force to replace it",
) -> Iterator[Path]:
    """Yield an empty staging directory that replaces `path` only when the block finishes cleanly.

    What may be replaced is `check_directory_target`'s rule, checked before and again after the block.
    """
    rule = {"replace_if": replace_if, "what": what, "force": force, "advice": advice}
    target = check_directory_target(path, **rule)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        yield staging
        for file in staging.rglob("*"):
            if file.is_file():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        os.chmod(staging, directory_mode())
        check_directory_target(path, **rule)  # something may have appeared there meanwhile
        if os.path.lexists(target):
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            try:
                os.replace(target, retired / "previous")
            except BaseException:
                retired.rmdir()
                raise
            try:
                os.replace(staging, target)
            except BaseException:
                os.replace(retired / "previous", target)  # put the previous one back
                retired.rmdir()
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
