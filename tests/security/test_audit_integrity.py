"""Attack stories against the audit trail by someone with write access to the database (but
not the audit signing key), each on SQLite and PostgreSQL: the tampering is raw SQL on the
tables (the triggers refuse UPDATE and DELETE on audit_events only, so the audit log is
attacked by INSERT), then the real ``medops audit verify`` (the CLI, in-process) and the API's
``GET /api/v1/audit/verify`` must each name what was done.

The installation: a model version validated, carded, signed by a clinician and a second ML
engineer, promoted and deployed; five patients scored; one outcome recorded; a checkpoint
signed. Everything verifies before the attack.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, text

from medops import errors
from medops.api.app import create_app
from medops.audit.chain import GENESIS, record_hash
from medops.audit.tables import AuditEvent
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.core.permissions import Role
from medops.services import Services
from medops.serving.tables import Prediction
from tests.helpers import model_data
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.people import PASSWORD, make_user

MODEL = "sepsis-risk"
DEPLOYMENT = "ward-7"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


@dataclass
class Installation:
    http: httpx.Client
    services: Services
    cli: Cli
    people: dict[str, dict[str, str]]
    predictions: list[str]  # ids, in the order the patients were scored
    with_outcome: str  # the prediction that has an outcome
    approvals: list[str]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def installation(services: Services, settings: Settings) -> Iterator[Installation]:
    """An installation serving patients, its audit log checkpointed and verifying."""
    with httpx.Client(
        transport=EmbeddedTransport(create_app(services=services)), base_url="https://testserver"
    ) as http:
        people = {
            who: _bearer(make_user(services, name, role))
            for who, name, role in (
                ("ds", "dana", Role.DATA_SCIENTIST),
                ("mle", "max", Role.ML_ENGINEER),
                ("mle2", "mia", Role.ML_ENGINEER),
                ("clin", "carl", Role.CLINICIAN),
                ("aud", "ada", Role.AUDITOR),
            )
        }
        _ok(
            http.post(
                "/api/v1/models",
                json={"name": MODEL, "policy": model_data.POLICY},
                headers=people["mle"],
            ),
            201,
        )
        pkg = model_data.package()
        _ok(
            http.post(
                f"/api/v1/models/{MODEL}/versions",
                files={"artifact": ("model.onnx", pkg.onnx)},
                data={"metadata": json.dumps(model_data.metadata(pkg))},
                headers=people["ds"],
            ),
            201,
        )
        _ok(
            http.post(
                f"/api/v1/models/{MODEL}/versions/1/validate",
                content=model_data.eval_csv(),
                params={"label": model_data.LABEL, "bootstrap": 50},
                headers=people["ds"] | {"content-type": "text/csv"},
            ),
            201,
        )
        _ok(
            http.patch(
                f"/api/v1/models/{MODEL}/versions/1/card",
                json=model_data.CARD,
                headers=people["clin"],
            )
        )
        approvals = [
            _ok(
                http.post(
                    f"/api/v1/models/{MODEL}/versions/1/approvals",
                    json={"password": PASSWORD, "meaning": "approval"},
                    headers=people[who],
                ),
                201,
            )["id"]
            for who in ("clin", "mle2")
        ]
        _ok(
            http.put(
                f"/api/v1/models/{MODEL}/aliases/production",
                json={"version": 1, "reason": "validated and signed"},
                headers=people["mle"],
            )
        )
        _ok(
            http.post(
                "/api/v1/deployments",
                json={"name": DEPLOYMENT, "model": f"{MODEL}@production"},
                headers=people["mle"],
            ),
            201,
        )
        _, x_eval, _, _ = model_data.frames()
        records = [
            {"features": dict(zip(FEATURES, map(float, row), strict=True)), "patient_ref": f"p-{i}"}
            for i, row in enumerate(x_eval.to_numpy()[:5])
        ]
        answer = _ok(
            http.post(
                f"/api/v1/deployments/{DEPLOYMENT}/predict",
                json={"records": records, "metadata": {"ward": "7"}},
                headers=people["clin"],
            )
        )
        predictions = [p["id"] for p in answer["predictions"]]
        label = answer["predictions"][0]["label"]
        _ok(
            http.post(
                f"/api/v1/predictions/{predictions[0]}/outcome",
                json={"label": label},
                headers=people["clin"],
            ),
            201,
        )
        assert services.checkpoints.checkpoint() is not None
        cli = Cli(
            clean_env(
                MEDOPS_HOME=str(settings.home), MEDOPS_DATABASE_URL=str(settings.database_url)
            )
        )
        done = Installation(http, services, cli, people, predictions, predictions[0], approvals)
        assert cli.ok("audit", "verify", "--json").json()["ok"] is True
        yield done


def _sql(services: Services, statement: str, **values: Any) -> None:
    """Tamper as a database user would: one raw statement, committed."""
    with services.db.engine.begin() as connection:
        connection.execute(text(statement), values)


def _record_seq(services: Services, action: str, resource_id: str) -> int:
    with services.db.session() as session:
        seq = session.scalar(
            select(AuditEvent.seq).where(
                AuditEvent.action == action, AuditEvent.resource_id == resource_id
            )
        )
    assert seq is not None
    return int(seq)


def _caught(
    done: Installation, seq: int | None, *words: str, where: str | None = None
) -> dict[str, Any]:
    """Both verifications fail and name the record (``seq``) or the row (``where``)."""
    result = done.cli("audit", "verify", "--json")
    assert result.code == 1, result.out
    report = result.json()
    assert report["ok"] is False
    assert report["first_bad_seq"] == seq, report["first_problem"]
    for word in [*words, *([where] if where else [])]:
        assert word in report["first_problem"], report["first_problem"]
    line = done.cli("audit", "verify")
    assert line.code == 1
    assert "audit log does not verify" in line.err
    assert len(line.err.strip().splitlines()) == 1
    api = _ok(done.http.get("/api/v1/audit/verify", headers=done.people["aud"]))
    assert api["ok"] is False
    assert (api["first_bad_seq"], api["first_problem"]) == (seq, report["first_problem"])
    checked: dict[str, Any] = report
    return checked


def _forge(done: Installation, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT records as given (hashes computed to be self-consistent); their seqs."""
    seqs = []
    for row in rows:
        values = row | {"hash": record_hash(row)}
        columns = ", ".join(values)
        _sql(
            done.services,
            f"INSERT INTO audit_events ({columns}) VALUES ({', '.join(':' + c for c in values)})",
            **values,
        )
        with done.services.db.session() as session:
            seq = session.scalar(select(AuditEvent.seq).where(AuditEvent.hash == values["hash"]))
        assert seq is not None
        seqs.append(int(seq))
    return seqs


