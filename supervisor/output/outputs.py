"""Program output: pipes read by the event loop, whole lines handed to sinks.

Every spawned program gets a pipe for its stdout and, unless the two are
merged (``stderr = "stdout"``, or both naming the same file), one for its
stderr. superd reads them on its event loop with non-blocking ``os.read`` in
large chunks and passes on *whole lines* only: a line never gets cut or mixed
with another program's on the console, and log files rotate between lines.
The part of a read after its last newline waits for the rest of its line
(at most :data:`MAX_LINE` bytes; longer lines go out in pieces). A last line
without newline is written, newline added, when its pipe reaches EOF.

Where the lines go (see :mod:`supervisor.sinks`):

* a path, or ``auto`` = ``{logs_dir}/{instance}-stdout.log`` (``-stderr.log``):
  a :class:`~supervisor.sinks.LogFile` with size rotation;
* ``console``: superd's stdout (stderr for a program's stderr), each line
  prefixed ``{instance} | `` with the names padded to one width, coloured
  when that stream is a terminal;
* ``null``: nowhere.

Console and null streams keep their last lines in a small ring
(:data:`RING_BYTES`) for ``superctl tail``; files are tailed from the file.

Back-pressure: when a sink cannot take more (superd's stdout is a full pipe),
the pipes that feed it are not read until it drained, so the programs block
on their own full pipes and superd's memory stays flat.

Exit: the supervisor hands a process's exit to its state machine only once
its pipes reached EOF, so the last lines before a crash are in the log when
the state says "exited". A grandchild that keeps a pipe open gets
:data:`EXIT_GRACE` seconds; then the exit goes on without it and the pipe
is still read until its EOF.
"""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import json
import logging
import os
import subprocess
from collections import deque
from typing import Callable, Optional

from ..config.model import InstanceConfig
from .sinks import ConsoleSink, LogFile, NullSink, Sink, read_last_lines

log = logging.getLogger("superd")

#: The most one read takes from a pipe.
CHUNK = 256 << 10
#: The pipe size a chatty program gets: once one read brings :data:`GROW_AT`
#: bytes (the default pipe of 64 KiB was filling up, or would have while
#: superd waited to batch small writes), the pipe grows to this. A larger pipe
#: means fewer wake-ups for superd and fewer stalls for the program; only
#: chatty programs get one, since pipe sizes count against a per-user quota
#: (``/proc/sys/fs/pipe-user-pages-soft``) for a superd that is not root.
PIPE_SIZE = 1 << 20
GROW_AT = 16 << 10
#: Reads per readiness callback before other work gets its turn.
READS_PER_TURN = 4
#: A read smaller than this means a trickle of small writes: the next read
#: waits COALESCE seconds, so a program writing line by line costs superd one
#: wake-up per batch rather than one per line.
SMALL_READ = 16 << 10
COALESCE = 0.002
#: A line longer than this is passed on in pieces (the console adds newlines).
MAX_LINE = 64 << 10
#: Bytes of recent output kept per console or null stream for ``tail``.
RING_BYTES = 128 << 10
#: After a process's exit status arrived, how long its pipes get to reach EOF
#: before the exit is handed over anyway (a grandchild may hold them open).
EXIT_GRACE = 0.15
#: Lines a ``tail -f`` reader may fall behind by (in bytes) before some are skipped.
FOLLOW_BACKLOG = 1 << 20
#: Most lines ``tail`` answers with.
MAX_TAIL_LINES = 100_000

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: ANSI colours for console prefixes, one per instance in turn.
COLOURS = (36, 33, 32, 35, 34, 91, 96, 93, 92, 95, 94)


# --------------------------------------------------------------------------
# Streams


