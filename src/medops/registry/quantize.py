"""INT8 dynamic quantization of an accepted ONNX artifact, and what it gains or costs.

ONNX Runtime's dynamic quantization stores the weights of a few operator types as 8-bit
integers and quantizes their inputs on the fly (``MatMul`` becomes ``DynamicQuantizeLinear``
+ ``MatMulInteger``). Which types it handles is ONNX Runtime's own registry
(``onnxruntime.quantization.registry.IntegerOpsRegistry``); medops keeps those whose
quantized form the server still accepts and that gain on their own (``_NO_GAIN`` says why
each other one is left out). ONNX-ML operators (``TreeEnsemble``,
``LinearClassifier``, ``Scaler``, ``ZipMap``...) are never quantized, and neither is
``Gemm``: most tabular models have nothing to gain.

``quantize_int8`` quantizes, checks the result as the server checks an upload (the same
``OnnxModel``, hence ``inspect_artifact`` and ``check_signature``), and measures it against
the parent on sample rows: latency (median of interleaved runs of one batch), the largest
probability difference, label agreement, and accuracy and AUROC when labels are given.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medops.errors import FieldError, InvalidArtifactError, InvalidInputError, NotQuantizableError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from medops.core.onnx_model import Columns
    from medops.core.signature import ModelSignature

# onnx, ONNX Runtime and NumPy are imported where they are used, as in registry/service.py.

# Operator types in ONNX Runtime's registry that medops does not quantize, and why.
_NO_GAIN = {
    "LSTM": "becomes com.microsoft:DynamicQuantizeLSTM, which the server refuses",
    "Attention": "quantized as com.microsoft:QAttention, which the server refuses",
    "EmbedLayerNormalization": "a com.microsoft operator, which the server refuses",
    "Transpose": "only carries a tensor that is already quantized; gains nothing alone",
}
_ML_DOMAIN = "ai.onnx.ml"
_FLOAT_TYPES = (1, 10)  # onnx.TensorProto.FLOAT, FLOAT16
_INT8_TYPES = (2, 3)  # onnx.TensorProto.UINT8, INT8
_PROVIDERS = ("CPUExecutionProvider",)


@dataclass(frozen=True)
class QuantizeResult:
    """An INT8 artifact and how it compares with its parent on the sample rows."""

    data: bytes  # the quantized ONNX artifact
    quantized_ops: list[str]  # operator types ONNX Runtime quantized, e.g. ["MatMul"]
    parent_size: int  # bytes
    size: int
    parent_us_per_row: float  # median batch latency / rows, in microseconds
    us_per_row: float
    speedup: float  # parent latency / quantized latency (> 1: faster)
    max_probability_diff: float  # largest |parent - quantized| class probability
    label_agreement: float  # fraction of rows with the same predicted label
    parent_accuracy: float | None  # at threshold 0.5 on the positive class; None without labels
    accuracy: float | None
    parent_auroc: float | None  # None without labels, or when they hold one class only
    auroc: float | None
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """Everything but the bytes (given by their sha256 ``digest``), JSON-safe."""
        out = asdict(self)
        out["digest"] = hashlib.sha256(out.pop("data")).hexdigest()
        return out


def gain_op_types() -> list[str]:
    """ONNX Runtime's dynamic INT8 operator types that medops quantizes (default domain)."""
    from onnxruntime.quantization.registry import (  # type: ignore[import-untyped]
        IntegerOpsRegistry,
    )

    return sorted(set(IntegerOpsRegistry) - set(_NO_GAIN))


def quantizable_operators(model_bytes: bytes) -> tuple[list[str], list[str]]:
    """(operator types INT8 quantization would quantize, every other operator type)."""
    gain, other = _classify(_parse(model_bytes))
    return sorted(gain), sorted(other)


def check_quantizable(model_bytes: bytes) -> list[str]:
    """The operator types INT8 quantization would quantize (NotQuantizableError if none)."""
    gain, other = _classify(_parse(model_bytes))
    if not gain:
        raise _nothing_to_quantize(other)
    return sorted(gain)


