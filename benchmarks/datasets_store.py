# ruff: noqa: T201
"""Throughput of the object store's add path, run by hand (not collected by pytest):
``.venv/bin/python benchmarks/datasets_store.py`` puts and gets 8 objects of 64 MiB
(512 MiB, the pack size) in a temporary local store, fsync included, and prints MiB/s next to
hashlib's SHA-256 floor. docs/datasets-storage.md records the figures."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from medops.storage.backends import LocalBackend
from medops.storage.crypto import Keyring
from medops.storage.objects import ObjectStore

MIB = 1024 * 1024
OBJECTS = 8
SIZE = 64 * MIB


def main() -> None:
    ring = Keyring([Keyring.generate_key()])
    blobs = [os.urandom(SIZE) for _ in range(OBJECTS)]
    digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
    total = OBJECTS * SIZE / MIB

    def run(label: str, *, checked: bool, callers: int) -> None:
        root = Path(tempfile.mkdtemp(prefix="medops-measure-"))
        store = ObjectStore(LocalBackend(root), ring, workers=0)
        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(callers) as pool:
                list(
                    pool.map(
                        lambda i: store.put(digests[i], blobs[i], checked=checked), range(OBJECTS)
                    )
                )
            took = time.perf_counter() - started
            print(f"put, {label}: {took:.3f} s, {total / took:.0f} MiB/s")
            if callers == 1 and not checked:
                started = time.perf_counter()
                for digest in digests:
                    store.get(digest)
                took = time.perf_counter() - started
                print(f"get (verified): {took:.3f} s, {total / took:.0f} MiB/s")
        finally:
            store.close()
            shutil.rmtree(root)

    for _ in range(2):
        run("digest checked in put, 1 caller", checked=False, callers=1)
        run("digest checked in put, 2 callers", checked=False, callers=2)
        run("checked=True, 1 caller", checked=True, callers=1)
        run("checked=True, 2 callers", checked=True, callers=2)
    started = time.perf_counter()
    for blob in blobs:
        hashlib.sha256(blob).digest()
    print(f"hashlib SHA-256 floor: {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    main()
