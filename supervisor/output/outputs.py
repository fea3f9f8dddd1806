"""The registry of every process's output, what the supervisor asks for.

:class:`Outputs` makes each process's streams from its settings (again when a
reload changes them), shares sinks between streams, hands out a
:class:`~supervisor.output.capture.Capture` per spawn and serves ``tail`` and
``tail -f``. Where a stream's lines go:

* a path, or ``auto`` = ``{logs_dir}/{instance}-stdout.log`` (``-stderr.log``):
  a :class:`~supervisor.output.logfile.LogFile` with size rotation;
* ``console``: superd's stdout (stderr for a program's stderr), each line
  prefixed ``{instance} | `` with the names padded to one width, coloured
  when that stream is a terminal;
* ``null``: nowhere: the program's stream is ``/dev/null`` itself, so it costs
  superd no pipe and no descriptor (and ``tail`` has nothing to show);
* ``inherit``: superd's own stdout/stderr, written by the program itself.

A ``null`` or ``inherit`` stream costs superd no memory either: it has no
:class:`~supervisor.output.streams.Stream` (:meth:`Outputs.stream` makes a
throwaway one, with no path, for who asks), processes with nothing captured
share one :class:`ProcessOutput`, and their spawns one pipe-less capture.

A log file is opened at its first line, not at the spawn: a program that never
writes costs no descriptor and no file creation, and starting many programs
does not wait for the file system.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import subprocess
from typing import Collection, Optional

from ..config import InstanceConfig
from .capture import Capture
from .follow import MAX_FOLLOWERS, Follower
from .logfile import LogFile
from .routes import UNCAPTURED, ProcessOutput, captured, merged
from .sinks import ConsoleSink, NullSink
from .streams import Stream

__all__ = ["Outputs", "ProcessOutput", "captured", "merged", "UNCAPTURED", "NULL_SINK"]

#: The sink of every ``null`` and ``inherit`` stream: it takes nothing and keeps nothing.
NULL_SINK = NullSink()
#: ANSI colours for console prefixes, one per instance in turn.
COLOURS = (36, 33, 32, 35, 34, 91, 96, 93, 92, 95, 94)


class Outputs:
    """Every process's output: streams, shared sinks, captures, followers.

    :meth:`configure` is called whenever the set of processes changes (superd
    starts, a reload); a spawn then costs one :meth:`capture`, whatever the
    number of processes.
    """

    def __init__(self) -> None:
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.width = 0  # console prefixes pad names to this
        self._outputs: dict[str, ProcessOutput] = {}
        self._keys: dict[tuple, tuple] = {}  # one copy of each distinct settings key
        # Processes none of whose streams superd captures share one output per key
        # (until a stream of one is asked for: it then gets its own, see _stream_of).
        self._shared: dict[tuple, ProcessOutput] = {}
        self._uncaptured: dict[tuple, Capture] = {}  # the pipe-less captures, shared
        self._consoles: dict[int, ConsoleSink] = {}
        self._files: dict[str, LogFile] = {}
        self._colours: dict[str, int] = {}
        self._follow_tasks: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._following: set[asyncio.StreamWriter] = set()
        self.timestamps = False  # [superd] log_timestamps: the default of programs that do not say

    def configure(self, names: Collection[str], loop: asyncio.AbstractEventLoop) -> None:
        """The processes are ``names`` now (superd starts, or a reload changed them).

        Pads console prefixes to the longest name (from each stream's next
        spawn on), lets go of the outputs of processes that are gone (their log
        files close, their ``tail -f`` readers are told) and hands every sink
        the event loop.
        """
        self.width = max(map(len, names), default=0)
        if loop is not self.loop:
            self.loop = loop
            for sink in [*self._consoles.values(), *self._files.values()]:
                sink.loop = loop
        for name in [n for n in self._outputs if n not in names]:
            self._retire(self._outputs.pop(name))
        self._keys = {output.key: output.key for output in self._outputs.values()}
        self._shared = {output.key: output for output in self._outputs.values()
                        if self._shared.get(output.key) is output}

    # -- building

    @staticmethod
    def _key(instance: InstanceConfig, logs_dir: str) -> tuple:
        program = instance.program
        return (instance.stdout, instance.stderr, program.stdout_maxbytes, program.stdout_backups,
                program.stderr_maxbytes, program.stderr_backups, logs_dir)

    def output_of(self, instance: InstanceConfig, logs_dir: str) -> ProcessOutput:
        """The process's streams, made (or remade after a config change) on demand."""
        key = self._key(instance, logs_dir)
        current = self._outputs.get(instance.name)
        if current is not None and current.key == key:
            return current
        self._outputs[instance.name] = self._build(instance, logs_dir, self._keys.setdefault(key, key))
        if current is not None:
            for which, stream in current.pairs():
                # tail -f readers go on with the new stream of the same name
                for follower in list(stream.followers if stream is not None else ()):
                    follower.move_to(self._stream_of(self._outputs[instance.name], instance, which, logs_dir,
                                                     keep=True))
            self._retire(current)
        return self._outputs[instance.name]  # the new one (its own, if a follower moved to it)

    def _build(self, instance: InstanceConfig, logs_dir: str, key: tuple) -> ProcessOutput:
        program = instance.program
        together = merged(instance)
        stdout = self._make(instance, "stdout", instance.stdout, logs_dir,
                            program.stdout_maxbytes, program.stdout_backups)
        stderr = None if together else self._make(instance, "stderr", instance.stderr, logs_dir,
                                                  program.stderr_maxbytes, program.stderr_backups)
        if stdout is None and stderr is None:  # nothing captured: nothing of its own
            shared = self._shared.get(key)
            if shared is None:
                shared = self._shared[key] = ProcessOutput(key, None, None, together)
            return shared
        return ProcessOutput(key, stdout, stderr, together)

    def _make(self, instance: InstanceConfig, which: str, target: str, logs_dir: str, maxbytes: int,
              backups: int, *, uncaptured: bool = False) -> Optional[Stream]:
        """A new stream; None for one superd does not capture, unless ``uncaptured``."""
        if target == "console":
            return Stream(instance.name, which, self._console(1 if which == "stdout" else 2),
                          console=True, ring=True)
        if target in UNCAPTURED:  # never written to: no pipe (see capture), nothing kept
            return Stream(instance.name, which, NULL_SINK) if uncaptured else None
        auto = target == "auto"
        path = os.path.join(logs_dir, f"{instance.name}-{which}.log") if auto else target
        return Stream(instance.name, which, self._file(path, maxbytes, backups, auto), path=path)

    def _stream_of(self, output: ProcessOutput, instance: InstanceConfig, which: str, logs_dir: str, *,
                   keep: bool = False) -> Stream:
        """``output``'s stream ``which`` (``output`` is the process's current one).

        One superd does not capture is made now: nothing is ever written to it
        and ``tail`` refuses it, so it is kept only when ``keep`` (a ``tail -f``
        reader moves to it after a reload, and is told when the process goes).
        """
        stream = output.get(which)
        if stream is None:
            if keep and self._shared.get(output.key) is output:  # the process gets an output of its own
                output = self._outputs[instance.name] = ProcessOutput(output.key, None, None, output.merged)
            if output.merged or which == "stdout":
                which, target = "stdout", instance.stdout
            else:
                target = instance.stderr
            program = instance.program
            stream = self._make(instance, which, target, logs_dir, getattr(program, f"{which}_maxbytes"),
                                getattr(program, f"{which}_backups"), uncaptured=True)
            if not keep:
                return stream  # type: ignore[return-value]
            if which == "stdout":
                output.stdout = stream
                if output.merged:
                    output.stderr = stream
            else:
                output.stderr = stream
        return stream  # type: ignore[return-value]

    def _console(self, fd: int) -> ConsoleSink:
        sink = self._consoles.get(fd)
        if sink is None:
            if not self._consoles:
                # Lines a full stdout pipe has not taken yet still go out when superd exits.
                atexit.register(self._flush_consoles)
            sink = self._consoles[fd] = ConsoleSink(fd)
            sink.loop = self.loop
        return sink

    def _flush_consoles(self) -> None:
        for sink in self._consoles.values():
            sink.flush_now()

    def _file(self, path: str, maxbytes: int, backups: int, make_dirs: bool) -> LogFile:
        sink = self._files.get(path)
        if sink is None:
            sink = self._files[path] = LogFile(path, maxbytes, backups, make_dirs=make_dirs)
            sink.loop = self.loop
        sink.users += 1
        return sink

    def _retire(self, output: ProcessOutput) -> None:
        for stream in output.unique():
            stream.retired = True
            for follower in list(stream.followers):
                follower.end(f"[superd: {stream.process} is gone]")
            if stream.readers <= 0:
                self._release(stream)
            else:
                stream.on_idle = self._release

    def _release(self, stream: Stream) -> None:
        stream.on_idle = None
        sink = stream.sink
        if isinstance(sink, LogFile):
            sink.users -= 1
            if sink.users <= 0:
                sink.close()
                if self._files.get(sink.path) is sink:
                    del self._files[sink.path]

    def _prefix(self, name: str, colour: bool) -> bytes:
        text = f"{name:<{self.width}} | "
        if colour:
            code = COLOURS[self._colours.setdefault(name, len(self._colours)) % len(COLOURS)]
            text = f"\x1b[{code}m{name:<{self.width}} |\x1b[0m "
        return text.encode("utf-8", "replace")

    # -- capturing

    def capture(self, instance: InstanceConfig, logs_dir: str) -> Capture:
        """Pipes for a process about to be spawned (Popen gets ``.stdout``/``.stderr``)."""
        output = self.output_of(instance, logs_dir)
        if instance.stdout in UNCAPTURED and (output.merged or instance.stderr in UNCAPTURED):
            return self._pipeless(instance, output.merged)
        capture = Capture(self.loop)
        stamp = instance.program.log_timestamps
        stamp = self.timestamps if stamp is None else stamp
        try:
            # "inherit": no pipe, superd's own stdout/stderr (capture.stdout stays None);
            # "null": no pipe either, the child writes to /dev/null.
            if instance.stdout == "null":
                capture.stdout = subprocess.DEVNULL
            elif instance.stdout != "inherit":
                stdout = output.stdout
                assert stdout is not None
                self._prepare(stdout, stamp)
                capture.stdout = capture.pipe(stdout)
            if output.merged:
                capture.stderr = subprocess.STDOUT
            elif instance.stderr == "null":
                capture.stderr = subprocess.DEVNULL
            elif instance.stderr != "inherit":
                stderr = output.stderr
                assert stderr is not None
                self._prepare(stderr, stamp)
                capture.stderr = capture.pipe(stderr)
        except OSError:
            capture.abort()
            raise
        return capture

    def _pipeless(self, instance: InstanceConfig, together: bool) -> Capture:
        """The capture of a spawn with no pipe at all: nothing in it changes, so
        every such spawn with the same settings shares one."""
        def target(setting: str) -> Optional[int]:
            return subprocess.DEVNULL if setting == "null" else None  # None: superd's own (inherit)

        key = (target(instance.stdout), subprocess.STDOUT if together else target(instance.stderr))
        capture = self._uncaptured.get(key)
        if capture is None:
            capture = self._uncaptured[key] = Capture(None)
            capture.stdout, capture.stderr = key
        return capture

    def _prepare(self, stream: Stream, stamp: bool) -> None:
        stream.stamp = stamp
        if stream.console:
            sink = stream.sink
            stream.prefix = self._prefix(stream.process, isinstance(sink, ConsoleSink) and sink.colour)

    # -- tail

    def stream(self, instance: InstanceConfig, which: str, logs_dir: str) -> Stream:
        return self._stream_of(self.output_of(instance, logs_dir), instance, which, logs_dir)

    def clear(self, instance: InstanceConfig, logs_dir: str) -> None:
        """Empty the process's log files and forget its output for ``tail``. Raises OSError."""
        for stream in self.output_of(instance, logs_dir).unique():
            stream.clear()

    def can_follow(self) -> bool:
        """False when :data:`~supervisor.output.follow.MAX_FOLLOWERS` readers follow already."""
        return len(self._follow_tasks) < MAX_FOLLOWERS

    def follow(self, stream: Stream, writer: asyncio.StreamWriter, timeout: float) -> None:
        """Stream new lines to ``writer`` until it closes, or takes nothing for ``timeout`` seconds.

        Called while the ``tail`` request is handled: lines are collected from
        now on, and sent once that request is over, after its response.
        """
        follower = Follower(stream, writer, timeout)
        task = asyncio.ensure_future(follower.run(asyncio.current_task()))
        self._follow_tasks[task] = writer
        self._following.add(writer)
        task.add_done_callback(self._followed)

    def _followed(self, task: asyncio.Task) -> None:
        self._following.discard(self._follow_tasks.pop(task))

    def is_following(self, writer) -> bool:
        """True while ``writer``'s connection streams ``tail -f`` lines (it sends nothing meanwhile)."""
        return writer in self._following

    @property
    def followers(self) -> int:
        """Connections following a stream now (they do not count as control connections)."""
        return len(self._following)

    # -- files and counters

    def reopen(self) -> int:
        """Reopen every log file (after logrotate renamed them); returns how many are open."""
        opened = 0
        for sink in list(self._files.values()):
            if sink.reopen():
                opened += 1
        return opened

    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        """What the sinks lost of each process's output, per stream, counted as it is written.

        ``{process: {"stdout": {"dropped_bytes": n, "dropped_lines": m}, "stderr": {...}}}``;
        merged streams show as "stdout" only; a process never started nor
        tailed is absent. Counted: writes a sink lost (a log file that cannot
        be opened or written, a broken or closed console), bytes as written
        (console lines with their prefix), a line lost in part as lost. Bytes
        a console had taken and lost later are on that sink only
        (``Sink.dropped``). Since the stream was made: superd's start, or the
        reload that changed the process's output settings.
        """
        return {
            name: {which: {"dropped_bytes": 0 if s is None else s.dropped_bytes,
                           "dropped_lines": 0 if s is None else s.dropped_lines}
                   for which, s in output.pairs()}
            for name, output in self._outputs.items()
        }

    def dropped(self, name: str) -> dict[str, dict[str, int]]:
        """What the sinks lost of one process's output: ``{"stdout": {"bytes": n,
        "lines": m}, "stderr": {...}}`` (merged streams: "stdout" only), for ``status``."""
        output = self._outputs.get(name)
        if output is None:
            return {"stdout": {"bytes": 0, "lines": 0}, "stderr": {"bytes": 0, "lines": 0}}
        return {which: {"bytes": 0 if s is None else s.dropped_bytes, "lines": 0 if s is None else s.dropped_lines}
                for which, s in output.pairs()}

    def close(self) -> None:
        for task in list(self._follow_tasks):
            task.cancel()
        for sink in list(self._files.values()):
            sink.close()
        self._files.clear()
        for console in self._consoles.values():
            console.close()
        self._consoles.clear()
