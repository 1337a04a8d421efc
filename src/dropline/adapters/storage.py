"""Media stores (``dropline.media.ports.MediaStore``): a local folder (the embedded default)
and any S3-compatible bucket through boto3 (AWS S3, MinIO, R2 ...)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from dropline.config import MediaSettings
from dropline.media.ports import MediaStore

__all__ = ["LocalFolderStore", "S3Store", "media_store_for"]

# Rendition names are content-hashed (rules.rendition_name); nothing else is a valid name, so
# no name can climb out of the folder or the prefix.
_NAME = re.compile(r"^[0-9a-f]{20}-\d{1,5}\.(avif|webp|jpg)$")


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a media name: {name!r}")
    return name


class LocalFolderStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def put(self, name: str, data: bytes, content_type: str) -> None:
        path = self.root / _checked(name)
        if path.exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        # Written aside then renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)

    def get(self, name: str) -> bytes | None:
        try:
            return (self.root / _checked(name)).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, name: str) -> None:
        (self.root / _checked(name)).unlink(missing_ok=True)


class S3Store:
    def __init__(self, *, bucket: str, prefix: str = "", client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client = client

    @classmethod
    def connect(cls, *, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                region: str = "us-east-1") -> S3Store:
        client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                              config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                            connect_timeout=5, read_timeout=30))
        return cls(bucket=bucket, prefix=prefix, client=client)

    def put(self, name: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + _checked(name), Body=data,
                               ContentType=content_type,
                               CacheControl="public, max-age=31536000, immutable")

    def get(self, name: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _checked(name))
        except ValueError:
            return None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return bytes(answer["Body"].read())

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + _checked(name))


def media_store_for(settings: MediaSettings) -> MediaStore:
    """The bucket when one is set, else the local folder."""
    if settings.s3_bucket:
        return S3Store.connect(bucket=settings.s3_bucket, prefix=settings.s3_prefix,
                               endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
    return LocalFolderStore(settings.dir)
