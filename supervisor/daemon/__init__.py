"""The running supervisor: everything that touches processes and the kernel.

The :class:`~supervisor.daemon.supervisor.Supervisor` owns the processes on one
asyncio loop and offers the command API (start, stop, restart, reload,
shutdown, tail); around it sit the real runtime adapter, the signal queue, the
one reaper, spawning, ``/proc`` helpers, process tracking (process tree or
cgroup), readiness probes and helper processes, the run directory's state
file and crash recovery, sd_notify and superd's own log.
"""
