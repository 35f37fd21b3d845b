"""Screenshots in an S3 bucket (AWS, SeaweedFS, MinIO...).

boto3 finds the endpoint and credentials itself (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, or any other source
of its credential chain). The client is created on first use and again in each process:
boto3 clients are thread-safe but must not cross a ``fork()``, and Celery's prefork pool forks
after the storage has been built (and perhaps checked) in the parent.

Every botocore error is mapped to one of ours: unreachable, timing out, throttled or a 5xx
is :class:`~screenshots.core.errors.StorageUnavailable` (retried); a missing bucket or refused
credentials is
:class:`~screenshots.core.errors.StorageRejected` (fix the settings). Messages name the bucket and
endpoint,
never a credential.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.handlers import add_expect_header

from screenshots.core.errors import StorageRejected, StorageUnavailable
from screenshots.core.settings import DEFAULT_LINK_EXPIRY, redact_url
from screenshots.storage.base import Storage, StoredObject
from screenshots.storage.presign import SIGNABLE_KEY, Credentials, LinkSigner, learn_signer
from screenshots.storage.signed_put import PutSigner, botocore_preparer, learn_put_signer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

#: Seconds to open a connection to S3.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Seconds to wait for an answer once the request is sent.
DEFAULT_READ_TIMEOUT = 20.0
#: Attempts per request in all (first try + retries; botocore ``standard`` mode, with backoff).
DEFAULT_MAX_ATTEMPTS = 3
#: Connections kept per client: enough for one per thread of a threaded worker.
MAX_POOL_CONNECTIONS = 32

#: Error codes that mean "try again later".
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "InternalError",
        "ServiceUnavailable",
    }
)
#: Error codes (and bare HEAD statuses) that mean "the bucket is not there".
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
#: Error codes that mean "these credentials are refused".
DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
)
#: Error codes of a missing object.
MISSING_KEY_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class S3Storage(Storage):
    """Store screenshots as objects of ``bucket``; links are presigned or public.

    Pass ``client`` to use a ready boto3 client (then it is used as is, in every process);
    otherwise one is built lazily from the environment with the timeouts given here.
    """

    name = "s3"

    def __init__(
        self,
        bucket: str,
        client: S3Client | None = None,
        link_expiry: int = DEFAULT_LINK_EXPIRY,
        public_base_url: str | None = None,
        name: str = "s3",
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.bucket = bucket
        self.link_expiry = link_expiry
        self.public_base_url = public_base_url
        self.name = name
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # botocore's "max_attempts" counts retries only; "total_max_attempts" counts all.
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
            # Checksums only where S3 requires them: screenshots are small, and computing
            # and sending a CRC for every PUT costs time on both ends.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._given_client = client
        self._client: S3Client | None = None
        self._client_pid = 0
        self._session: Any = None  # the boto3 session of ``_client`` (its credentials)
        #: Signs links without botocore (see :mod:`screenshots.storage.presign`); per process,
        # learned
        #: on the first link; ``None`` once it failed to reproduce botocore's link.
        self._signer: LinkSigner | None = None
        self._signer_pid = 0
        #: Signs uploads without botocore (see :mod:`screenshots.storage.signed_put`): learned
        #: with each process's client; ``None`` when it does not reproduce botocore's requests.
        self._putter: PutSigner | None = None
        self._http_session: Any = None  # the client's botocore HTTP session, which sends them
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint={self.endpoint!r})"

    # -- the client ----------------------------------------------------------------------------

    @property
    def client(self) -> S3Client:
        """The boto3 client of this process, created on first use."""
        if self._given_client is not None:
            return self._given_client
        if self._client is None or self._client_pid != os.getpid():
            with self._lock:
                if self._client is None or self._client_pid != os.getpid():
                    self._client = self._new_client()
                    self._client_pid = os.getpid()
                    self._putter = self._learn_putter(self._client)
        return self._client

    def _new_client(self) -> S3Client:
        import boto3

        try:
            # A session per client: the default session is not thread-safe.
            session = boto3.session.Session()
            client = session.client("s3", config=self._config)
            self._session = session
            # No "Expect: 100-continue": it costs a round trip per PUT of a small object.
            client.meta.events.unregister("before-call.s3", handler=add_expect_header)
            return client
        except ValueError as exc:  # a malformed endpoint URL
            raise StorageRejected(f"S3 is misconfigured: {exc}") from None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint in use, for messages (password removed); "" before first use."""
        client = self._given_client or self._client
        return redact_url(client.meta.endpoint_url) if client is not None else ""

    # -- the interface -------------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        meta = dict(metadata or {})
        tagging = urlencode(dict(tags)) if tags else None
        if self._put_signed(key, data, content_type, meta, tagging):
            return self.uri(key)
        try:
            if tagging is not None:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    Metadata=meta,
                    Tagging=tagging,
                )
            else:
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=meta
                )
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc) from exc
        return self.uri(key)

    def _put_signed(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str],
        tagging: str | None,
    ) -> bool:
        """Upload through the fast path (:mod:`screenshots.storage.signed_put`); ``False`` when
        it does not apply or the upload did not end in a 200 (then botocore uploads it)."""
        self.client  # noqa: B018 - this process's client, and the signer learned with it
        putter = self._putter
        if putter is None or not putter.accepts(key, content_type, metadata, tagging):
            return False
        credentials = self._credentials()
        if credentials is None:
            return False
        headers = putter.headers(key, data, content_type, metadata, tagging, credentials)
        # A plain dict: what urllib3 takes (botocore's HTTPHeaders is a slower email.Message).
        url = putter.url(key)
        request = AWSPreparedRequest("PUT", url, headers, data, False)  # type: ignore[arg-type]
        try:
            answer = self._http_session.send(request)
        except BotoCoreError:
            return False
        return bool(answer.status_code == 200)

    def _learn_putter(self, client: S3Client) -> PutSigner | None:
        """A :class:`PutSigner` for ``client``, taught by botocore's own requests, or ``None``."""
        session = getattr(getattr(client, "_endpoint", None), "http_session", None)
        credentials = self._credentials()
        if session is None or not hasattr(session, "send") or credentials is None:
            return None
        try:
            putter = learn_put_signer(botocore_preparer(client, self.bucket), credentials)
        except Exception:  # a fast path that cannot be learned is only not used
            logger.debug("uploads stay with botocore: the probe failed", exc_info=True)
            return None
        self._http_session = session
        return putter

    def put_lifecycle(self, configuration: Mapping[str, Any]) -> None:
        """Set the bucket's lifecycle configuration (:mod:`screenshots.storage.lifecycle`)."""
        try:
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration=configuration,  # type: ignore[arg-type]
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, head_bucket=True) from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in MISSING_KEY_CODES:
                return False
            raise self._translate(exc) from exc
        except BotoCoreError as exc:
            raise self._translate(exc) from exc
        return True

    def stat(self, key: str) -> StoredObject | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in MISSING_KEY_CODES:
                return None
            raise self._translate(exc) from exc
        except BotoCoreError as exc:
            raise self._translate(exc) from exc
        return StoredObject(
            modified=head["LastModified"],
            size=int(head.get("ContentLength", 0)),
            metadata=dict(head.get("Metadata") or {}),
        )

    def read(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            return answer["Body"].read()
        except ClientError as exc:
            if _code(exc) in MISSING_KEY_CODES:
                raise KeyError(key) from None
            raise StorageUnavailable(f"cannot read {key} from bucket {self.bucket!r}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot read {key} from bucket {self.bucket!r}") from exc

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc) from exc
        return sorted(found)

    def link(self, key: str) -> str:
        """``public_base_url`` + key when set, else a GET URL presigned for ``link_expiry`` s."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/") + "/" + quote(key, safe="/~")
        try:
            signer = self._link_signer()
            if signer is not None and SIGNABLE_KEY.fullmatch(key):
                credentials = self._credentials()
                if credentials is not None:
                    return signer.sign(key, credentials, self.link_expiry)
            return self._presign(key)
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc) from exc

    def _presign(self, key: str) -> str:
        """botocore's presigned GET link of ``key``."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.link_expiry
        )

    def _credentials(self) -> Credentials | None:
        """The client's credentials now (refreshed by botocore when they expire)."""
        if self._given_client is not None or self._session is None:
            return None
        found = self._session.get_credentials()
        if found is None:
            return None
        frozen = found.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def _link_signer(self) -> LinkSigner | None:
        """This process's :class:`~screenshots.storage.presign.LinkSigner`, learned on first use."""
        if self._signer_pid != os.getpid():
            self.client  # noqa: B018 - creates this process's client and session
            self._signer = learn_signer(self._presign, self._credentials)
            self._signer_pid = os.getpid()
        return self._signer

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def check(self) -> None:
        """Raise :class:`StorageRejected` unless the bucket exists and we may use it."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(exc, head_bucket=True) from exc

    # -- errors --------------------------------------------------------------------------------

    def _translate(
        self, exc: BotoCoreError | ClientError, head_bucket: bool = False
    ) -> StorageUnavailable | StorageRejected:
        """Our error for a botocore one. ``head_bucket``: a bare 404 means no bucket."""
        where = f"at {self.endpoint}" if self.endpoint else "(default endpoint)"
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return StorageUnavailable(f"S3 {where} unreachable: {exc}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StorageRejected(
                f"no usable S3 credentials for bucket {self.bucket!r} {where}: "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if not isinstance(exc, ClientError):
            return StorageRejected(f"S3 {where} cannot be used: {exc}")
        code = _code(exc)
        status = _status(exc)
        detail = _detail(exc)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return StorageUnavailable(f"S3 {where} unreachable: {detail}")
        if code in MISSING_BUCKET_CODES or (head_bucket and status == 404):
            return StorageRejected(f"bucket {self.bucket!r} does not exist {where}")
        if code == "InvalidAccessKeyId":
            return StorageRejected(
                f"S3 {where} does not know our access key (AWS_ACCESS_KEY_ID), "
                f"so bucket {self.bucket!r} cannot be used"
            )
        if code == "SignatureDoesNotMatch":
            return StorageRejected(
                f"S3 {where} refused our signature for bucket {self.bucket!r}: "
                "check AWS_SECRET_ACCESS_KEY"
            )
        if code in DENIED_CODES or status == 403:
            return StorageRejected(
                f"access to bucket {self.bucket!r} {where} denied: check the credentials "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the bucket's policy"
            )
        return StorageRejected(f"S3 {where} refused a request on bucket {self.bucket!r}: {detail}")


def _error(exc: ClientError) -> dict[str, Any]:
    return dict(exc.response.get("Error") or {})


def _code(exc: ClientError) -> str:
    return str(_error(exc).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _detail(exc: ClientError) -> str:
    """``Code (HTTP n): message`` from the server's answer."""
    error = _error(exc)
    message = error.get("Message") or ""
    text = f"{error.get('Code', 'error')} (HTTP {_status(exc)})"
    return f"{text}: {message}" if message else text
