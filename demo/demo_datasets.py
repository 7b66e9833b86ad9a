"""The datasets part of the demo: versioned, encrypted, de-identified data, pushed to an S3
server, checked out on another installation, tampering caught, and its lineage.

An S3-compatible server (moto's standalone server, from the environment) runs on the
loopback for the length of the demo. A CT series of 1,000 slices is made from pydicom's
bundled CT_small.dcm, each slice carrying a patient's name and record number; the diabetes
data that ships with scikit-learn is the tabular dataset. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pyotp
from pydicom.data import get_testdata_file
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from medops import admin, examples
from medops.client import Client
from medops.config import Settings
from medops.errors import IntegrityError, PermissionDeniedError

console = Console(width=160)
SLICES = 1000
BUCKET = "medops-demo"
PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "MRN-0042-7719"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "medops-demo",
    "AWS_SECRET_ACCESS_KEY": "medops-demo-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def s3_server() -> Iterator[str]:
    """moto_server on a free loopback port, with a bucket; yields its endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    os.environ.update(S3_CREDENTIALS)
    program = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(  # noqa: S603 - our own environment's moto_server
        [str(program), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):  # noqa: S310
                    break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("moto_server did not start") from None
                time.sleep(0.1)
        import boto3

        boto3.session.Session().client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def _write_series(folder: Path) -> None:
    """1,000 CT slices of one patient, with the patient's name and record number in them."""
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    base = pydicom.dcmread(path)
    base.PatientName = PATIENT_NAME
    base.PatientID = PATIENT_ID
    base.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    base.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    folder.mkdir(parents=True)
    for number in range(1, SLICES + 1):
        base.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.3.{number}"
        base.file_meta.MediaStorageSOPInstanceUID = base.SOPInstanceUID
        base.InstanceNumber = number
        out = io.BytesIO()
        base.save_as(out)
        (folder / f"slice-{number:04d}.dcm").write_bytes(out.getvalue())


def _write_table(folder: Path) -> None:
    x_train, x_eval, y_train, y_eval = examples.diabetes_frames()
    folder.mkdir(parents=True)
    (folder / "train.csv").write_bytes(examples.labeled_csv(x_train, y_train))
    (folder / "evaluation.csv").write_bytes(examples.labeled_csv(x_eval, y_eval))


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _progress(label: str) -> tuple[Progress, Callable[[str, int, int], None]]:
    """A progress bar for an add or checkout; its callback takes (stage, done, total)."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(label, total=None)

    def update(stage: str, done: int, total: int) -> None:
        bar.update(task, description=f"{label}: {stage}", completed=done, total=total)

    return bar, update


def datasets_demo(
    settings: Settings, login: Callable[[Client, str], None], folder: Path, password: str
) -> list[str]:
    """Run the datasets story; returns the outcomes that differ from what should happen."""
    problems: list[str] = []
    console.rule("datasets: versioned, encrypted, de-identified, on S3")
    source = folder / "incoming"
    started = time.perf_counter()
    _write_series(source / "ct-chest")
    _write_table(source / "diabetes")
    console.print(
        f"A scanner export of {SLICES:,} CT slices (patient {PATIENT_NAME}, record "
        f"{PATIENT_ID} in every header) and the diabetes table, written in "
        f"{time.perf_counter() - started:.1f} s"
    )
    with Client(settings=settings) as ds:
        login(ds, "data-scientist")
        bar, update = _progress("de-identify, hash, pack, upload")
        with bar:
            chest = ds.add_dataset(
                "chest-ct",
                [source / "ct-chest"],
                deidentify=True,
                retain_dates="modified",
                message="chest CT export, de-identified on ingest",
                progress=update,
            )
        again = ds.add_dataset(
            "chest-ct", [source / "ct-chest"], deidentify=True, retain_dates="modified"
        )
        diabetes = ds.add_dataset(
            "diabetes", [source / "diabetes"], message="scikit-learn diabetes, 70/30 split"
        )
        table = Table(title="dataset versions", title_justify="left")
        for column in ("version", "files", "bytes", "root (identity)", "de-identified"):
            table.add_column(column)
        for out in (chest, diabetes):
            v = out.version
            table.add_row(
                v.ref, f"{v.file_count:,}", f"{v.total_bytes:,}", v.root[:23] + "…",
                "yes" if v.deidentified else "no",
            )  # fmt: skip
        console.print(table)
        console.print(f"Adding the same export again: unchanged = {again.unchanged}")
        if not again.unchanged:
            problems.append("an unchanged add made a new version")
        detail = ds.dataset_version(chest.version.ref)
        [series] = detail.series
        console.print(
            f"DICOM index: 1 series, {series.modality}, {series.slices:,} slices, patient "
            f"reference {series.patient_ref} (a pseudonym), burned-in annotations flagged: "
            f"{series.burned_in}"
        )
        pushed = ds.push_dataset(chest.version.ref)
        pushed_table = ds.push_dataset(diabetes.version.ref)
        console.print(
            f"Pushed to s3://{BUCKET}: {pushed.objects + pushed_table.objects} encrypted "
            f"objects, {pushed.bytes + pushed_table.bytes:,} bytes, as stored (never decrypted)"
        )
        mine = folder / "checkout-here"
        ds.checkout_dataset(chest.version.ref, mine, purpose="demo: reference copy")
        sample = pydicom.dcmread(mine / "slice-0001.dcm")
        leaked = PATIENT_ID in str(sample) or "DOE" in str(sample.PatientName)
        console.print(
            f"A checked-out slice: PatientName {sample.PatientName!s}, PatientID "
            f"{sample.PatientID}, PatientIdentityRemoved {sample.PatientIdentityRemoved}"
        )
        if leaked or sample.PatientIdentityRemoved != "YES":
            problems.append("the checked-out slice still names the patient")
    problems += _elsewhere(settings, folder, chest.version.ref, _digests(mine), password)
    problems += _tamper(settings, login, chest.version.ref)
    problems += _reidentify(settings, login, series.patient_ref or "")
    return problems


def _elsewhere(
    settings: Settings, folder: Path, ref: str, expected: dict[str, str], password: str
) -> list[str]:
    """A second installation (its own database and store, the same KEK and remote) pulls the
    version from S3, checks it out and verifies it."""
    # The operator gives the second site the same keyring (a copy of the key file, or the
    # same MEDOPS_DATA_KEK secret) and the same remote.
    other = settings.model_copy(
        update={
            "home": folder / "second-site",
            "database_url": None,
            "data_kek_file": settings.resolved_data_kek_file,
        }
    )
    admin.init(other)
    with Client(settings=other) as admin_client:
        admin_client.login("admin", password)
        # The second site's admin enrolls TOTP before anything else (the demo is the app).
        enrollment = admin_client.mfa_enroll(password)
        codes = admin_client.mfa_confirm(pyotp.TOTP(enrollment.secret).now()).codes
        admin_client.login("admin", password, otp=codes[0])
        admin_client.create_user("site-b-scientist", "data_scientist", password)
    with Client(settings=other) as b:
        b.login("site-b-scientist", password)
        pulled = b.pull_dataset(ref)
        theirs = folder / "checkout-second-site"
        b.checkout_dataset(ref, theirs, purpose="demo: training at the second site")
        verified = b.verify_dataset(ref)
    same = _digests(theirs) == expected
    console.print(
        f"Second site: pulled {pulled.objects} objects ({pulled.bytes:,} bytes) from S3, "
        f"checked out {len(expected):,} files, byte-identical: {same}; verify: "
        f"{'ok' if verified.ok else 'FAILED'} ({verified.files:,} files)"
    )
    return [] if same and verified.ok else ["the second site's checkout differs"]


def _tamper(settings: Settings, login: Callable[[Client, str], None], ref: str) -> list[str]:
    """One flipped byte in a stored object is caught by verify and refused by checkout."""
    objects = sorted(p for p in settings.resolved_data_dir.rglob("*") if p.is_file())
    victim = max(objects, key=lambda p: p.stat().st_size)
    original = victim.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    victim.chmod(0o600)
    victim.write_bytes(bytes(tampered))
    problems: list[str] = []
    try:
        with Client(settings=settings) as engineer:
            login(engineer, "ml-engineer")
            report = engineer.verify_dataset(ref)
            console.print(
                f"One byte flipped in a stored object: verify ok = {report.ok}, "
                f"{len(report.bad_objects)} bad object, {len(report.bad_files):,} files named"
            )
            if report.ok:
                problems.append("verify missed a flipped byte")
            try:
                engineer.checkout_dataset(ref, Path(victim.parent, "x"), purpose="demo: tamper")
                problems.append("a checkout of tampered data succeeded")
            except IntegrityError as exc:
                console.print(f"Checkout refused: {str(exc)[:110]}")
    finally:
        victim.write_bytes(original)
    return problems


def _reidentify(
    settings: Settings, login: Callable[[Client, str], None], pseudonym: str
) -> list[str]:
    """Only a role that may re-identify opens the mapping, with a reason, audited."""
    problems: list[str] = []
    with Client(settings=settings) as ds:
        login(ds, "data-scientist")
        try:
            ds.reidentify("chest-ct", pseudonym, "curious")
            problems.append("a data scientist re-identified a patient")
        except PermissionDeniedError:
            console.print("A data scientist may not re-identify (data:reidentify): refused")
    with Client(settings=settings) as clinician:
        login(clinician, "clinician")
        found = clinician.reidentify(
            "chest-ct", pseudonym, "incidental finding to report to the treating team"
        )
        names = ", ".join(f"{m.kind} {m.original}" for m in found.originals)
        console.print(
            f"The clinician re-identifies {pseudonym} (audited, with the reason): {names}"
        )
        if PATIENT_ID not in names:
            problems.append("re-identification did not give the record number back")
    return problems


def lineage_demo(settings: Settings, login: Callable[[Client, str], None]) -> list[str]:
    """After the model trained on diabetes@1 is deployed: what would a recall of it touch?"""
    console.rule("lineage: which deployed models were trained on this data?")
    with Client(settings=settings) as auditor:
        login(auditor, "auditor")
        report = auditor.lineage_impact("diabetes@1")
    table = Table(title="impact of diabetes@1", title_justify="left")
    for column in ("model version", "used as", "aliases"):
        table.add_column(column)
    for model in report.models:
        table.add_row(model.ref, model.relation, ", ".join(model.aliases) or "-")
    console.print(table)
    console.print(
        f"Deployments serving it: {', '.join(report.deployments) or 'none'}; serving patients "
        f"now: {report.serving_now}; predictions made: {report.predictions:,}"
    )
    return [] if report.models and report.serving_now else ["the impact missed the deployment"]