def _forged_approval(chain: str, position: int, prev: str, when: Any) -> dict[str, Any]:
    """A model.approve record by a clinician, as the attacker would write it."""
    return {
        "chain_id": chain,
        "chain_seq": position,
        "prev_hash": prev,
        "occurred_at": when,
        "actor_id": "00000000-0000-0000-0000-000000000001",
        "actor_name": "carl",
        "actor_role": "clinician",
        "auth_method": "password",
        "action": "model.approve",
        "resource_type": "model_version",
        "resource_id": f"{MODEL}/1",
        "patient_ref": None,
        "outcome": "success",
        "reason": None,
        "source_ip": "10.0.0.7",
        "user_agent": None,
        "request_id": None,
        "details": json.dumps({"after": {"meaning": "approval"}}, sort_keys=True),
    }


def test_a_forged_backdated_chain_is_refused_by_the_checkpointer_and_named_by_verify(
    installation: Installation,
) -> None:
    """A new self-consistent chain dated a month back (the issue's attack) is not signed by
    the next checkpoint (a failed audit.checkpoint is recorded, the refusal counted, the
    server keeps serving) and both verifications name its first record."""
    done = installation
    when = done.services.clock.now() - timedelta(days=30)
    [forged] = _forge(done, [_forged_approval("forged-chain", 1, GENESIS, when)])
    _caught(done, forged, "no signed opening", where="forged-chain")

    with pytest.raises(errors.AuditTamperedError, match=f"seq {forged}"):
        done.services.checkpoints.checkpoint()
    assert done.services.checkpoints.refusals == 1
    with done.services.db.session() as session:
        refusal = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "audit.checkpoint", AuditEvent.outcome == "failure"
            )
        ).one()
    assert f"seq {forged}" in (refusal.reason or "")
    metrics = done.http.get("/metrics").text
    assert "medops_audit_checkpoints_refused_total 1.0" in metrics
    served = done.http.post(
        f"/api/v1/deployments/{DEPLOYMENT}/predict",
        json={"features": dict.fromkeys(FEATURES, 0.01) | {"age": 50.0, "sex": 1.0, "bmi": 25.0}},
        headers=done.people["clin"],
    )
    assert served.status_code == 200, served.text
    _caught(done, forged, "no signed opening", where="forged-chain")


