"""The server side of model artifacts: only ONNX is accepted, signatures are checked field by
field, rows run through ONNX Runtime, and column data is validated against the signature."""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import lzma
import pickle
import zipfile
from collections.abc import Sequence
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import onnx
import pandas as pd  # type: ignore[import-untyped]
import pytest
from onnx import TensorProto, helper
from skl2onnx import to_onnx  # type: ignore[import-untyped]
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.datasets import load_breast_cancer, load_diabetes  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline, make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # type: ignore[import-untyped]

from medops.core.columns import MAX_FIELD_ERRORS
from medops.core.onnx_model import (
    OnnxModel,
    check_signature,
    inspect_artifact,
    parity_diff,
    validate_columns,
)
from medops.core.signature import FeatureSpec, ModelSignature, OutputSpec
from medops.errors import (
    InvalidArtifactError,
    InvalidInputError,
    ParityFailedError,
    SignatureMismatchError,
)
from medops.packaging import Package, package_model


@functools.cache
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    """Breast cancer features (names made signature-safe) and the 0/1 target."""
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x, y


@functools.cache
def cancer_model(c: float = 1.0) -> Pipeline:
    x, y = cancer()
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)


@functools.cache
def cancer_package() -> Package:
    return package_model(cancer_model(), sample=cancer()[0])


@functools.cache
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    """Diabetes features with sex as the strings F/M, and progression above the median."""
    data = load_diabetes(as_frame=True, scaled=False)
    x = data.data.copy()
    x["sex"] = x["sex"].map({1.0: "F", 2.0: "M"}).astype(object)
    return x, (data.target > data.target.median()).astype(int)


@functools.cache
def diabetes_package() -> Package:
    x, y = diabetes()
    numeric = [c for c in x.columns if c != "sex"]
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["sex"])]),
        LogisticRegression(max_iter=2000),
    ).fit(x, y)
    return package_model(model, sample=x, demographic=["sex"])


def columns_of(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].tolist() for c in frame.columns}


