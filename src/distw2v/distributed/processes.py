"""Parameter-server shards as subprocesses on loopback (the local default), or the addresses
of shards an operator started (`--ps host:port,...`), with the secret calls to them carry."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from ..config import SparkConfig
from ..errors import Distw2vError
from .server import LOOPBACK, SECRET_ENV, new_secret
from .tls import with_tls

ANNOUNCE = "distw2v ps-shard listening on "
START_SECONDS = 60.0


def _read_announcement(proc: subprocess.Popen[str], found: list[str]) -> None:
    for line in proc.stdout or ():
        if line.startswith(ANNOUNCE):
            found.append(line[len(ANNOUNCE):].strip())
            return


class ShardProcesses:
    """Context manager: `addresses` of live shards and their `secret`; `lost()` names one
    that stopped, and `restart()` replaces them all (not an operator's). Shards it starts read
    and write only under `work_root` (the counts) and `checkpoint_root`."""

    def __init__(self, config: SparkConfig, host: str = "127.0.0.1", *,
                 work_root: str | None = None, checkpoint_root: str | None = None) -> None:
        self.config = config
        self.host = host
        self.addresses: list[str] = config.ps_addresses
        self.procs: list[subprocess.Popen[str]] = []
        self.work_root = work_root
        self.checkpoint_root = checkpoint_root
        # A fresh secret for shards started here; an operator's shards (--ps) have theirs,
        # which the driver is given the same way they are: in the environment.
        self.secret = os.environ.get(SECRET_ENV) or None
        if not self.addresses:
            token = new_secret()
            self.secret = with_tls(token) if config.shard_tls_for(host in LOOPBACK) else token
        self.replaceable = not self.addresses

    def __enter__(self) -> ShardProcesses:
        self.start()
        return self

    def start(self) -> list[str]:
        if not self.replaceable:
            return self.addresses  # an operator runs them
        try:
            self.procs = [self._spawn() for _ in range(self.config.shards)]
            self.addresses = [self._address(i, proc) for i, proc in enumerate(self.procs)]
        except BaseException:
            self.stop()
            raise
        return self.addresses

    def restart(self) -> list[str]:
        self.stop()
        return self.start()

    def _spawn(self) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "distw2v.cli", "ps-shard", "--host", self.host,
               "--port", "0", "--stop-on-stdin-eof"]
        for flag, root in (("--work-dir", self.work_root),
                           ("--checkpoint-root", self.checkpoint_root)):
            if root:
                cmd += [flag, root]
        # The shard's stdin is a pipe this process holds: if the driver dies, it closes and
        # the shard exits too.
        # Fewer malloc arenas: a shard's threads would otherwise reserve much address space.
        env = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}
        env[SECRET_ENV] = self.secret or ""  # not in argv, which any local user can read
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=env)

    @staticmethod
    def _address(index: int, proc: subprocess.Popen[str]) -> str:
        found: list[str] = []
        reader = threading.Thread(target=_read_announcement, args=(proc, found), daemon=True)
        reader.start()
        reader.join(START_SECONDS)
        if not found:
            raise Distw2vError(f"parameter-server shard {index} did not start within "
                               f"{START_SECONDS:.0f} s (exit code {proc.poll()}).")
        return found[0]

    def lost(self) -> str | None:
        for i, proc in enumerate(self.procs):
            code = proc.poll()
            if code is not None:
                return (f"parameter-server shard {i} at {self.addresses[i]} stopped "
                        f"(exit code {code}); training cannot go on without its columns.")
        return None

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