def test_a_forged_chain_opening_without_the_key_is_named(installation: Installation) -> None:
    """A chain that starts with an audit.chain.open record signed by another key (the
    attacker's) is named at its opening; so is a record appended after it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from medops.audit import anchor

    done = installation
    now = done.services.clock.now()
    details = anchor.opening_details(Ed25519PrivateKey.generate(), "fake-chain", now, None)
    opening = _forged_approval("fake-chain", 1, GENESIS, now) | {
        "action": anchor.OPEN_ACTION,
        "actor_name": "system",
        "details": json.dumps(details, sort_keys=True),
    }
    [first] = _forge(done, [opening])
    follow = _forged_approval("fake-chain", 2, record_hash(opening), now)
    _forge(done, [follow])
    _caught(done, first, "not signed by the audit key")
    with pytest.raises(errors.AuditTamperedError):
        done.services.checkpoints.checkpoint()


def test_a_record_appended_to_the_servers_own_chain_is_named(installation: Installation) -> None:
    """A current-dated record linked after the head of the server's live chain passes every
    hash check, but carries no valid MAC: the checkpointer refuses it and verify names it."""
    done = installation
    chain = done.services.audit.chain_id
    with done.services.db.session() as session:
        head = session.execute(
            select(AuditEvent.chain_seq, AuditEvent.hash)
            .where(AuditEvent.chain_id == chain)
            .order_by(AuditEvent.chain_seq.desc())
            .limit(1)
        ).one()
    record = _forged_approval(chain, head[0] + 1, head[1], done.services.clock.now())
    [forged] = _forge(done, [record])
    _caught(done, forged, "no valid MAC")
    with pytest.raises(errors.AuditTamperedError, match=f"seq {forged}"):
        done.services.checkpoints.checkpoint()
    # The writer never builds on the forged record: its next record opens a new chain.
    _caught(done, forged, "no valid MAC")


def test_an_untampered_installation_verifies_through_the_api(installation: Installation) -> None:
    """The API's verification passes on an honest log, with every kind of row checked."""
    report = _ok(installation.http.get("/api/v1/audit/verify", headers=installation.people["aud"]))
    assert report["ok"] is True, report["first_problem"]
    assert report["rows"] == {"predictions": 5, "explanations": 0, "outcomes": 1, "signatures": 2}
    assert report["macs_checked"] is True
    assert report["legacy_chains"] == 0
    refused = installation.http.get("/api/v1/audit/verify", headers=installation.people["clin"])
    assert refused.status_code == 403


def test_a_tampered_prediction_probability_is_named(installation: Installation) -> None:
    """Editing a stored prediction's probabilities breaks its binding to its audit record."""
    done = installation
    victim = done.predictions[2]
    _sql(
        done.services,
        "UPDATE predictions SET probabilities = :p WHERE id = :i",
        p=json.dumps({"0": 0.99, "1": 0.01}),
        i=victim,
    )
    seq = _record_seq(done.services, "prediction.create", victim)
    _caught(done, seq, "differs from its audit record", where=victim)


@pytest.mark.parametrize(
    ("column", "value"),
    [("features", struct.pack("<10d", *([0.0] * 10))), ("score", 0.01), ("features", None)],
    ids=["packed-features", "score", "packed-features-removed"],
)
def test_a_tampered_packed_column_is_named(
    installation: Installation, column: str, value: object
) -> None:
    """What monitoring reads (the packed features and the score) is bound into the row's
    digest too: editing either, or emptying the packed features so that readers fall back to
    the JSON, breaks the binding."""
    done = installation
    victim = done.predictions[1]
    _sql(done.services, f"UPDATE predictions SET {column} = :v WHERE id = :i", v=value, i=victim)
    seq = _record_seq(done.services, "prediction.create", victim)
    _caught(done, seq, "differs from its audit record", where=victim)