class Stream:
    """One output stream of one process (stdout, stderr, or both merged), across restarts."""

    __slots__ = ("process", "which", "sink", "console", "path", "prefix", "ring", "ring_size", "followers",
                 "readers", "retired", "on_idle")

    def __init__(self, process: str, which: str, sink: Sink, *, console: bool = False,
                 ring: bool = False, path: Optional[str] = None) -> None:
        self.process = process
        self.which = which
        self.sink = sink
        self.console = console
        self.path = path
        self.prefix = b""
        self.ring: Optional[deque[bytes]] = deque() if ring else None
        self.ring_size = 0
        self.followers: set[Follower] = set()
        self.readers = 0
        self.retired = False
        self.on_idle: Optional[Callable[[Stream], None]] = None

    def emit(self, buffers: list, raw: bool = False) -> bool:
        """Pass on whole lines (``raw``: a piece of an overlong line). False: the sink is full."""
        data = None
        if self.console:
            data = buffers[0] if len(buffers) == 1 and isinstance(buffers[0], bytes) else b"".join(buffers)
            if raw or not data.endswith(b"\n"):
                data += b"\n"
            prefix = self.prefix
            out = prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
            ok = self.sink.write([out])
        else:
            ok = self.sink.write(buffers)
        if self.ring is not None or self.followers:
            if data is None:
                data = buffers[0] if len(buffers) == 1 and isinstance(buffers[0], bytes) else b"".join(buffers)
            if self.ring is not None:
                self._remember(data)
            for follower in list(self.followers):
                follower.feed(data)
        return ok

    def _remember(self, data: bytes) -> None:
        ring = self.ring
        assert ring is not None
        if len(data) > RING_BYTES:
            start = data.find(b"\n", len(data) - RING_BYTES) + 1
            data = data[start:] if start else data[-RING_BYTES:]
            ring.clear()
            self.ring_size = 0
        ring.append(data)
        self.ring_size += len(data)
        while self.ring_size > RING_BYTES:
            self.ring_size -= len(ring.popleft())

    def last_lines(self, count: int) -> list[bytes]:
        """The last ``count`` lines: from the ring, or from the file's end."""
        if count <= 0:
            return []
        if self.ring is not None:
            lines = b"".join(self.ring).split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            return lines[-count:]
        assert self.path is not None
        return read_last_lines(self.path, count)

    def reader_done(self) -> None:
        self.readers -= 1
        if self.readers <= 0 and self.retired and self.on_idle is not None:
            self.on_idle(self)


# --------------------------------------------------------------------------
# Reading pipes


