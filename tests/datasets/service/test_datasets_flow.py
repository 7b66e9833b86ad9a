"""The dataset service end to end through the SDK and the API, on SQLite and PostgreSQL: a CT
series and a table added with de-identification, an unchanged add, checkout and verify,
tampering detected, the retention rule with a legal hold, re-identification audited, and the
permission matrix of the routes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from medops.api.app import create_app
from medops.audit.tables import AuditEvent
from medops.client import Client
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.core.permissions import Role
from medops.errors import IntegrityError, PermissionDeniedError
from medops.services import Services, build_services
from medops.testing import FixedClock
from tests.helpers.dicom import ct_series
from tests.helpers.http import bearer

KEK = "k1:" + base64.b64encode(bytes(range(32))).decode()
SLICES = 40


@pytest.fixture
def data_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test installation with a data KEK given in the environment's way."""
    return settings.model_copy(update={"data_kek": SecretStr(KEK), "data_dir": tmp_path / "store"})


@pytest.fixture
def data_services(data_settings: Settings, clock: FixedClock) -> Iterator[Services]:
    services = build_services(data_settings, clock=clock)
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def sdk_for(
    data_services: Services, data_settings: Settings, tokens: dict[Role, str]
) -> Iterator[object]:
    """``sdk_for(Role.X)``: an SDK client of that role's user on the test app."""
    del tokens
    opened: list[Client] = []
    app = create_app(services=data_services)

    def build(role: Role) -> Client:
        from tests.helpers.people import make_user

        token = make_user(data_services, f"d-{role.value}".replace("_", "-"), role)
        sdk = Client(
            url="https://testserver",
            token=token,
            settings=data_settings,
            transport=EmbeddedTransport(app),
        )
        opened.append(sdk)
        return sdk

    yield build
    for sdk in opened:
        sdk.close()


