"""The floor of the start scenario: spawn N programs the way any supervisor must, and nothing else.

    python bare_launcher.py --n N --output auto|null -- COMMAND [ARG...]

Each program runs in a process group of its own with stdin from /dev/null.
``--output auto``: a pipe for its stdout and one for its stderr, whose read
ends stay open here (the least a supervisor that captures output must hold);
``--output null``: /dev/null for both. Once the last ``Popen()`` has returned
(``Popen`` returns once the child has exec'd), prints ``spawned`` on stdout and
sleeps until it is killed: bench/run.py starts it like a daemon, times it from
its launch to that line, and then kills it and its programs by pid.

No config file, no logging, no state, no control socket: what it costs is
what spawning costs from a fresh interpreter on this machine.
"""

import os
import signal
import subprocess
import sys

# Python 3.10 has no process_group=; a new session is the same one syscall.
_OWN_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[0] != "--n" or argv[2] != "--output" or argv[3] not in ("auto", "null") \
            or argv[4] != "--":
        sys.stderr.write(__doc__)
        return 2
    count, capture, command = int(argv[1]), argv[3] == "auto", argv[5:]
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    read_ends = []  # held open for as long as the programs run, as a capturing supervisor would
    children = []
    for _ in range(count):
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
    os.write(1, b"spawned\n")
    while True:
        signal.pause()  # the bench kills this process and its programs


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
