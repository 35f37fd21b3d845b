"""Screenshots as files under a directory (the embedded mode, without a bucket).

Keys contain ``/`` and become subdirectories: ``screenshots/ab/ab12....png`` is stored as
``<root>/screenshots/ab/ab12....png``. Files are written atomically (temporary file, then
``os.replace``), so a reader never sees half an image and a rerun simply overwrites.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from screenshots.core.errors import StorageRejected, StorageUnavailable
from screenshots.storage.base import Storage, StoredObject

#: Suffix of the file next to each image that holds its metadata (JSON).
METADATA_SUFFIX = ".meta.json"

#: errno values that mean "you may not write here" rather than "try again".
REFUSED_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def key_parts(key: str) -> tuple[str, ...]:
    """The path segments of ``key``; ``ValueError`` for ``..``, ``.``, empty or absolute keys."""
    if not key or "\\" in key or "\0" in key:
        raise ValueError(f"invalid storage key {key!r}")
    path = PurePosixPath(key)
    parts = key.split("/")
    if path.is_absolute() or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid storage key {key!r}: no '..', '.', '//' or leading '/'")
    return tuple(parts)


class LocalStorage(Storage):
    """Store screenshots under ``root``. URIs and links are both ``file://`` URIs."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r})"

    def path(self, key: str) -> Path:
        """Where ``key`` is (or would be) stored."""
        return self.root.joinpath(*key_parts(key))

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        target = self.path(key)
        if metadata:
            self._write(target.with_name(target.name + METADATA_SUFFIX), json.dumps(metadata))
        return self._write(target, data)

    def _write(self, target: Path, data: bytes | str) -> str:
        if isinstance(data, str):
            data = data.encode("utf-8")
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # os.open rather than tempfile: the file gets the usual 0666 & ~umask mode.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            message = f"cannot write {target}: {exc.strerror or exc}"
            if exc.errno in REFUSED_ERRNOS:
                raise StorageRejected(message) from exc
            raise StorageUnavailable(message) from exc
        return target.as_uri()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def stat(self, key: str) -> StoredObject | None:
        target = self.path(key)
        try:
            info = target.stat()
        except FileNotFoundError:
            return None
        metadata: dict[str, str] = {}
        sidecar = target.with_name(target.name + METADATA_SUFFIX)
        with contextlib.suppress(OSError, ValueError):
            metadata = {str(k): str(v) for k, v in json.loads(sidecar.read_text()).items()}
        return StoredObject(
            modified=datetime.fromtimestamp(info.st_mtime, UTC),
            size=info.st_size,
            metadata=metadata,
        )

    def read(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc.strerror or exc}") from exc

    def keys(self, prefix: str) -> list[str]:
        """The files under the folder ``prefix`` (not their metadata files, nor a write in
        progress), as keys."""
        folder = self.root.joinpath(*key_parts(prefix.rstrip("/")))
        if not folder.is_dir():
            return []
        found = []
        for path in folder.rglob("*"):
            name = path.name
            if path.is_file() and not name.endswith(METADATA_SUFFIX) and not name.startswith("."):
                found.append(path.relative_to(self.root).as_posix())
        return sorted(found)

    def link(self, key: str) -> str:
        """The ``file://`` URI of the file: the same as :meth:`uri`, as there is no server."""
        return self.uri(key)

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def check(self) -> None:
        """Create ``root`` if needed and prove we can write in it."""
        probe = self.root / f".write-check-{uuid.uuid4().hex}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageRejected(
                f"output directory {self.root} is not writable: {exc.strerror or exc}"
            ) from None
