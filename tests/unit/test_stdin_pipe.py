"""A program's stdin pipe on superd's side (daemon.stdin), without a
process: the test reads the child's end itself."""

from __future__ import annotations

import asyncio
import os

import pytest

from supervisor.core.errors import Failed, NoStdin
from supervisor.daemon.stdin import BUFFER_BYTES, StdinPipes

pytestmark = pytest.mark.timeout(30)


def test_both_ends_are_close_on_exec_and_the_write_end_never_blocks():
    pipes = StdinPipes()
    pipe = pipes.open("p")
    try:
        assert not os.get_inheritable(pipe.fd) and not os.get_inheritable(pipe.child_fd)
        assert not os.get_blocking(pipe.fd)
    finally:
        pipes.close_all()
    assert pipes.pipes == {}


def test_what_the_pipe_does_not_take_waits_then_goes_out_as_it_drains():
    async def scenario() -> None:
        pipes = StdinPipes()
        pipe = pipes.open("p")
        reader = os.dup(pipe.child_fd)
        os.set_blocking(reader, False)
        pipe.started()
        try:
            size = 200_000  # more than a pipe holds (64 KiB by default)
            assert pipes.write("p", b"a" * size) == size
            assert pipe.pending and pipe.loop is not None  # a writer callback waits
            received = bytearray()
            while len(received) < size:
                await asyncio.sleep(0)  # the loop runs the writer callback as the pipe drains
                try:
                    received += os.read(reader, 1 << 20)
                except BlockingIOError:
                    pass
            assert received == b"a" * size
            await asyncio.sleep(0)
            assert not pipe.pending and pipe.loop is None  # idle: nothing watched
        finally:
            os.close(reader)
            pipes.close_all()

    asyncio.run(scenario())


def test_a_full_buffer_refuses_whole_writes():
    async def scenario() -> None:
        pipes = StdinPipes()
        pipe = pipes.open("p")
        reader = os.dup(pipe.child_fd)  # held, never read: a program that ignores its stdin
        pipe.started()
        try:
            chunk = b"x" * 50_000
            taken = 0
            with pytest.raises(Failed, match="not reading its stdin") as refused:
                for _ in range(100):
                    taken += pipes.write("p", chunk)
            assert not isinstance(refused.value, NoStdin)
            assert taken > BUFFER_BYTES - len(chunk)
            assert len(pipes.pipes["p"].pending) <= BUFFER_BYTES
        finally:
            os.close(reader)
            pipes.close_all()

    asyncio.run(scenario())


def test_a_closed_reader_and_a_closed_pipe_say_no_stdin():
    async def scenario() -> None:
        pipes = StdinPipes()
        pipe = pipes.open("p")
        pipe.started()  # the only reader was the child's end, now closed: EPIPE
        with pytest.raises(NoStdin, match="closed its stdin"):
            pipes.write("p", b"x\n")
        with pytest.raises(NoStdin, match="is closed"):
            pipes.write("p", b"x\n")
        pipes.close("p")
        with pytest.raises(NoStdin):
            pipes.write("p", b"x\n")
        with pytest.raises(NoStdin):
            pipes.write("never", b"x\n")

    asyncio.run(scenario())


def test_a_new_spawn_gets_a_fresh_pipe_and_the_old_one_closes():
    pipes = StdinPipes()
    first = pipes.open("p")
    second = pipes.open("p")
    assert first.fd == -1 and first.child_fd == -1  # closed
    assert pipes.pipes["p"] is second and second.fd >= 0
    pipes.close_all()
    assert second.fd == -1 and pipes.pipes == {}