class PipeReader:
    """Reads one pipe on the event loop and feeds its stream whole lines."""

    __slots__ = ("fd", "stream", "capture", "partial", "eof", "paused", "resting", "armed", "grown", "loop")

    def __init__(self, fd: int, stream: Stream, capture: "Capture") -> None:
        self.fd = fd
        self.stream = stream
        self.capture = capture
        self.partial = b""
        self.eof = False
        self.paused = False    # the sink is full: wait for it
        self.resting = False   # a trickle: let it gather for COALESCE seconds
        self.armed = False
        self.grown = False
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        stream.readers += 1

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._update()

    def _update(self) -> None:
        want = not (self.eof or self.paused or self.resting) and self.loop is not None
        if want and not self.armed and not self.loop.is_closed():  # type: ignore[union-attr]
            self.loop.add_reader(self.fd, self._readable)  # type: ignore[union-attr]
            self.armed = True
        elif not want and self.armed:
            self.loop.remove_reader(self.fd)  # type: ignore[union-attr]
            self.armed = False

    def _readable(self) -> None:
        last = self.read(READS_PER_TURN, stop_short=True)
        if 0 < last < SMALL_READ and not (self.eof or self.paused):
            # Small writes (an unbuffered program): read them in batches, a
            # few milliseconds apart, rather than waking up for each one.
            self.resting = True
            self._update()
            self.loop.call_later(COALESCE, self._rested)  # type: ignore[union-attr]

    def _rested(self) -> None:
        self.resting = False
        self._update()

    def read(self, reads: int, stop_short: bool) -> int:
        """Read up to ``reads`` chunks; stop at EAGAIN, EOF, a full sink (or a short read).

        Returns the size of the last chunk read when it stopped at a short read, else 0.
        """
        fd = self.fd
        for _ in range(reads):
            if self.eof or self.paused:
                return 0
            try:
                data = os.read(fd, CHUNK)
            except (BlockingIOError, InterruptedError):
                return 0
            except OSError:
                data = b""
            if not data:
                self._finish()
                return 0
            if len(data) >= GROW_AT and not self.grown:
                self._grow()
            if not self._take(data):
                self._pause()
                return 0
            if stop_short and len(data) < CHUNK:
                return len(data)
        return 0

    def _grow(self) -> None:
        self.grown = True
        try:
            fcntl.fcntl(self.fd, _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # over the user's pipe quota: the default size will do

    def _take(self, data: bytes) -> bool:
        newline = data.rfind(b"\n")
        if newline < 0:
            self.partial += data
            if len(self.partial) >= MAX_LINE:
                piece, self.partial = self.partial, b""
                return self.stream.emit([piece], raw=True)
            return True
        end = newline + 1
        whole = data if end == len(data) else memoryview(data)[:end]
        buffers = [self.partial, whole] if self.partial else [whole]
        self.partial = data[end:]
        return self.stream.emit(buffers)

    def _pause(self) -> None:
        self.paused = True
        self._update()
        self.stream.sink.when_drained(self._resume)

    def _resume(self) -> None:
        if self.paused:
            self.paused = False
            self._update()

    def _finish(self) -> None:
        self.eof = True
        self._update()
        try:
            os.close(self.fd)
        except OSError:  # pragma: no cover
            pass
        if self.partial:
            piece, self.partial = self.partial, b""
            self.stream.emit([piece + b"\n"])
        self.stream.reader_done()
        self.capture.reader_done()

    def close(self) -> None:
        """Stop reading without waiting for EOF (the spawn failed)."""
        if not self.eof:
            self._finish()


class Capture:
    """The pipes of one spawned process: handed to Popen, then read until EOF."""

    __slots__ = ("loop", "readers", "stdout", "stderr", "_child_ends", "_exit", "_timer", "_open")

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop]) -> None:
        self.loop = loop
        self.readers: list[PipeReader] = []
        self.stdout = None  # what Popen gets
        self.stderr = None
        self._child_ends: list[int] = []
        self._exit: Optional[Callable[[], None]] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._open = 0

    def _pipe(self, stream: Stream) -> int:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_end, False)
        self._child_ends.append(write_end)
        self.readers.append(PipeReader(read_end, stream, self))
        self._open += 1
        return write_end

    def started(self) -> None:
        """The child has its ends: close ours and start reading."""
        self._close_child_ends()
        for reader in self.readers:
            reader.start(self.loop)  # type: ignore[arg-type]

    def abort(self) -> None:
        """The spawn failed: close everything."""
        self._close_child_ends()
        for reader in self.readers:
            reader.close()

    def _close_child_ends(self) -> None:
        for fd in self._child_ends:
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass
        self._child_ends.clear()

    @property
    def done(self) -> bool:
        return self._open <= 0

    def drain(self) -> bool:
        """Read what the pipes hold now; True when all of them are at EOF."""
        for reader in self.readers:
            reader.read(64, stop_short=False)
        return self.done

    def after_exit(self, handover: Callable[[], None], grace: float = EXIT_GRACE) -> None:
        """Call ``handover`` once every pipe is at EOF, or ``grace`` seconds from now."""
        if self.drain():
            handover()
            return
        self._exit = handover
        if self.loop is not None:
            self._timer = self.loop.call_later(grace, self._hand_over)

    def reader_done(self) -> None:
        self._open -= 1
        if self._open <= 0 and self._exit is not None:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        handover, self._exit = self._exit, None
        if handover is not None:
            handover()


