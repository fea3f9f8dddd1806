"""Demo job worker: takes one job at a time; on SIGTERM it finishes the job in hand, then exits.

This is the behaviour superd's graceful shutdown is built for: the stop signal
is a request to finish, and superd waits (up to stopwaitsecs) before it kills.
"""

import os
import signal
import time

spool = os.environ.get("SPOOL", "/tmp/superd-demo")
job_seconds = float(os.environ.get("JOB_SECONDS", "3"))
me = os.environ.get("SUPERD_PROCESS_NAME", f"worker-{os.getpid()}")
incoming, done = os.path.join(spool, "incoming"), os.path.join(spool, "done")
os.makedirs(incoming, exist_ok=True)
os.makedirs(done, exist_ok=True)

stopping = False


def request_stop(signum, frame):
    global stopping
    stopping = True
    print(f"{me}: got {signal.Signals(signum).name}; finishing the job in hand")


signal.signal(signal.SIGTERM, request_stop)
signal.signal(signal.SIGINT, request_stop)


def take_job():
    """Claim the oldest job by renaming it: only one worker can win it."""
    for name in sorted(os.listdir(incoming)):
        mine = os.path.join(spool, f"{name}.{me}")
        try:
            os.rename(os.path.join(incoming, name), mine)
        except FileNotFoundError:
            continue  # another worker was faster
        return name, mine
    return None


while not stopping:
    job = take_job()
    if job is None:
        time.sleep(0.2)
        continue
    name, path = job
    print(f"{me}: working on {name}")
    deadline = time.monotonic() + job_seconds
    while time.monotonic() < deadline:  # the work; a signal does not cut it short
        time.sleep(0.05)
    os.rename(path, os.path.join(done, name))
    print(f"{me}: finished {name}")

print(f"{me}: no job in hand; exiting cleanly")
