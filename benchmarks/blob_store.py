# ruff: noqa: T201 - a benchmark script: its report is what it prints
"""The registry blob store: plaintext (the earlier release's LocalBlobStore) versus encrypted
at rest (EncryptedBlobStore, AES-256-GCM envelope, on a folder), for one model artifact.

What the registry does with an artifact: an upload stores the bytes (``put``), a deploy or a
validation loads them back whole (``get``); ``put_stream`` and a streamed ``open`` are the
bounded-memory paths for artifacts of any size. Each run uses a fresh folder (a first write,
as an upload is); the page cache is warm; medians of several runs. The peak Python memory of
an encrypted ``put_stream`` of the artifact (tracemalloc, a separate run) shows the bound.

Run: .venv/bin/python benchmarks/blob_store.py [megabytes=50] [runs=7]
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from medops.config import Settings
from medops.storage.base import BlobStore
from medops.storage.encrypted import open_blob_store
from medops.storage.local import LocalBlobStore


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _drain(store: BlobStore, digest: str) -> None:
    with store.open(digest) as reader:
        while reader.read(1 << 20):
            pass


def _one_run(store: BlobStore, data: bytes, source: Path, home: Path) -> dict[str, float]:
    """One upload, load, streamed read and streamed upload into a fresh folder."""
    result = {"upload: put(bytes)": _timed(lambda: store.put(data))}
    digest = store.put(data)
    result["model load: get"] = _timed(lambda: store.get(digest))
    result["streamed read: open"] = _timed(lambda: _drain(store, digest))
    shutil.rmtree(home / "blobs")
    with source.open("rb") as stream:
        result["upload: put_stream(file)"] = _timed(lambda: store.put_stream(stream))
    return result


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    data = os.urandom(megabytes * 1000 * 1000)  # weights do not compress; nor does this
    base = Path(tempfile.mkdtemp(prefix="medops-blob-bench-"))
    source = base / "artifact.onnx"
    source.write_bytes(data)
    times: dict[str, dict[str, list[float]]] = {"plaintext": {}, "encrypted": {}}
    try:
        for run in range(runs):
            for kind in ("plaintext", "encrypted"):
                home = base / f"{kind}-{run}"
                store: BlobStore
                if kind == "plaintext":
                    store = LocalBlobStore(home / "blobs")
                else:
                    encrypted = open_blob_store(Settings(home=home))
                    encrypted.objects  # noqa: B018 - the keyring and pool, outside the timing
                    store = encrypted
                for operation, seconds in _one_run(store, data, source, home).items():
                    times[kind].setdefault(operation, []).append(seconds)
                if kind == "encrypted":
                    encrypted.close()
                shutil.rmtree(home)
        peak_home = base / "peak"
        peak_store = open_blob_store(Settings(home=peak_home))
        peak_store.objects  # noqa: B018
        tracemalloc.start()
        with source.open("rb") as stream:
            peak_store.put_stream(stream)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak_store.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print(
        f"# {megabytes} MB artifact, medians of {runs} runs, {os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}"
    )
    print("| operation | plaintext s | encrypted s | encrypted / plaintext |")
    print("|---|---:|---:|---:|")
    for operation, plain_times in times["plaintext"].items():
        plain = statistics.median(plain_times)
        crypt = statistics.median(times["encrypted"][operation])
        print(f"| {operation} | {plain:.3f} | {crypt:.3f} | {crypt / plain:.2f}x |")
    print(f"peak Python memory of an encrypted put_stream: {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
