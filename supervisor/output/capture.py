"""Capture: the pipes of a spawned program, read on the event loop without blocking.

Every spawned program gets a pipe for its stdout and, unless the two are
merged (``stderr = "stdout"``, or both naming the same file), one for its
stderr. superd reads them with non-blocking ``os.read`` in large chunks and
passes on *whole lines* only: a line never gets cut or mixed with another
program's on the console, and log files rotate between lines. The part of a
read after its last newline waits for the rest of its line (at most
:data:`~supervisor.output.streams.MAX_LINE` bytes; longer lines go out in
pieces). A last line without newline is written, newline added, at EOF.

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
import fcntl
import os
from typing import Callable, Optional

from .streams import MAX_LINE, Stream

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
#: After a process's exit status arrived, how long its pipes get to reach EOF
#: before the exit is handed over anyway (a grandchild may hold them open).
EXIT_GRACE = 0.15

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


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

    def pipe(self, stream: Stream) -> int:
        """A pipe for the child to write ``stream`` to: returns its write end, for Popen."""
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
