"""Make a file or folder unwritable even for root (the suite may run as root, whom chmod does not stop)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[Path]:
    """``chattr +i`` on ``path`` for the block (skips the test where the file system or the user cannot)."""
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip(f"cannot make {path} immutable here (chattr +i needs ext4/xfs/btrfs and CAP_LINUX_IMMUTABLE)")
    try:
        yield path
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)
