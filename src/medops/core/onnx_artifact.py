"""Accepting a model artifact: only self-contained ONNX with standard operators.

The server only ever loads ONNX, and only through ONNX Runtime's CPU provider: it never
unpickles and never imports a training framework. ``inspect_artifact`` refuses what is not a
self-contained ONNX model with standard operators, naming the format it recognises (a pickle,
a joblib file, a zip archive, an executable...). Pickles are recognised by disassembling their
first opcodes with ``pickletools`` (which never executes them). Models with model-local
functions or training information are refused too: converters for tabular classifiers never
produce them, and refusing keeps every operator the server runs visible in
``ArtifactInfo.operators``.
"""

from __future__ import annotations

import hashlib
import pickletools  # nosec B403 - reads opcodes to refuse pickles; never unpickles
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]

from medops.errors import InvalidArtifactError

MAX_ARTIFACT_BYTES = 512 * 1024 * 1024
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})

# Leading bytes of formats people upload by mistake (or on purpose), with what they are.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive (torch.save, Keras or an MLflow model folder?)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "gzip-compressed data (a compressed joblib or pickle file?)"),
    (b"BZh", "bzip2-compressed data (a compressed joblib or pickle file?)"),
    (b"\xfd7zXZ\x00", "xz-compressed data (a compressed joblib or pickle file?)"),
    (b"]\x00\x00", "lzma-compressed data (a compressed joblib or pickle file?)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data (a compressed joblib or pickle file?)"),
    (b"\x04\x22\x4d\x18", "lz4-compressed data (a compressed joblib or pickle file?)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O universal binary or Java class file"),
    (b"#!", "a script"),
)
_PICKLE_OPCODES = frozenset(op.code.encode("latin-1") for op in pickletools.opcodes)


@dataclass(frozen=True)
class ArtifactInfo:
    """What the server learned from an artifact's bytes before accepting it."""

    digest: str  # sha256 hex of the bytes
    size: int
    opset: dict[str, int]  # domain -> version; the default domain is shown as "ai.onnx"
    producer: str  # producer_name and producer_version
    inputs: list[dict[str, Any]]  # [{"name", "type", "shape"}] as ONNX Runtime reports them
    outputs: list[dict[str, Any]]
    operators: list[str]  # sorted distinct "domain:op_type"
    ir_version: int


def inspect_artifact(data: bytes) -> ArtifactInfo:
    """Check that ``data`` is a self-contained, standard-operator ONNX model ORT can load."""
    return load_artifact(data, ("CPUExecutionProvider",), 1)[0]


def _refuse(problem: str) -> InvalidArtifactError:
    return InvalidArtifactError(f"the artifact is not an acceptable ONNX model: {problem}")


def _known_format(data: bytes) -> str | None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    if len(data) >= 2 and data[0] == 0x78 and (data[0] * 256 + data[1]) % 31 == 0:
        return "zlib-compressed data (a compressed joblib file?)"
    if _is_pickle(data):
        return "a Python pickle (pickle, joblib or cloudpickle); export the model to ONNX"
    return None


def _is_pickle(data: bytes) -> bool:
    """Recognise pickles by disassembling (never executing) their first opcodes."""
    if data[0] == 0x80 and len(data) > 1 and 2 <= data[1] <= 5:
        return True
    if data[:1] not in _PICKLE_OPCODES:
        return False
    try:
        for count, (opcode, _, _) in enumerate(pickletools.genops(data[:65536])):
            if opcode.name == "STOP" or count >= 8:
                return True
    except ValueError:
        return False
    return False


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _tensors(message: Message) -> Iterator[onnx.TensorProto]:
    """Every TensorProto anywhere in ``message``: initializers, sparse initializers, node
    attributes (``t``, ``tensors``, ``sparse_tensor``, ``sparse_tensors``), nested graphs,
    whatever field a future ONNX adds. A generic walk, so that no place that can point at
    external data is missed."""
    stack: list[Message] = [message]
    while stack:
        current = stack.pop()
        if isinstance(current, onnx.TensorProto):
            yield current
            continue
        for field, value in current.ListFields():
            if field.message_type is None:
                continue
            if field.is_repeated:
                stack.extend(v for v in value if isinstance(v, Message))
            elif isinstance(value, Message):
                stack.append(value)


def _parse(data: bytes) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise _refuse(f"not an ONNX protobuf ({exc})") from exc
    if model.ir_version <= 0 or not model.opset_import:
        raise _refuse("no IR version or opset: not an ONNX model")
    graph = model.graph
    if not graph.node or not graph.input or not graph.output:
        raise _refuse("the graph has no nodes, inputs or outputs")
    if model.functions:
        raise _refuse("model-local functions are not accepted")
    if model.training_info:
        raise _refuse("training information is not accepted; export an inference model")
    graphs = list(_graphs(graph))
    if any(
        t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) > 0
        for t in _tensors(model)
    ):
        raise _refuse("it references external tensor data; save it as one self-contained file")
    custom = sorted(
        {
            f"{n.domain}:{n.op_type}"
            for g in graphs
            for n in g.node
            if n.domain not in ALLOWED_DOMAINS
        }
    )
    if custom:
        raise _refuse(f"operators outside the standard ONNX domains: {', '.join(custom[:10])}")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # the checker raises several unrelated exception classes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(f"the ONNX checker refused it ({first})") from exc
    return model


def _session(data: bytes, providers: Sequence[str], threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: converters' static shapes warn on every run
    # Never let ORT read its own flatbuffer format: the bytes must be the ONNX we checked.
    options.add_session_config_entry("session.load_model_format", "ONNX")
    try:
        return ort.InferenceSession(data, sess_options=options, providers=list(providers))
    except Exception as exc:  # ORT's pybind exceptions share no base class but Exception
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(f"ONNX Runtime cannot load it ({first})") from exc


def graph_args(args: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"name": a.name, "type": a.type, "shape": list(a.shape)} for a in args]


def load_artifact(data: bytes, providers: Sequence[str], threads: int) -> tuple[ArtifactInfo, Any]:
    if not data:
        raise _refuse("it is empty")
    if len(data) > MAX_ARTIFACT_BYTES:
        raise _refuse(f"it is larger than {MAX_ARTIFACT_BYTES} bytes")
    if (what := _known_format(data)) is not None:
        raise _refuse(f"it is {what}")
    model = _parse(data)
    session = _session(data, providers, threads)
    opset: dict[str, int] = {}
    for entry in model.opset_import:
        domain = entry.domain or "ai.onnx"
        opset[domain] = max(opset.get(domain, 0), entry.version)
    operators = sorted(
        {f"{n.domain or 'ai.onnx'}:{n.op_type}" for g in _graphs(model.graph) for n in g.node}
    )
    info = ArtifactInfo(
        digest=hashlib.sha256(data).hexdigest(),
        size=len(data),
        opset=opset,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inputs=graph_args(session.get_inputs()),
        outputs=graph_args(session.get_outputs()),
        operators=operators,
        ir_version=model.ir_version,
    )
    return info, session
