"""Helpers of the backup tests: the keys an operator carries to a new machine apart from the
backups, and a store's files read back for byte-for-byte comparison."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from medops.backup.schemas import Manifest
from medops.config import Settings
from medops.services import Services
from medops.storage.objects import open_store
from tests.helpers.datastore import digest_of, random_bytes


def key_files(settings: Settings) -> list[Path]:
    """The key files of an installation: audit signing, TOTP, data KEK, backup."""
    return [
        settings.resolved_audit_key_file,
        settings.resolved_mfa_key_file,
        settings.resolved_data_kek_file,
        settings.resolved_backup_key_file,
    ]


def new_machine(source: Settings, home: Path, database_url: str) -> Settings:
    """Settings of an empty machine that holds the source's keys (carried apart from the
    backups, as docs/operations.md says) and nothing else."""
    target = source.model_copy(update={"home": home, "database_url": database_url})
    home.mkdir(parents=True, exist_ok=True)
    for here, there in zip(key_files(source), key_files(target), strict=True):
        if here.exists():
            shutil.copy2(here, there)
    return target


def store_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (less work in progress) by its relative path."""
    found: dict[str, bytes] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "tmp"]
        for name in files:
            path = Path(folder) / name
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def flip_byte(path: Path, offset: int = -20) -> None:
    """Change one byte of a file (tampering)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.chmod(0o600)
    path.write_bytes(bytes(data))


def manifest_of(folder: Path, backup_id: str) -> Manifest:
    """The manifest of a backup in a folder target, read as it is stored."""
    body = (folder / "backups" / backup_id / "manifest.json").read_bytes()
    return Manifest.model_validate_json(body)


@dataclass(frozen=True)
class Populated:
    settings: Settings
    services: Services
    clinician: dict[str, str]
    predictions: int


def add_data_object(settings: Settings, seed: int, size: int = 4096) -> str:
    """Put one object in the dataset store (encrypted, with its key record); its digest."""
    data = random_bytes(size, seed)
    store = open_store(settings)
    try:
        store.put(digest_of(data), data)
    finally:
        store.close()
    return digest_of(data)


def stored_objects(settings: Settings) -> int:
    """How many values the blob store and the dataset store hold (what a backup lists)."""
    from medops.backup.stores import sources, stored_keys

    return sum(len(list(stored_keys(b))) for b in sources(settings).values())
