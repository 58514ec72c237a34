"""A watchdog that stops the local Ray a command started when that command is killed.

`ray.init()` without an address starts Ray's processes (GCS, raylet, dashboard and runtime-env
agents, monitor, log monitor) as children of the calling process. They fate-share only in part:
SIGKILL the caller and the GCS and raylet go, but busy workers notice late (their Blender
children keep rendering for 20-30 s) and the raylet's agents are orphaned for minutes. Ray
cannot clean up after a process that no longer runs, so a small watchdog process does:

* `watch_local_ray()` (call it just before `ray.init()`) starts `python -m thfm_synth.render.farm.reaper`
  in its own session, holding the read end of a pipe whose write end only the caller holds;
* the watchdog records, every 0.5 s, the caller's Ray children (programs of the ray package) and
  all their descendants - workers and the renderer children they started - by (pid, start time),
  so a pid reused later by an unrelated process is never touched;
* when the pipe reaches end-of-file the caller is gone: without a goodbye (a kill) it SIGKILLs
  every recorded process that still runs, and their children; after a goodbye (`ray.shutdown()`
  ran) it waits a few seconds and removes only what Ray left behind.

Linux only (it reads /proc); elsewhere `watch_local_ray` does nothing.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import subprocess
import sys
import time

GOODBYE = b"bye\n"
POLL_S = 0.5  # one /proc scan costs ~4 ms with 160 processes: <1% of a core
GRACE_S = 5.0  # after a goodbye: Ray's own shutdown gets this long before leftovers are killed
_watch: dict = {}


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, start time in clock ticks, state) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    return int(rest[1]), int(rest[19]), rest[0].decode()


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _is_ray(cmdline: bytes) -> bool:
    """A process Ray started: its program lives in the ray package, or it names itself ray::..."""
    return b"/ray/" in cmdline or cmdline.startswith(b"ray::")


def _processes() -> dict[int, tuple[int, int, str]]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def _record(owner: int, known: dict[int, int]) -> None:
    """Add the owner's Ray children and every descendant of a known process to `known` (pid -> start)."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    stack = [p for p in children.get(owner, ()) if _is_ray(_cmdline(p))]
    stack += [p for p in known if p in procs and procs[p][1] == known[p]]
    while stack:
        pid = stack.pop()
        if pid in procs and known.get(pid) in (None, procs[pid][1]):
            known[pid] = procs[pid][1]
            stack += [c for c in children.get(pid, ()) if c not in known]


def _kill(known: dict[int, int]) -> int:
    """SIGKILL every recorded process still alive (same start time), until none is left."""
    killed = 0
    for _ in range(20):
        _record(-1, known)  # children they started since the last look
        alive = [
            pid for pid, start in known.items() if (st := _stat(pid)) is not None and st[1] == start and st[2] != "Z"
        ]
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.1)
    return killed


def watch(owner: int, fd: int) -> None:
    known: dict[int, int] = {}
    said = b""
    while True:
        _record(owner, known)
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if not ready:
            continue
        chunk = os.read(fd, 64)
        said += chunk
        if chunk:
            continue
        if said.endswith(GOODBYE):  # a clean ray.shutdown(): remove only what it left behind
            time.sleep(GRACE_S)
        _kill(known)
        return


def watch_local_ray() -> None:
    """Start the watchdog for this process's local Ray (once per process; Linux only)."""
    if _watch or not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
        return
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "thfm_synth.render.farm.reaper", str(os.getpid()), str(read_end)],
            pass_fds=(read_end,),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        os.close(write_end)
        return
    finally:
        os.close(read_end)
    _watch.update(proc=proc, fd=write_end)
    atexit.register(goodbye)


def goodbye() -> None:
    """Tell the watchdog this process is ending normally (after `ray.shutdown()`)."""
    fd = _watch.pop("fd", None)
    if fd is None:
        return
    try:
        os.write(fd, GOODBYE)
    except OSError:
        pass
    os.close(fd)
    _watch.pop("proc", None)


if __name__ == "__main__":
    try:
        watch(int(sys.argv[1]), int(sys.argv[2]))
    except KeyboardInterrupt:
        pass