def _series(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for number, data in enumerate(ct_series(count), 1):
        (folder / f"slice-{number:04d}.dcm").write_bytes(data)
    return folder


def test_add_checkout_verify_tamper(
    sdk_for: object, data_services: Services, tmp_path: Path
) -> None:
    """A de-identified series and a table go in, an unchanged add makes no version, checkout
    restores the exact bytes, verify passes, and a flipped stored byte is named by verify
    and refused by checkout."""
    ds = sdk_for(Role.DATA_SCIENTIST)  # type: ignore[operator]
    source = tmp_path / "src"
    _series(source / "ct", SLICES)
    (source / "labs.csv").write_text("age,glucose\n41,5.2\n57,6.1\n")
    first = ds.add_dataset("chest-ct", [source], deidentify=True, message="first")
    assert not first.unchanged
    assert first.version.number == 1
    assert first.version.file_count == SLICES + 1
    assert first.version.deidentified
    again = ds.add_dataset("chest-ct", [source], deidentify=True)
    assert again.unchanged
    assert again.version.number == 1
    detail = ds.dataset_version("chest-ct@1")
    assert detail.series[0].slices == SLICES
    assert detail.series[0].deidentified
    assert "labs.csv" in detail.contents["tables"]
    out = tmp_path / "out"
    ds.checkout_dataset("chest-ct@1", out, purpose="training a nodule model")
    written = pydicom.dcmread(out / "ct" / "slice-0001.dcm")
    assert written.PatientID != "ZZPHI-MRN-000001"
    assert (out / "labs.csv").read_text().startswith("age,glucose")
    manifest = ds.dataset_manifest("chest-ct@1")
    for entry in manifest.files:
        digest = "sha256:" + hashlib.sha256((out / entry.path).read_bytes()).hexdigest()
        assert digest == entry.digest
    assert ds.verify_dataset("chest-ct@1").ok
    with data_services.db.session() as session:
        checkout = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "data.checkout")
        ).one()
        assert checkout.reason == "training a nodule model"
    # Tamper with the pack: flip one byte of its stored ciphertext.
    [obj] = {
        p.object
        for s in ds.checkout_dataset("chest-ct@1", tmp_path / "o2", purpose="second look").stored
        for p in s.parts
    }
    stored = next((tmp_path / "store").rglob(obj.removeprefix("sha256:")))
    raw = bytearray(stored.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    stored.write_bytes(bytes(raw))
    report = ds.verify_dataset("chest-ct@1")
    assert not report.ok
    assert obj in report.bad_objects
    assert len(report.bad_files) == SLICES + 1
    with pytest.raises(IntegrityError):
        ds.checkout_dataset("chest-ct@1", tmp_path / "o3", purpose="after tampering")


def test_retention_holds_reidentify_and_permissions(
    sdk_for: object, data_services: Services, tmp_path: Path
) -> None:
    """A hold blocks deletion (409) until released; re-identification needs data:reidentify and
    is audited with the reason; roles without a permission get 403."""
    ds = sdk_for(Role.DATA_SCIENTIST)  # type: ignore[operator]
    mle = sdk_for(Role.ML_ENGINEER)  # type: ignore[operator]
    clin = sdk_for(Role.CLINICIAN)  # type: ignore[operator]
    aud = sdk_for(Role.AUDITOR)  # type: ignore[operator]
    added = ds.add_dataset("scan", [_series(tmp_path / "s", 3)], deidentify=True)
    patient = ds.dataset_version("scan@1").series[0].patient_ref
    assert patient is not None
    hold = mle.hold_dataset("scan", "litigation 2026-17")
    from medops.errors import ConflictError

    with pytest.raises(ConflictError):
        mle.delete_dataset_version("scan@1", "retention ended")
    mle.release_hold(hold.id)
    gone = mle.delete_dataset_version("scan@1", "retention ended")
    assert gone.objects_deleted >= 1
    assert gone.version.deleted_at is not None
    assert added.version.number == 1
    found = clin.reidentify("scan", patient, "contacting the patient about a finding")
    assert any(o.original == "ZZPHI-MRN-000001" for o in found.originals)
    with pytest.raises(PermissionDeniedError):
        ds.reidentify("scan", patient, "curious")
    with pytest.raises(PermissionDeniedError):
        aud.add_dataset("other", [tmp_path / "s"])
    with pytest.raises(PermissionDeniedError):
        aud.verify_dataset("scan@latest")
    with pytest.raises(PermissionDeniedError):
        ds.hold_dataset("scan", "not mine to place")
    assert [d.name for d in aud.datasets()] == ["scan"]
    rotated = mle.rotate_data_keys()
    assert rotated.kek_id == "k1"
    with pytest.raises(PermissionDeniedError):
        ds.rotate_data_keys()


def test_bad_input_is_named(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """A wrong digest upload, a commit of unstored files and a pull from a remote the operator
    did not configure are 422 problems naming the field; a push of an unknown version, 404."""
    head = bearer(tokens[Role.DATA_SCIENTIST])
    wrong = http.put(
        "/api/v1/data/objects/sha256:" + "0" * 64,
        content=b"x",
        headers={**head, "x-medops-kind": "pack"},
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "body"
    commit = http.post(
        "/api/v1/datasets/x/versions",
        headers=head,
        json={"files": [{"path": "a", "size": 1, "digest": "sha256:" + "1" * 64}]},
    )
    assert commit.status_code == 422
    assert commit.json()["errors"][0]["field"] == "files"
    # A 0-byte file needs no upload, so its digest must be that of no bytes: any other would
    # commit a version whose file can never be read (found by schemathesis as a 500 on read).
    empty = http.post(
        "/api/v1/datasets/x/versions",
        headers=head,
        json={"files": [{"path": "a", "size": 0, "digest": "sha256:" + "2" * 64}]},
    )
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "files"
    assert http.get("/api/v1/datasets/x", headers=head).status_code == 404
    unknown = http.post("/api/v1/datasets/x/versions/latest/push", headers=head, json={})
    assert unknown.status_code == 404
    # The server reads and writes only the remote its operator configured, never a folder or
    # bucket a request names.
    elsewhere = http.post(
        "/api/v1/datasets/x/versions/1/pull", headers=head, json={"remote": "/var/lib/elsewhere"}
    )
    assert elsewhere.status_code == 422
    assert elsewhere.json()["errors"][0]["field"] == "remote"
