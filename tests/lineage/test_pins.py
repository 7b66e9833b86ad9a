"""Registering a model version on pinned dataset versions: checked to exist and not to be
deleted (422 naming the field), recorded as lineage edges in the same transaction, shown on
the version; the older unchecked URI stays accepted with a warning."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from medops.lineage.tables import LineageEdge
from medops.registry.tables import ModelVersion
from medops.services import Services
from tests.helpers.lineage_chain import create_model, register_pinned
from tests.helpers.lineage_data import add_version
from tests.helpers.registry import register


def _edges(services: Services) -> set[tuple[str, str, str]]:
    with services.db.session() as session:
        return {
            (e.source_id, e.target_id, e.relation) for e in session.scalars(select(LineageEdge))
        }


def test_a_registration_pins_its_training_validation_and_reference_data(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """Each NAME@VERSION resolves to a dataset version; the version shows the training pin
    as its training data (URI and Merkle root) and every pin under lineage.datasets, and
    lineage holds one edge per pin."""
    create_model(http, people)
    train = add_version(services, "vitals")
    valid = add_version(services, "vitals-holdout")
    ref = add_version(services, "vitals-reference")
    answer = register_pinned(
        http, people["ds"], training="vitals@1", validation="vitals-holdout@latest",
        reference=f"vitals-reference@{ref.root[:15]}",
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["training_data"]["uri"] == "medops:dataset/vitals@1"
    assert body["training_data"]["digest"] == train.root.removeprefix("sha256:")
    assert body["lineage"]["datasets"] == {
        "training": {"dataset": "vitals@1", "root": train.root},
        "validation": {"dataset": "vitals-holdout@1", "root": valid.root},
        "reference": {"dataset": "vitals-reference@1", "root": ref.root},
    }
    with services.db.session() as session:
        version_id = session.scalars(select(ModelVersion.id)).one()
    assert _edges(services) == {
        (train.id, version_id, "training"),
        (valid.id, version_id, "validation"),
        (ref.id, version_id, "reference"),
    }


@pytest.mark.parametrize(
    ("field", "given", "says"),
    [
        ("training_data", "vitals@7", "no dataset version vitals@7"),
        ("validation_data", "nothing@1", "no dataset version nothing@1"),
        ("reference_data", "vitals@2", "was deleted"),
        ("training_data", "Not A Ref", "is not NAME@VERSION"),
    ],
)
def test_an_unknown_or_deleted_dataset_version_is_refused_naming_the_field(
    http: httpx.Client,
    services: Services,
    people: dict[str, dict[str, str]],
    field: str,
    given: str,
    says: str,
) -> None:
    """A pin that names no version, a deleted one or no reference at all is a 422 problem
    naming ``<role>_data.dataset``; nothing is stored and no edge is recorded."""
    create_model(http, people)
    add_version(services, "vitals")
    add_version(services, "vitals", deleted=True)
    pins = {"training": "vitals@1"} | {field.removesuffix("_data"): given}
    answer = register_pinned(http, people["ds"], **pins)  # type: ignore[arg-type]
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert says in answer.text
    assert any(e["field"] == f"{field}.dataset" for e in problem["errors"])
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
    assert _edges(services) == set()


def test_the_unchecked_uri_form_is_still_accepted(
    http: httpx.Client, services: Services, people: dict[str, dict[str, str]]
) -> None:
    """A version registered with {'uri', 'digest'} (how versions were registered before
    dataset versions) is stored as before, with no edge (the CLI tells the user to pin)."""
    create_model(http, people)
    answer = register(http, people["ds"])
    assert answer.status_code == 201, answer.text
    assert answer.json()["training_data"]["uri"] == "file:///data/diabetes.csv"
    assert _edges(services) == set()


def test_a_uri_cannot_pose_as_a_pin(http: httpx.Client, people: dict[str, dict[str, str]]) -> None:
    """A URI in the pins' own form (medops:dataset/...) is refused: only {'dataset': ...}
    is checked."""
    create_model(http, people)
    from tests.helpers import model_data

    meta = model_data.metadata(model_data.package(1.0))
    meta["training_data"] = {"uri": "medops:dataset/vitals@1"}
    answer = register(http, people["ds"], meta=meta)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "training_data.uri"
