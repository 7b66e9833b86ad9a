"""A backend in an S3 bucket (AWS, MinIO, Ceph, any S3-compatible server) through boto3.

``s3://bucket/prefix``: keys live under the prefix. The endpoint comes from
``MEDOPS_DATA_S3_ENDPOINT_URL`` and the region from ``MEDOPS_DATA_S3_REGION``; credentials
from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an
instance role). A single PUT is atomic in S3; large objects go through S3's multipart upload
(which the transfer resumes after a crash); reads use ranged GETs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from medops.errors import ConnectionFailedError, InvalidInputError, NotFoundError
from medops.storage.backends.base import Buffer

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Backend:
    """Values as objects in ``bucket`` under ``prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise InvalidInputError("an s3:// remote needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client or boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32),
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, key: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, what)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING or code == "NoSuchUpload":
                raise NotFoundError(f"{key} is not stored in {self.url}") from None
            raise ConnectionFailedError(
                f"S3 {what} of {key} in {self.url} failed: {code}"
            ) from None
        except BotoCoreError as exc:
            msg = f"S3 {what} of {key} in {self.url} failed: {type(exc).__name__}"
            raise ConnectionFailedError(msg) from None

    def put(self, key: str, chunks: Iterable[Buffer]) -> None:
        self._call("put_object", key, Key=self._key(key), Body=b"".join(chunks))

    def get(self, key: str) -> bytes:
        answer = self._call("get_object", key, Key=self._key(key))
        data: bytes = answer["Body"].read()
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        end = offset + length - 1
        answer = self._call("get_object", key, Key=self._key(key), Range=f"bytes={offset}-{end}")
        data: bytes = answer["Body"].read()
        return data

    def size(self, key: str) -> int | None:
        try:
            answer = self._call("head_object", key, Key=self._key(key))
        except NotFoundError:
            return None
        return int(answer["ContentLength"])

    def delete(self, key: str) -> None:
        self._call("delete_object", key, Key=self._key(key))

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for item in page.get("Contents", []):
                    yield str(item["Key"])[strip:]
        except (ClientError, BotoCoreError) as exc:
            raise ConnectionFailedError(f"S3 listing of {self.url} failed: {exc}") from None

    def start_multipart(self, key: str) -> str:
        answer = self._call("create_multipart_upload", key, Key=self._key(key))
        return str(answer["UploadId"])

    def put_part(self, key: str, upload_id: str, number: int, data: Buffer) -> str:
        answer = self._call(
            "upload_part",
            key,
            Key=self._key(key),
            UploadId=upload_id,
            PartNumber=number,
            Body=bytes(data),
        )
        return str(answer["ETag"])

    def list_parts(self, key: str, upload_id: str) -> list[tuple[int, str]] | None:
        try:
            answer = self._call("list_parts", key, Key=self._key(key), UploadId=upload_id)
        except NotFoundError:
            return None
        return [(int(p["PartNumber"]), str(p["ETag"])) for p in answer.get("Parts", [])]

    def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        self._call(
            "complete_multipart_upload",
            key,
            Key=self._key(key),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(parts)]},
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFoundError):
            self._call("abort_multipart_upload", key, Key=self._key(key), UploadId=upload_id)
