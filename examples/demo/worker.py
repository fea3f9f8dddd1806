"""Demo job worker: takes one job at a time, and drains in two steps.

SIGTSTP: take no new job, but keep the one in hand (and keep running).
SIGTERM (or SIGINT): finish the job in hand, then exit.

This is what the worker's stop_sequence in superd.toml asks for: TSTP, a few
seconds for the job in hand to end, then TERM; superd kills only when the
last step's wait runs out.
"""

import os
import signal
import time

spool = os.environ.get("SPOOL", "/tmp/superd-demo")
job_seconds = float(os.environ.get("JOB_SECONDS", "3"))
me = os.environ.get("SUPERD_PROCESS_NAME", f"worker-{os.getpid()}")
run = os.path.join(spool, f"run-{os.getppid()}")  # this superd's queue (see producer.py)
incoming, done = os.path.join(run, "incoming"), os.path.join(run, "done")
os.makedirs(incoming, exist_ok=True)
os.makedirs(done, exist_ok=True)

quiet = False      # SIGTSTP: no new job
stopping = False   # SIGTERM: exit once the job in hand is done
working = False


def request_quiet(signum, frame):
    global quiet
    quiet = True
    print(f"{me}: got SIGTSTP; taking no new job" + ("; finishing the job in hand" if working else ""))


def request_stop(signum, frame):
    global stopping
    stopping = True
    print(f"{me}: got {signal.Signals(signum).name}; " + ("finishing the job in hand" if working else "exiting"))


signal.signal(signal.SIGTSTP, request_quiet)
signal.signal(signal.SIGTERM, request_stop)
signal.signal(signal.SIGINT, request_stop)


def take_job():
    """Claim the oldest job by renaming it: only one worker can win it."""
    for name in sorted(os.listdir(incoming)):
        mine = os.path.join(run, f"{name}.{me}")
        try:
            os.rename(os.path.join(incoming, name), mine)
        except FileNotFoundError:
            continue  # another worker was faster
        return name, mine
    return None


while not stopping:
    job = None if quiet else take_job()
    if job is None:
        time.sleep(0.2)
        continue
    name, path = job
    print(f"{me}: working on {name}")
    working = True
    deadline = time.monotonic() + job_seconds
    while time.monotonic() < deadline:  # the work; a signal does not cut it short
        time.sleep(0.05)
    os.rename(path, os.path.join(done, name))
    working = False
    print(f"{me}: finished {name}")

print(f"{me}: no job in hand; exiting cleanly")