class Passthrough:
    """Single-program mode: the program writes to superd's own stdout and stderr."""

    stdout = None
    stderr = None
    done = True

    def started(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def after_exit(self, handover: Callable[[], None], grace: float = EXIT_GRACE) -> None:
        handover()


PASSTHROUGH = Passthrough()


# --------------------------------------------------------------------------
# tail -f


class Follower:
    """Sends a stream's new lines to one ``tail -f`` client as JSON-RPC notifications."""

    def __init__(self, stream: Stream, writer: asyncio.StreamWriter) -> None:
        self.stream = stream
        self.writer = writer
        self.lines: deque[bytes] = deque()
        self.size = 0
        self.skipped = 0
        self.partial = b""
        self.ended = False
        self.farewell: Optional[str] = None
        self._wakeup: Optional[asyncio.Future] = None
        stream.followers.add(self)  # from now on: no line is missed

    def feed(self, data: bytes) -> None:
        lines = (self.partial + data).split(b"\n") if self.partial else data.split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) >= MAX_LINE:
            lines.append(self.partial)
            self.partial = b""
        for line in lines:
            self.lines.append(line)
            self.size += len(line) + 1
        while self.size > FOLLOW_BACKLOG and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1
            self.skipped += 1
        self._kick()

    def end(self, farewell: Optional[str] = None) -> None:
        """Stop following; with ``farewell``, send it as a last line and close the connection."""
        if farewell is not None and not self.ended:
            self.farewell = farewell
        self.ended = True
        self._kick()

    def _kick(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def run(self, request: Optional[asyncio.Future] = None) -> None:
        """Send lines until the connection closes. ``request``: the task answering
        the ``tail`` request; its response goes first."""
        loop = asyncio.get_running_loop()
        closed = asyncio.ensure_future(self.writer.wait_closed())
        closed.add_done_callback(self._closed)
        try:
            if request is not None and not request.done():
                # The server waits for the request's task, and started waiting
                # before this: it writes the response before this wakes up.
                await asyncio.wait({request})
            await asyncio.sleep(0)
            while True:
                if self.farewell is not None:
                    self.lines.append(self.farewell.encode())
                    self.farewell = ""
                if not self.lines and not self.skipped:
                    if self.ended:
                        break
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    continue
                if self.writer.is_closing():
                    break
                batch = [line.decode("utf-8", "replace") for line in self.lines]
                if self.skipped:
                    batch.insert(0, f"[superd: {self.skipped} lines skipped: this reader fell behind]")
                self.lines.clear()
                self.size = self.skipped = 0
                message = {"jsonrpc": "2.0", "method": "tail", "params": {"lines": batch}}
                self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
                await self.writer.drain()
            if self.farewell == "":  # said goodbye: the client's follow is over
                self.writer.close()
        except (ConnectionError, OSError):
            pass
        finally:
            self.stream.followers.discard(self)
            log.debug("tail -f of %s %s ended", self.stream.process, self.stream.which)

    def _closed(self, task: asyncio.Future) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: a lost connection is how a follow ends
        self.end()


# --------------------------------------------------------------------------
# All of superd's outputs


class ProcessOutput:
    """A process's streams for one set of output settings."""

    __slots__ = ("key", "streams")

    def __init__(self, key: tuple, streams: dict[str, Stream]) -> None:
        self.key = key
        self.streams = streams

    @property
    def merged(self) -> bool:
        return self.streams["stdout"] is self.streams["stderr"]

    def unique(self) -> list[Stream]:
        return list({id(s): s for s in self.streams.values()}.values())


class Outputs:
    """Every process's output: streams, shared sinks, captures, followers."""

    def __init__(self) -> None:
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.width = 0
        self._outputs: dict[str, ProcessOutput] = {}
        self._consoles: dict[int, ConsoleSink] = {}
        self._files: dict[str, LogFile] = {}
        self._colours: dict[str, int] = {}
        self._follow_tasks: dict[asyncio.Task, asyncio.StreamWriter] = {}

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
        fresh = self._build(instance, logs_dir, key)
        if current is not None:
            for which, stream in current.streams.items():
                # tail -f readers go on with the new stream of the same name
                for follower in list(stream.followers):
                    stream.followers.discard(follower)
                    follower.stream = fresh.streams[which]
                    fresh.streams[which].followers.add(follower)
            self._retire(current)
        self._outputs[instance.name] = fresh
        return fresh

    def _build(self, instance: InstanceConfig, logs_dir: str, key: tuple) -> ProcessOutput:
        program = instance.program

        def make(which: str, target: str, maxbytes: int, backups: int) -> Stream:
            if target == "console":
                return Stream(instance.name, which, self._console(1 if which == "stdout" else 2),
                              console=True, ring=True)
            if target == "null":
                return Stream(instance.name, which, NullSink(), ring=True)
            auto = target == "auto"
            path = os.path.join(logs_dir, f"{instance.name}-{which}.log") if auto else target
            return Stream(instance.name, which, self._file(path, maxbytes, backups, auto), path=path)

        stdout = make("stdout", instance.stdout, program.stdout_maxbytes, program.stdout_backups)
        if instance.stderr == "stdout" or (
            instance.stderr == instance.stdout and instance.stdout not in ("auto", "console", "null")
        ):
            stderr = stdout
        else:
            stderr = make("stderr", instance.stderr, program.stderr_maxbytes, program.stderr_backups)
        return ProcessOutput(key, {"stdout": stdout, "stderr": stderr})

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
        capture = Capture(self.loop)
        try:
            stdout = output.streams["stdout"]
            self._prepare(stdout)
            capture.stdout = capture._pipe(stdout)
            if output.merged:
                capture.stderr = subprocess.STDOUT
            else:
                stderr = output.streams["stderr"]
                self._prepare(stderr)
                capture.stderr = capture._pipe(stderr)
        except OSError:
            capture.abort()
            raise
        return capture

    def _prepare(self, stream: Stream) -> None:
        if stream.console:
            sink = stream.sink
            stream.prefix = self._prefix(stream.process, isinstance(sink, ConsoleSink) and sink.colour)
        elif isinstance(stream.sink, LogFile):
            stream.sink.loop = self.loop
            stream.sink.ensure_open()  # a failure is reported now, not at the first line

    def forget(self, names) -> None:
        """Let go of the outputs of processes that are gone (a reload removed them)."""
        for name in [n for n in self._outputs if n not in names]:
            self._retire(self._outputs.pop(name))

    # -- tail

    def stream(self, instance: InstanceConfig, which: str, logs_dir: str) -> Stream:
        return self.output_of(instance, logs_dir).streams[which]

    def follow(self, stream: Stream, writer: asyncio.StreamWriter) -> None:
        """Stream new lines to ``writer`` until it closes.

        Called while the ``tail`` request is handled: lines are collected from
        now on, and sent once that request is over, after its response.
        """
        follower = Follower(stream, writer)
        task = asyncio.ensure_future(follower.run(asyncio.current_task()))
        self._follow_tasks[task] = writer
        task.add_done_callback(self._follow_tasks.pop)

    def is_following(self, writer) -> bool:
        """True while ``writer``'s connection streams ``tail -f`` lines (it sends nothing meanwhile)."""
        return writer in self._follow_tasks.values()

    @property
    def following(self) -> int:
        return len(self._follow_tasks)

    # -- files

    def reopen(self) -> int:
        """Reopen every log file (after logrotate renamed them); returns how many are open."""
        opened = 0
        for sink in list(self._files.values()):
            if sink.reopen():
                opened += 1
        return opened

    def stats(self) -> dict:
        """Counters for operators: per log file, failures and dropped bytes."""
        return {
            path: {"written": f.written, "dropped": f.dropped, "failures": f.failures, "failing": f.failing}
            for path, f in self._files.items()
        }

    def close(self) -> None:
        for task in list(self._follow_tasks):
            task.cancel()
        for sink in list(self._files.values()):
            sink.close()
        self._files.clear()
        for console in self._consoles.values():
            console.close()
        self._consoles.clear()
