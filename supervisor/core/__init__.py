"""Pure logic: what superd decides, with no system calls and no event loop.

The states, one process's state machine, the stop plan it carries out, the
shutdown phases, dependency resolution, the restart policy and the errors the
rest of superd raises and maps. Everything outside comes in through the
:class:`~supervisor.core.runtime.Runtime` protocol and an injected clock, so
every rule here is tested without spawning a process. Nothing in this package
imports another package of superd's.
"""