def quantize_int8(
    model_bytes: bytes,
    signature: ModelSignature,
    sample_columns: Columns,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
    repeats: int = 21,
) -> QuantizeResult:
    """Quantize ``model_bytes`` to INT8, check it as an upload, and measure it on the sample.

    The whole sample is one batch, timed ``repeats`` times per model (runs interleaved, after
    one warm-up run each). ``labels`` (1 for the signature's positive class, 0 otherwise) add
    accuracy (threshold 0.5) and AUROC, computed as the validation report computes them.
    Raises NotQuantizableError when no operator would be quantized ("nothing to quantize"),
    InvalidInputError when the sample or labels are unusable, and InvalidArtifactError when
    the parent, or what ONNX Runtime made of it, is not an artifact the server accepts.
    """
    import numpy as np

    from medops.core.onnx_model import OnnxModel, validate_columns

    parent = OnnxModel(model_bytes, signature)  # the parent must itself be acceptable
    gain = set(check_quantizable(model_bytes))
    parsed = _parse(model_bytes)
    validate_columns(signature, sample_columns)
    feed = parent.feed(sample_columns)
    rows = len(next(iter(feed.values())))
    if rows == 0:
        raise InvalidInputError(
            "quantization needs sample rows", errors=[FieldError("columns", "no rows")]
        )
    truth = None if labels is None else _binary_labels(labels, rows)

    data = _quantize(model_bytes, sorted(gain))
    try:
        model = OnnxModel(data, signature)
    except InvalidInputError as exc:
        raise InvalidArtifactError(
            f"ONNX Runtime's INT8 model would be refused on upload: {exc}", errors=exc.errors
        ) from exc
    quantized_ops = _quantized_ops(parsed, _parse(data), gain)
    if not quantized_ops:
        message = f"nothing to quantize: ONNX Runtime quantized none of {', '.join(sorted(gain))}"
        raise NotQuantizableError(message, errors=[FieldError("model", message)])

    parent_labels, parent_probs = parent.predict(sample_columns)
    new_labels, new_probs = model.predict(sample_columns)
    parent_time, new_time = _median_batch_seconds([model_bytes, data], feed, signature, repeats)
    positive = signature.outputs.positive_index
    parent_metrics = _metrics(truth, parent_probs[:, positive])
    metrics = _metrics(truth, new_probs[:, positive])
    return QuantizeResult(
        data=data,
        quantized_ops=quantized_ops,
        parent_size=len(model_bytes),
        size=len(data),
        parent_us_per_row=parent_time / rows * 1e6,
        us_per_row=new_time / rows * 1e6,
        speedup=parent_time / max(new_time, 1e-9),
        max_probability_diff=float(np.abs(parent_probs - new_probs).max()),
        label_agreement=float(np.mean(parent_labels == new_labels)),
        parent_accuracy=parent_metrics["accuracy"],
        accuracy=metrics["accuracy"],
        parent_auroc=parent_metrics["auroc"],
        auroc=metrics["auroc"],
        rows=rows,
    )


def _parse(data: bytes) -> onnx.ModelProto:
    import onnx
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        msg = f"the artifact is not an ONNX protobuf ({exc})"
        raise InvalidArtifactError(msg) from exc
    return model