def _joblib_bytes(compress: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(cancer_model(), buffer, compress=compress)
    return buffer.getvalue()


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model.onnx", cancer_package().onnx)
    return buffer.getvalue()


REFUSED: dict[str, tuple[Any, str]] = {
    "empty": (lambda: b"", "empty"),
    "pickle": (lambda: pickle.dumps(cancer_model()), "pickle"),
    "pickle-protocol-0": (lambda: pickle.dumps(cancer_model(), protocol=0), "pickle"),
    "joblib": (lambda: _joblib_bytes(0), "pickle"),
    "joblib-zlib": (lambda: _joblib_bytes(3), "zlib"),
    "joblib-gzip": (lambda: _joblib_bytes(("gzip", 3)), "gzip"),
    "joblib-bz2": (lambda: _joblib_bytes(("bz2", 3)), "bzip2"),
    "joblib-xz": (lambda: _joblib_bytes(("xz", 3)), "xz"),
    "joblib-lzma": (lambda: _joblib_bytes(("lzma", 3)), "lzma"),
    "gzip-onnx": (lambda: gzip.compress(cancer_package().onnx), "gzip"),
    "bz2-onnx": (lambda: bz2.compress(cancer_package().onnx), "bzip2"),
    "xz-onnx": (lambda: lzma.compress(cancer_package().onnx), "xz"),
    "zip": (_zip_bytes, "zip"),
    "hdf5": (lambda: b"\x89HDF\r\n\x1a\n" + bytes(64), "HDF5"),
    "elf": (lambda: b"\x7fELF\x02\x01\x01" + bytes(64), "ELF"),
    "script": (lambda: b"#!/bin/sh\nrm -rf /\n", "script"),
    "random": (lambda: np.random.default_rng(0).bytes(4096), "ONNX"),
    "truncated": (lambda: cancer_package().onnx[: len(cancer_package().onnx) // 2], "ONNX"),
    "text": (lambda: b'{"not": "a model"}', "ONNX"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_non_onnx_artifacts_are_refused_with_their_format_named(case: str) -> None:
    """Pickles, joblib files (plain and compressed), archives, executables and garbage raise
    InvalidArtifactError whose one-line message names what the bytes are."""
    make, named = REFUSED[case]
    with pytest.raises(InvalidArtifactError) as caught:
        inspect_artifact(make())
    assert named.lower() in str(caught.value).lower()
    assert "\n" not in str(caught.value)


def _tiny_model(node: onnx.NodeProto, *, opsets: list[Any] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
    )
    return helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])


def test_custom_domain_operators_are_refused() -> None:
    """A node outside ai.onnx / ai.onnx.ml (a custom op) is refused and named."""
    node = helper.make_node("Evil", ["x"], ["y"], domain="com.example")
    model = _tiny_model(
        node, opsets=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    with pytest.raises(InvalidArtifactError, match=r"com\.example:Evil"):
        inspect_artifact(model.SerializeToString())


def test_external_tensor_data_is_refused() -> None:
    """An initializer stored outside the file (data_location EXTERNAL) is refused."""
    model = _tiny_model(helper.make_node("Add", ["x", "w"], ["y"]))
    weight = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="../../etc/passwd")
    model.graph.initializer.append(weight)
    with pytest.raises(InvalidArtifactError, match="external tensor data"):
        inspect_artifact(model.SerializeToString())


@pytest.mark.parametrize("location", ["secret.bin", "medops.db", "/etc/hostname"])
def test_external_data_in_a_sparse_constant_attribute_is_refused(location: str) -> None:
    """A Constant node whose sparse_value points at a file (relative or absolute) is refused:
    the server would otherwise read files from its working folder into the model."""
    values = TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[2])
    values.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": "8"}.items():
        values.external_data.add(key=key, value=value)
    indices = helper.make_tensor("i", TensorProto.INT64, [2], [0, 1])
    constant = helper.make_node(
        "Constant", [], ["c"], sparse_value=helper.make_sparse_tensor(values, indices, [2])
    )
    graph = helper.make_graph(
        [constant, helper.make_node("Add", ["x", "c"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(InvalidArtifactError, match="external tensor data"):
        inspect_artifact(model.SerializeToString())


def test_an_onnx_header_without_a_graph_is_refused() -> None:
    """A ModelProto that parses but has no nodes, inputs or outputs is refused."""
    model = helper.make_model(helper.make_graph([], "empty", [], []))
    with pytest.raises(InvalidArtifactError, match="no nodes"):
        inspect_artifact(model.SerializeToString())


def test_model_local_functions_are_refused() -> None:
    """A model carrying its own function definitions is refused."""
    model = _tiny_model(helper.make_node("Relu", ["x"], ["y"]))
    model.functions.append(
        helper.make_function(
            "local",
            "f",
            ["a"],
            ["b"],
            [helper.make_node("Relu", ["a"], ["b"])],
            [helper.make_opsetid("", 17)],
        )
    )
    with pytest.raises(InvalidArtifactError, match="functions"):
        inspect_artifact(model.SerializeToString())


def test_a_graph_the_checker_refuses_is_refused() -> None:
    """A protobuf that parses but names an unknown standard operator fails onnx.checker."""
    model = _tiny_model(helper.make_node("NoSuchOp", ["x"], ["y"]))
    with pytest.raises(InvalidArtifactError, match="checker"):
        inspect_artifact(model.SerializeToString())


def test_inspect_reports_digest_opsets_io_and_operators() -> None:
    """ArtifactInfo carries the sha256, opsets, producer, ORT's inputs/outputs and ops."""
    data = cancer_package().onnx
    info = inspect_artifact(data)
    assert len(info.digest) == 64
    assert info.size == len(data)
    assert info.opset["ai.onnx"] == 17
    assert "ai.onnx.ml" in info.opset
    assert info.producer.startswith("skl2onnx")
    assert info.inputs == [{"name": "input", "type": "tensor(float)", "shape": [None, 30]}]
    assert [o["name"] for o in info.outputs] == ["label", "probabilities"]
    assert "ai.onnx.ml:LinearClassifier" in info.operators
    assert info.ir_version >= 8


def _signature(n_features: int, labels: list[Any], **outputs: Any) -> ModelSignature:
    names = cancer()[0].columns[:n_features]
    return ModelSignature(
        inputs=[FeatureSpec(name=n, type="float") for n in names],
        outputs=OutputSpec(class_labels=labels, **outputs),
    )


def test_tensor_signature_mismatches_are_all_listed() -> None:
    """A wrong feature count, a wrong class count and wrong label types are reported
    together, each under its signature field."""
    info = inspect_artifact(cancer_package().onnx)
    with pytest.raises(SignatureMismatchError) as caught:
        check_signature(info, _signature(29, ["a", "b", "c"]))
    fields = {e.field for e in caught.value.errors}
    assert fields == {"signature.inputs", "signature.outputs.class_labels"}
    reasons = " ".join(e.reason for e in caught.value.errors)
    assert "takes 30 features" in reasons
    assert "3 class labels" in reasons
    assert "labels are int64" in reasons


def test_missing_outputs_are_named() -> None:
    """Output names the graph lacks are each reported with the outputs it has."""
    info = inspect_artifact(cancer_package().onnx)
    signature = _signature(30, [0, 1], label_output="y", probability_output="p")
    with pytest.raises(SignatureMismatchError) as caught:
        check_signature(info, signature)
    assert {e.field for e in caught.value.errors} == {
        "signature.outputs.label_output",
        "signature.outputs.probability_output",
    }


def test_zipmap_outputs_are_refused_with_the_fix() -> None:
    """A seq(map) probability output (ZipMap) is refused: convert with zipmap disabled."""
    x, _ = cancer()
    onx = to_onnx(cancer_model(), x.to_numpy(np.float32)[:1], target_opset=17)
    info = inspect_artifact(onx.SerializeToString())
    signature = _signature(
        30, [0, 1], label_output="output_label", probability_output="output_probability"
    )
    with pytest.raises(SignatureMismatchError, match="zipmap disabled"):
        check_signature(info, signature)


def test_columns_signature_mismatches_are_all_listed() -> None:
    """In the columns layout a renamed feature, an extra graph input and a type clash are
    each reported."""
    package = diabetes_package()
    inputs = list(package.signature.inputs)
    inputs[0] = FeatureSpec(name="years", type="float")
    inputs[1] = FeatureSpec(name="sex", type="float")
    signature = package.signature.model_copy(update={"inputs": inputs})
    with pytest.raises(SignatureMismatchError) as caught:
        check_signature(inspect_artifact(package.onnx), signature)
    errors = {(e.field, e.reason.split(" ")[0]) for e in caught.value.errors}
    assert ("signature.inputs[0]", "the") in errors  # no input named 'years'
    assert ("signature.inputs[1]", "'sex'") in errors  # a float feature, a string input
    assert ("signature.inputs", "graph") in errors  # graph input 'age' is not a feature


def test_predict_gives_labels_and_float64_probabilities() -> None:
    """predict returns (n,) labels and (n, classes) float64; positive_scores its column."""
    x, _ = cancer()
    model = OnnxModel(cancer_package().onnx, cancer_package().signature)
    labels, probabilities = model.predict(columns_of(x))
    assert labels.shape == (len(x),)
    assert probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities, cancer_model().predict_proba(x), atol=1e-5)
    np.testing.assert_array_equal(model.positive_scores(columns_of(x)), probabilities[:, 1])


def test_feed_casts_columns_to_the_graph_dtypes() -> None:
    """The columns layout feeds [N, 1] float32 and string arrays, one per feature."""
    x, _ = diabetes()
    model = OnnxModel(diabetes_package().onnx, diabetes_package().signature)
    feed = model.feed(columns_of(x.iloc[:3]))
    assert feed["age"].dtype == np.float32
    assert feed["age"].shape == (3, 1)
    assert feed["sex"].tolist() == [[v] for v in x["sex"].iloc[:3]]


def test_feed_refuses_missing_features() -> None:
    """Running without a feature column raises InvalidInputError naming it."""
    x, _ = cancer()
    model = OnnxModel(cancer_package().onnx, cancer_package().signature)
    with pytest.raises(InvalidInputError) as caught:
        model.predict(columns_of(x.drop(columns=["mean_radius"])))
    assert [e.field for e in caught.value.errors] == ["mean_radius"]


def test_parity_diff_recomputes_on_the_server() -> None:
    """parity_diff is tiny for the model's own probabilities and large for another's."""
    x, _ = cancer()
    evidence = cancer_package().parity
    assert evidence is not None
    model = OnnxModel(cancer_package().onnx, cancer_package().signature)
    assert parity_diff(model, evidence.columns, evidence.native_probabilities) < 1e-5
    other = cancer_model(0.001).predict_proba(x.iloc[: len(evidence.native_probabilities)])
    assert parity_diff(model, evidence.columns, other) > 1e-2


def test_parity_diff_refuses_empty_or_misshapen_evidence() -> None:
    """No rows, or probabilities of the wrong shape, raise ParityFailedError."""
    evidence = cancer_package().parity
    assert evidence is not None
    model = OnnxModel(cancer_package().onnx, cancer_package().signature)
    with pytest.raises(ParityFailedError):
        parity_diff(model, {k: [] for k in evidence.columns}, [])
    with pytest.raises(ParityFailedError, match="shape"):
        parity_diff(model, evidence.columns, [p[:1] for p in evidence.native_probabilities])


def _clinical_signature() -> ModelSignature:
    return ModelSignature(
        inputs=[
            FeatureSpec(name="age", type="integer", minimum=18, maximum=110),
            FeatureSpec(name="glucose", type="float", minimum=0),
            FeatureSpec(name="smoker", type="boolean"),
            FeatureSpec(name="sex", type="category", categories=["F", "M"]),
        ],
        input_layout="columns",
        outputs=OutputSpec(class_labels=[0, 1]),
    )


def test_validate_columns_accepts_good_lists_and_arrays() -> None:
    """Valid JSON-like lists and typed NumPy arrays pass."""
    signature = _clinical_signature()
    columns: dict[str, Sequence[object]] = {
        "age": [40, 50.0],
        "glucose": [5.5, 7],
        "smoker": [True, 0],
        "sex": ["F", "M"],
    }
    validate_columns(signature, columns)
    validate_columns(
        signature,
        {
            "age": np.array([40, 50]),
            "glucose": np.array([5.5, 7.0]),
            "smoker": np.array([True, False]),
            "sex": np.array(["F", "M"]),
        },
        n_rows_expected=2,
    )


def test_validate_columns_reports_every_kind_of_problem() -> None:
    """Missing and unknown features, wrong types, nulls, non-finite numbers, non-integers,
    out-of-range values and unknown categories each get a field error."""
    columns: dict[str, Sequence[object]] = {
        "age": [40, 17, 111, 40.5, "old", None],
        "glucose": [1.0, float("nan"), float("inf"), -1.0, 2.0, True],
        "smoker": [True, False, 2, "yes", 1, 0],
        "weight": [1, 2, 3, 4, 5, 6],
    }
    with pytest.raises(InvalidInputError) as caught:
        validate_columns(_clinical_signature(), columns)
    reasons = {e.field: e.reason for e in caught.value.errors}
    assert reasons == {
        "weight": "unknown feature: not in the model's signature",
        "sex": "missing feature",
        "rows[1].age": "17 is below the minimum 18",
        "rows[2].age": "111 is above the maximum 110",
        "rows[3].age": "expected an integer, got 40.5",
        "rows[4].age": "expected a number, got 'old'",
        "rows[5].age": "missing value",
        "rows[1].glucose": "expected a finite number, got nan",
        "rows[2].glucose": "expected a finite number, got inf",
        "rows[3].glucose": "-1 is below the minimum 0",
        "rows[5].glucose": "expected a number, got True",
        "rows[2].smoker": "expected a boolean, got 2",
        "rows[3].smoker": "expected a boolean, got 'yes'",
    }
    assert str(caught.value).startswith("the data does not fit the model's signature (13 problems")


def test_validate_columns_reports_unknown_categories_and_lengths() -> None:
    """A value outside the categories and a column of the wrong length are reported."""
    columns: dict[str, Sequence[object]] = {
        "age": [40, 41],
        "glucose": [1.0],
        "smoker": [True, True],
        "sex": ["F", "X"],
    }
    with pytest.raises(InvalidInputError) as caught:
        validate_columns(_clinical_signature(), columns)
    reasons = {e.field: e.reason for e in caught.value.errors}
    assert reasons == {
        "glucose": "has 1 values, expected 2",
        "rows[1].sex": "'X' is not one of the categories ['F', 'M']",
    }


def test_validate_columns_lists_a_few_rows_per_feature_and_caps_the_total() -> None:
    """Each feature lists its first 5 bad rows plus a count; the list stops at the cap."""
    signature = ModelSignature(
        inputs=[FeatureSpec(name=f"f{i}", type="float", maximum=1) for i in range(20)],
        outputs=OutputSpec(class_labels=[0, 1]),
    )
    columns = {f"f{i}": np.full(1000, 5.0) for i in range(20)}
    with pytest.raises(InvalidInputError) as caught:
        validate_columns(signature, columns)
    errors = caught.value.errors
    assert len(errors) == MAX_FIELD_ERRORS
    assert [e.field for e in errors[:6]] == [f"rows[{i}].f0" for i in range(5)] + ["f0"]
    assert errors[5].reason == "995 more bad values in this column"
    assert errors[-1].field == "rows"
    assert "problems not listed" in errors[-1].reason
