"""Runs first in the sandboxed process (``python -I -S _shim.py SPEC -- COMMAND...``), then execs
the command: never imported by nbharden.

``SPEC`` (JSON) says what to do, in this order: ask for SIGKILL when the parent dies
(``pdeathsig``), join the pids cgroup (``cgroup``: its ``cgroup.procs``), set the resource limits
soft and hard so the notebook cannot raise them (``rlimits``: ``AS``, ``FSIZE``, ``CPU``,
``NPROC``), and become an unprivileged user (``user``: [uid, gid], when nbharden runs as root):
no supplementary groups, no capabilities (the bounding set emptied, no new privileges through
set-uid programs or file capabilities). ``NPROC`` counts the tasks (threads included) of that
user that are already running, as ``RLIMIT_NPROC`` does.
"""

import ctypes
import json
import os
import resource
import sys

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38


def _tasks_of(uid: int) -> int:
    used = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
                status = fh.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            used += int(fields.get("Threads", "1"))
    return used


def _become(uid: int, gid: int, libc: ctypes.CDLL) -> None:
    for cap in range(64):  # CAP_LAST_CAP is about 40: the rest fail harmlessly
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from root to another user: every capability is gone


def main() -> None:
    spec = json.loads(sys.argv[1])
    cmd = sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    if spec.get("pdeathsig"):
        libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if spec.get("cgroup"):
        with open(spec["cgroup"], "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))
    user = spec.get("user")
    for name, value in spec.get("rlimits", {}).items():
        if name == "NPROC":
            value += _tasks_of(user[0] if user else os.getuid())
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), (value, value))
    if user:
        _become(int(user[0]), int(user[1]), libc)
    os.execvp(cmd[0], cmd)


main()
