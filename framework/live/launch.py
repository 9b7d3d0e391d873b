"""Start and stop a server process for a live run (the emulator, or any command), with timeouts.

Tests, demos and benchmarks use it so a server never outlives them: ``with ServerProcess(...) as srv:``
kills the process group on exit, and ``wait_ready`` fails with the server's last log lines.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server started in its own process group; ``url`` is http://127.0.0.1:PORT."""

    def __init__(self, argv: list[str], port: int, env: dict | None = None, ready_path: str = "/v1/models",
                 log: Path | None = None) -> None:
        self.argv, self.port, self.ready_path = argv, port, ready_path
        self.env = {**os.environ, **(env or {})}
        self.log = log or Path(tempfile.mkstemp(prefix="balanceroute-server-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(self.argv, stdout=f, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> "ServerProcess":
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout_s:g} s: {self.tail()}")

    def tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
        """Signal the whole process group, then SIGKILL it if it is still there after timeout_s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout_s)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "ServerProcess":
        return self.start().wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()


def emulator(workers: int, *args: str, port: int | None = None) -> ServerProcess:
    """The project's emulator (python -m framework.live.emulator) on a free loopback port."""
    port = port or free_port()
    argv = [sys.executable, "-m", "framework.live.emulator", "--workers", str(workers), "--port", str(port), *args]
    root = str(Path(__file__).resolve().parents[2])
    return ServerProcess(argv, port, env={"PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")})
