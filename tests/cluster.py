"""A Spark standalone cluster on loopback for tests: a master and N workers started from the
pyspark installation, each its own JVM, stopped (with everything they started) on exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@dataclass
class StandaloneCluster:
    root: Path
    workers: int = 3
    cores: int = 1
    memory: str = "1g"
    master_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    args: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1",
                "SPARK_LOG_DIR": str(self.root / "logs")}

    def _start(self, name: str, *args: str) -> None:
        self.args[name] = args
        log = open(self.root / f"{name}.log", "ab")
        # a session of its own: killing the worker's process group takes its executors along
        self.procs[name] = subprocess.Popen([str(spark_class()), *args], env=self._env(),
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def __enter__(self) -> StandaloneCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start("master", "org.apache.spark.deploy.master.Master", "--host",
                        "127.0.0.1", "--port", str(self.master_port), "--webui-port",
                        str(self.ui_port))
            for i in range(self.workers):
                work = self.root / f"worker-{i}"
                work.mkdir(exist_ok=True)
                self._start(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", self.url,
                            "--host", "127.0.0.1", "--cores", str(self.cores), "--memory",
                            self.memory, "--webui-port", str(free_port()), "--work-dir",
                            str(work))
            self.wait_alive(self.workers)
        except BaseException:
            self.__exit__()
            raise
        return self

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def alive_workers(self, state: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        state = self.state() if state is None else state
        return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]

    def wait_for(self, condition: Callable[[dict[str, Any]], bool],
                 timeout: float = 120.0) -> dict[str, Any]:
        """The master's state (its web UI's JSON) once `condition` holds for it."""
        deadline = time.monotonic() + timeout
        while True:
            if self.procs["master"].poll() is not None:
                raise RuntimeError(f"the Spark master exited; see {self.root}/master.log")
            try:
                state = self.state()
                if condition(state):
                    return state
            except OSError:
                pass  # the master's web UI is not up yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Spark master's state did not get there in {timeout} s")
            time.sleep(0.2)

    def wait_alive(self, count: int, timeout: float = 120.0) -> None:
        self.wait_for(lambda state: len(self.alive_workers(state)) >= count, timeout)

    def worker_pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items() if n.startswith("worker-")}

    def worker_running(self, pid: int) -> str:
        """The worker whose process tree holds `pid` (a shard -> its Python daemon -> the
        executor -> the worker)."""
        by_pid = {p: name for name, p in self.worker_pids().items()}
        while pid > 1:
            if pid in by_pid:
                return by_pid[pid]
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])  # the parent's pid
        raise LookupError("the process does not run under any worker of this cluster")

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's JVM only, as a machine failure would look to its executors."""
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def restart_worker(self, name: str) -> None:
        """Start a killed worker again, as a replaced machine, and wait for it to register."""
        known = {w["id"] for w in self.alive_workers()}
        self._start(name, *self.args[name])
        self.wait_for(lambda state: any(w["id"] not in known
                                        for w in self.alive_workers(state)))

    def __exit__(self, *_: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # executors the worker started live in its session: none may outlive the test
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