def _graphs(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    found = [graph]
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                found.extend(_graphs(attr.g))
            for sub in attr.graphs:
                found.extend(_graphs(sub))
    return found


def _classify(model: onnx.ModelProto) -> tuple[set[str], dict[str, str]]:
    """Operator types ONNX Runtime would quantize (top-level graph, default domain, with the
    constant weights it needs), and every other type with its domain."""
    gain_types = set(gain_op_types())
    graph = model.graph
    floats = {t.name for t in graph.initializer if t.data_type in _FLOAT_TYPES}
    gain: set[str] = set()
    for node in graph.node:
        if node.domain not in {"", "ai.onnx"} or node.op_type not in gain_types:
            continue
        # ORT skips a MatMul whose B is not a constant and a Gather over a non-constant table.
        if node.op_type == "MatMul" and node.input[1] not in floats:
            continue
        if node.op_type == "Gather" and node.input[0] not in floats:
            continue
        gain.add(node.op_type)
    other = {
        n.op_type: n.domain or "ai.onnx"
        for g in _graphs(graph)
        for n in g.node
        if n.op_type not in gain
    }
    return gain, other


def _nothing_to_quantize(other: dict[str, str]) -> NotQuantizableError:
    names = ", ".join(sorted(other))
    if all(domain == _ML_DOMAIN for domain in other.values()):
        reason = "are ONNX-ML operators that ONNX Runtime does not quantize"
    else:
        reason = (
            "include none that ONNX Runtime's dynamic INT8 quantization handles (it quantizes "
            f"{', '.join(gain_op_types())}: a MatMul only with constant weights, a Gather only "
            "over a constant table; ONNX-ML operators never)"
        )
    message = f"nothing to quantize: this model's operators ({names}) {reason}; "
    message += "INT8 would gain nothing"
    return NotQuantizableError(message, errors=[FieldError("model", message)])


def _quantize(data: bytes, op_types: list[str]) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory(prefix="medops-int8-") as folder:
        source, target = Path(folder) / "model.onnx", Path(folder) / "model.int8.onnx"
        source.write_bytes(data)
        try:
            with _without_preprocess_advice():
                quantize_dynamic(
                    source, target, op_types_to_quantize=op_types, weight_type=QuantType.QInt8
                )
        except Exception as exc:  # the quantizer raises anything from KeyError to ValueError
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            msg = f"ONNX Runtime could not quantize this model: {first}"
            raise InvalidArtifactError(msg) from exc
        return target.read_bytes()


class _PreprocessAdvice(logging.Filter):
    """ONNX Runtime's advice to run its pre-processing (shape inference and graph
    optimization; the latter may fuse a MatMul into a Gemm, which is then not quantized)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


@contextlib.contextmanager
def _without_preprocess_advice() -> Iterator[None]:
    """Drop that advice, which ``quantize_dynamic`` logs on the root logger on every call
    (a JSON warning line in the CLI's output and the server log otherwise)."""
    root, advice = logging.getLogger(), _PreprocessAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def _quantized_ops(
    parent: onnx.ModelProto, quantized: onnx.ModelProto, candidates: set[str]
) -> list[str]:
    """Candidate types of which the quantized graph has fewer nodes (replaced, as MatMul by
    MatMulInteger) or a node reading an 8-bit table (kept, as Gather)."""
    int8 = {t.name for t in quantized.graph.initializer if t.data_type in _INT8_TYPES}
    done = []
    for op in sorted(candidates):
        before = [n for n in parent.graph.node if n.op_type == op]
        after = [n for n in quantized.graph.node if n.op_type == op]
        if len(after) < len(before) or any(i in int8 for n in after for i in n.input):
            done.append(op)
    return done


def _median_batch_seconds(
    artifacts: list[bytes], feed: dict[str, np.ndarray], signature: ModelSignature, repeats: int
) -> list[float]:
    """Median seconds to run ``feed`` through each artifact, runs interleaved (in alternating
    order) so that a slower moment of the machine falls on every model alike."""
    from medops.core.onnx_artifact import load_artifact

    outputs = [signature.outputs.label_output, signature.outputs.probability_output]
    sessions = [load_artifact(data, _PROVIDERS, 1)[1] for data in artifacts]
    for session in sessions:  # warm-up: the first run allocates
        session.run(outputs, feed)
    times: list[list[float]] = [[] for _ in sessions]
    for repeat in range(max(1, repeats)):
        order = list(range(len(sessions)))
        for index in order if repeat % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            sessions[index].run(outputs, feed)
            times[index].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def _binary_labels(labels: Sequence[int] | np.ndarray, rows: int) -> np.ndarray:
    import numpy as np

    truth = np.asarray(labels)
    problem = None
    if truth.shape != (rows,):
        problem = f"{truth.size} labels for {rows} sample rows"
    elif not np.isin(truth, [0, 1]).all():
        problem = "labels must be 1 (the positive class) or 0"
    if problem is not None:
        raise InvalidInputError(
            f"cannot score the models: {problem}", errors=[FieldError("labels", problem)]
        )
    return truth.astype(bool)


def _metrics(truth: np.ndarray | None, scores: np.ndarray) -> dict[str, float | None]:
    """Accuracy (threshold 0.5) and AUROC as the validation report computes them."""
    if truth is None:
        return {"accuracy": None, "auroc": None}
    from medops.core.metrics import ScoreLevels, point_metrics

    found = point_metrics(ScoreLevels.build(truth, scores.astype("float64"), 10), 0.5)
    return {"accuracy": found["accuracy"], "auroc": found["auroc"]}
