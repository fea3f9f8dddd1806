"""Demo job producer: drops a numbered job file into the spool every EVERY seconds.

Each run of superd has a queue of its own, run-PID (superd's pid) in the
spool: the producer removes the queues of earlier runs when it starts, so
their jobs never come back.
"""

import os
import shutil
import signal
import sys
import time

spool = os.environ.get("SPOOL", "/tmp/superd-demo")
every = float(os.environ.get("EVERY", "1"))
run = os.path.join(spool, f"run-{os.getppid()}")  # the same for the workers of this superd
incoming = os.path.join(run, "incoming")
os.makedirs(incoming, exist_ok=True)
for old in os.listdir(spool):
    if old.startswith("run-") and os.path.join(spool, old) != run:
        shutil.rmtree(os.path.join(spool, old), ignore_errors=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

number = 0
while True:
    number += 1
    name = f"job-{os.getpid()}-{number:05d}"
    temporary = os.path.join(run, "." + name)
    with open(temporary, "w") as f:
        f.write(f"{time.time()}\n")
    os.rename(temporary, os.path.join(incoming, name))  # appears whole, never half written
    print(f"queued {name}")
    time.sleep(every)
