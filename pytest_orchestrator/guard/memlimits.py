"""How much memory the run may use: physical RAM, or the tightest cgroup limit.

The pressure gauge divides the memory of its process tree by :func:`available_memory_bytes`.
That is physical RAM, or the tightest cgroup v2 (``memory.max``) or v1
(``memory.limit_in_bytes``) limit on this process or any of its ancestor cgroups when one is
set (a container, a systemd slice, a CI runner). Memory used by unrelated processes is not
subtracted: the gauge's ratio is the run's share of what it may use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

__all__ = ["available_memory_bytes", "cgroup_limit_bytes", "physical_memory_bytes"]

_UNLIMITED: Final = 1 << 62  # cgroup v1 writes 2**63 - page size for "no limit"


def physical_memory_bytes() -> int:
    """Installed RAM as the kernel reports it (cgroup limits not applied)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        import psutil

        return int(psutil.virtual_memory().total)


def available_memory_bytes() -> int:
    """The memory this process may use: min of physical RAM and any cgroup memory limit."""
    limit = cgroup_limit_bytes()
    physical = physical_memory_bytes()
    return physical if limit is None else min(physical, limit)


def cgroup_limit_bytes(proc_self: Path = Path("/proc/self")) -> int | None:
    """The tightest cgroup v2 ``memory.max`` or v1 ``memory.limit_in_bytes`` on this process.

    Reads the process's cgroups from ``proc_self/cgroup``, finds where each hierarchy is
    mounted from ``proc_self/mountinfo``, and checks the limit file of the process's cgroup and
    of every ancestor up to the mount (a parent's limit binds its children). ``None`` when no
    limit is set or cgroups are absent (not Linux, no cgroupfs, unreadable files).
    """
    try:
        membership = (proc_self / "cgroup").read_text()
        mountinfo = (proc_self / "mountinfo").read_text()
    except OSError:
        return None
    mounts = [m for m in map(_parse_mount, mountinfo.splitlines()) if m is not None]
    limits: list[int] = []
    for line in membership.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, cgroup_path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            fstype, option, limit_file = "cgroup2", "", "memory.max"
        elif "memory" in controllers.split(","):
            fstype, option, limit_file = "cgroup", "memory", "memory.limit_in_bytes"
        else:
            continue
        for root, point, mount_fstype, options in mounts:
            if mount_fstype == fstype and (not option or option in options):
                limits += _limits_along(root, point, cgroup_path, limit_file)
    return min(limits, default=None)


def _parse_mount(line: str) -> tuple[str, str, str, list[str]] | None:
    """(root, mount point, fstype, super options) of one mountinfo line."""
    fields = line.split()
    if "-" not in fields:
        return None
    dash = fields.index("-")
    if dash < 5 or len(fields) < dash + 4:
        return None

    def unescape(text: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)

    root, point = unescape(fields[3]), unescape(fields[4])
    return root, point, fields[dash + 1], fields[dash + 3].split(",")


def _limits_along(root: str, point: str, cgroup_path: str, limit_file: str) -> list[int]:
    """Limits set on the cgroup and its ancestors within one mount."""
    prefix = root.rstrip("/")
    if cgroup_path != root and not cgroup_path.startswith(prefix + "/"):
        cgroup_path = prefix  # outside this mount's view (a cgroup namespace): use its top
    parts = [p for p in cgroup_path[len(prefix) :].split("/") if p and p != ".."]
    top = Path(point)
    found = []
    for directory in [top.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]:
        try:
            text = (directory / limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < _UNLIMITED:
            found.append(int(text))
    return found
