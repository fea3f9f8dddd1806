"""superlance's crashmail and fatalmailbatch, unchanged, against superd.

superlance depends on supervisord's package, so it goes into a virtualenv of
its own (made once per test session, under the test's temporary folder),
never into the project's.
"""

from __future__ import annotations

import subprocess
import venv

import pytest

from tests.conftest import script, skip_or_fail, wait_until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def superlance(tmp_path_factory):
    where = tmp_path_factory.mktemp("superlance")
    venv.create(where / "venv", with_pip=True)
    pip = subprocess.run([str(where / "venv" / "bin" / "pip"), "install", "-q", "superlance"],
                         capture_output=True, text=True, timeout=240)
    if pip.returncode != 0:
        skip_or_fail(f"cannot install superlance: {pip.stderr[-500:]}")
    return where / "venv" / "bin"


def fake_sendmail(tmp_path):
    return script(tmp_path, "sendmail", f"""
        import sys, os
        data = sys.stdin.read()
        folder = {str(tmp_path / 'mail')!r}
        os.makedirs(folder, exist_ok=True)
        name = os.path.join(folder, str(os.getpid()))
        with open(name + ".part", "w") as f:
            f.write(data)
        os.rename(name + ".part", name + ".mail")
    """)


def mails(tmp_path):
    folder = tmp_path / "mail"
    return [p.read_text() for p in sorted(folder.glob("*.mail"))] if folder.exists() else []


def test_crashmail_sends_a_mail_for_an_unexpected_exit(graceful_superd, tmp_path, superlance):
    sendmail = fake_sendmail(tmp_path)
    crash = script(tmp_path, "crash", "import time, sys; time.sleep(1.2); sys.exit(9)\n")
    graceful_superd(f"""
        [program.crashmail]
        command = ["{superlance / 'crashmail'}", "-a", "-m", "ops@example.com", "-s", "{sendmail}"]
        events = ["PROCESS_STATE_EXITED"]
        priority = 1
        startsecs = 0

        [program.app]
        command = "{crash}"
        startsecs = 1
        autorestart = false
    """, ready=False).wait_ready(60)
    got = wait_until(lambda: mails(tmp_path), 60, interval=0.1, what="crashmail's mail")
    assert "To: ops@example.com" in got[0]
    assert "app" in got[0] and "unexpectedly" in got[0]


class FakeSmtp:
    """The least of an SMTP server: takes every mail, keeps its data."""

    def __init__(self) -> None:
        import socket
        import threading
        self.mails: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                f.write(b"220 fake\r\n"); f.flush()
                for line in f:
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        f.write(b"354 go\r\n"); f.flush()
                        data = b""
                        for body in f:
                            if body == b".\r\n":
                                break
                            data += body
                        self.mails.append(data.decode("utf-8", "replace"))
                        f.write(b"250 ok\r\n")
                    elif verb == b"QUIT":
                        f.write(b"221 bye\r\n"); f.flush()
                        break
                    else:
                        f.write(b"250 ok\r\n")
                    f.flush()

    def close(self) -> None:
        self.sock.close()


def test_fatalmailbatch_sends_a_mail_for_a_fatal_process(graceful_superd, tmp_path, superlance):
    smtp = FakeSmtp()
    try:
        graceful_superd(f"""
            [program.fatalmail]
            command = ["{superlance / 'fatalmailbatch'}", "--toEmail=ops@example.com",
                       "--fromEmail=superd@example.com", "--interval=0.05", "--tickEvent=TICK_5",
                       "--smtpHost=127.0.0.1:{smtp.port}"]
            events = ["PROCESS_STATE", "TICK_5"]
            priority = 1
            startsecs = 0

            [program.broken]
            command = "/bin/false"
            startsecs = 1
            startretries = 0
        """, ready=False).wait_ready(60)
        got = wait_until(lambda: smtp.mails, 60, interval=0.2, what="fatalmailbatch's mail")
        assert "To: ops@example.com" in got[0] and "Process broken:broken failed to start too many times" in got[0]
    finally:
        smtp.close()