def test_a_deleted_prediction_is_named(installation: Installation) -> None:
    """Deleting a stored prediction leaves its audit record pointing at nothing."""
    done = installation
    victim = done.predictions[3]
    _sql(done.services, "DELETE FROM predictions WHERE id = :i", i=victim)
    seq = _record_seq(done.services, "prediction.create", victim)
    _caught(done, seq, "missing", where=victim)


def test_an_edited_outcome_label_is_named(installation: Installation) -> None:
    """Changing the ground truth of a prediction breaks the outcome's binding."""
    done = installation
    victim = done.with_outcome
    with done.services.db.session() as session:
        label = session.scalar(
            text("SELECT label FROM prediction_outcomes WHERE prediction_id = :i"), {"i": victim}
        )
    flipped = json.dumps(1 - json.loads(label))
    _sql(
        done.services,
        "UPDATE prediction_outcomes SET label = :l WHERE prediction_id = :i",
        l=flipped,
        i=victim,
    )
    seq = _record_seq(done.services, "outcome.record", victim)
    _caught(done, seq, "differs from its audit record", where=victim)


def test_a_deleted_approval_is_named(installation: Installation) -> None:
    """Deleting an electronic signature leaves its model.approve record without its row."""
    done = installation
    victim = done.approvals[0]
    _sql(done.services, "DELETE FROM model_approvals WHERE id = :i", i=victim)
    with done.services.db.session() as session:
        records = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "model.approve")
        ).all()
    [seq] = [r.seq for r in records if victim in (r.details or "")]
    _caught(done, seq, "missing", where=victim)


def test_an_edited_approval_is_named(installation: Installation) -> None:
    """Rewriting who signed (the printed name) no longer matches the signed manifest."""
    done = installation
    victim = done.approvals[1]
    _sql(
        done.services,
        "UPDATE model_approvals SET printed_name = 'Dr. Nobody' WHERE id = :i",
        i=victim,
    )
    with done.services.db.session() as session:
        records = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "model.approve")
        ).all()
    [seq] = [r.seq for r in records if victim in (r.details or "")]
    _caught(done, seq, "differs from its audit record", where=victim)


def test_a_prediction_inserted_without_a_record_is_named(installation: Installation) -> None:
    """A prediction row written straight into the table has no audit record."""
    done = installation
    with done.services.db.session() as session:
        row = session.get(Prediction, done.predictions[1])
        assert row is not None
        values = {
            attr.columns[0].name: getattr(row, attr.key)
            for attr in Prediction.__mapper__.column_attrs
        }
    forged_id = "f" * 32
    values |= {"id": forged_id, "patient_ref": "p-forged"}
    with done.services.db.engine.begin() as connection:
        connection.execute(insert(Prediction).values(**values))
    _caught(done, None, "has no audit record", where=forged_id)


def test_the_public_key_alone_checks_openings_but_not_macs(
    installation: Installation, tmp_path: Any
) -> None:
    """An auditor's copy (the public key, no signing key) catches a forged chain; it says
    that MACs were not checked, so an append to a live chain is for the checkpoints."""
    done = installation
    public = done.cli.ok("audit", "public-key").out
    (tmp_path / "auditor.pem").write_text(public)
    key_file = done.services.settings.resolved_audit_key_file
    key_file.rename(tmp_path / "away.key")
    try:
        clean = done.cli.ok(
            "audit", "verify", "--public-key", str(tmp_path / "auditor.pem"), "--json"
        ).json()
        assert clean["ok"] is True
        assert clean["macs_checked"] is False
        assert any("MACs are not checked" in limit for limit in clean["limits"])
        when = done.services.clock.now() - timedelta(days=30)
        [forged] = _forge(done, [_forged_approval("forged-chain", 1, GENESIS, when)])
        report = done.cli(
            "audit", "verify", "--public-key", str(tmp_path / "auditor.pem"), "--json"
        ).json()
        assert report["first_bad_seq"] == forged
    finally:
        (tmp_path / "away.key").rename(key_file)
