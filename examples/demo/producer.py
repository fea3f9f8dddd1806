"""Demo job producer: drops a numbered job file into the spool every EVERY seconds."""

import os
import signal
import sys
import time

spool = os.environ.get("SPOOL", "/tmp/superd-demo")
every = float(os.environ.get("EVERY", "1"))
incoming = os.path.join(spool, "incoming")
os.makedirs(incoming, exist_ok=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

number = 0
while True:
    number += 1
    name = f"job-{os.getpid()}-{number:05d}"
    temporary = os.path.join(spool, "." + name)
    with open(temporary, "w") as f:
        f.write(f"{time.time()}\n")
    os.rename(temporary, os.path.join(incoming, name))  # appears whole, never half written
    print(f"queued {name}")
    time.sleep(every)
