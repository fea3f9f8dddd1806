"""The floor of the start scenario: spawn N programs the way any supervisor must, and nothing else.

    python bare_launcher.py --n N --output auto|null [--cgroups] -- COMMAND [ARG...]

Each program runs in a process group of its own with stdin from /dev/null.
``--output auto``: a pipe for its stdout and one for its stderr, whose read
ends stay open here (the least a supervisor that captures output must hold);
``--output null``: /dev/null for both. Once the last ``Popen()`` has returned
(``Popen`` returns once the child has exec'd), prints ``spawned`` on stdout and
sleeps until it is killed: bench/run.py starts it like a daemon, times it from
its launch to that line, and then kills it and its programs by pid.

``--cgroups``: also what superd's cgroup tracking costs the kernel: one cgroup
v2 per program, made below ``bench-floor-PID`` in this process's own cgroup,
and this process moves into each before the spawn (so that the child is born
there) and home after the last, as superd does. The bench removes them.

No config file, no logging, no state, no control socket: what it costs is
what spawning costs from a fresh interpreter on this machine.
"""

import os
import signal
import subprocess
import sys

# Python 3.10 has no process_group=; a new session is the same one syscall.
_OWN_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}


# The floor imports nothing of superd's or the bench's (what it costs must be
# spawning's alone): these two carry their own few lines of what superd's
# daemon/cgroups.py and bench/_procs.py do.
def _enter(cgroup: str) -> None:
    fd = os.open(cgroup + "/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)


def _own_cgroup() -> str:
    with open("/proc/self/cgroup") as f:
        own = next(line.strip()[3:] for line in f if line.startswith("0::"))
    with open("/proc/self/mountinfo") as f:
        mount = next(line.split()[4] for line in f if " - cgroup2 " in line)
    return mount + own.rstrip("/")


def main(argv: list[str]) -> int:
    cgroups = argv[4:5] == ["--cgroups"]
    if cgroups:
        argv = argv[:4] + argv[5:]
    if len(argv) < 6 or argv[0] != "--n" or argv[2] != "--output" or argv[3] not in ("auto", "null") \
            or argv[4] != "--":
        sys.stderr.write(__doc__)
        return 2
    count, capture, command = int(argv[1]), argv[3] == "auto", argv[5:]
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    read_ends = []  # held open for as long as the programs run, as a capturing supervisor would
    children = []
    home = _own_cgroup() if cgroups else ""
    root = os.path.join(home, f"bench-floor-{os.getpid()}")
    if cgroups:
        os.mkdir(root)
    for i in range(count):
        if cgroups:
            cgroup = os.path.join(root, f"p{i}")
            os.mkdir(cgroup)
            _enter(cgroup)
        if capture:
            out_read, out_write = os.pipe()
            err_read, err_write = os.pipe()
            children.append(subprocess.Popen(command, stdin=devnull, stdout=out_write, stderr=err_write,
                                             **_OWN_GROUP))
            os.close(out_write)
            os.close(err_write)
            read_ends += (out_read, err_read)
        else:
            children.append(subprocess.Popen(command, stdin=devnull, stdout=devnull, stderr=devnull,
                                             **_OWN_GROUP))
    if cgroups:
        _enter(home)
    os.write(1, b"spawned\n")
    while True:
        signal.pause()  # the bench kills this process and its programs


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
