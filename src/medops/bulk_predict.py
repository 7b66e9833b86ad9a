"""Scoring a file of records in batches (``medops predict NAME --input big.csv --output
results.csv``), through the SDK, with memory bounded whatever the file's length.

The input is read as a stream (one CSV row at a time; a JSON list is already in memory) and
sent in batches that fit the server's per-request limits, which the server states
(``GET /api/v1/deployments/{name}/predict-limits``: records per request, bytes per body),
one request at a time. Each input row gets one result row, in input order, written as soon as
its batch is answered: the prediction id (in full), label, score, version and arm; or its
status and why. Only the current batch and the first MAX_LISTED failures are held.

Failures stay with the rows that caused them:

* a row the file itself gets wrong (more or fewer cells than the header, not UTF-8, not
  readable CSV) is not sent: failed;
* a batch the server refuses with 422 names its bad records (``records[i]...``); those rows
  fail with the server's reasons and the rest of the batch is sent again (the server scores
  nothing of a refused request, so nothing is scored twice);
* a batch shed for load (503 ``overloaded``) is sent again after its ``Retry-After``, up to
  SHED_RETRIES times;
* anything else (credentials, permission, an unknown deployment, an unreachable server, the
  audit log down, a refusal that names no record) stops the run: the rows of that batch and
  all later ones are written as ``not-sent`` (when the audit log failed, the batch may have
  been logged without an answer: its rows say so).

The input's rows come from medops/bulk_input.py: numbered from 1, the header not counted,
with the line of the file each starts on.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal, Protocol

from medops.bulk_input import InputRow
from medops.errors import (
    AuditUnavailableError,
    FieldError,
    InvalidInputError,
    MedopsError,
    RequestTooLargeError,
    ShedError,
    clip,
)
from medops.files import open_output

if TYPE_CHECKING:
    from medops.serving.schemas import PredictLimits

    class Predicts(Protocol):
        """What this module needs of the SDK client."""

        def predict(
            self, name: str, *, records: list[dict[str, Any]]
        ) -> dict[str, Any]: ...  # pragma: no cover


MAX_LISTED: Final = 100  # failures kept for the summary (all are in the results file)
SHED_RETRIES: Final = 5
BODY_MARGIN: Final = 1024  # bytes kept free under the server's body limit
OUTPUT_FORMATS: Final = (".csv", ".jsonl")
RESULT_COLUMNS: Final = (
    "row",
    "line",
    "status",
    "prediction_id",
    "patient_ref",
    "label",
    "score",
    "version",
    "arm",
    "error",
)
Status = Literal["ok", "failed", "not-sent"]
_RECORD = re.compile(r"^records\[(\d+)\]")


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(message, errors=[FieldError("output", message)])


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    """What became of one input row."""

    source: InputRow
    status: Status
    prediction: Mapping[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        p = self.prediction or {}
        ref = p.get("patient_ref")
        if ref is None and self.source.record is not None:
            ref = self.source.record.get("patient_ref")
        return {
            "row": self.source.row,
            "line": self.source.line,
            "status": self.status,
            "prediction_id": p.get("id"),
            "patient_ref": ref,
            "label": p.get("label"),
            "score": p.get("score"),
            "version": p.get("version"),
            "arm": p.get("arm"),
            "error": self.error,
        }


class ResultWriter(Protocol):
    """Where results go, one row per input row, in input order."""

    def write(self, results: Iterable[RowResult]) -> None: ...
    def close(self) -> None: ...


class _FileResults:
    def __init__(self, handle: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(handle, encoding="utf-8", newline="")

    def close(self) -> None:
        self._text.close()


class CsvResults(_FileResults):
    """Results as CSV with the columns RESULT_COLUMNS."""

    def __init__(self, handle: IO[bytes]) -> None:
        super().__init__(handle)
        self._writer = csv.writer(self._text)
        self._writer.writerow(RESULT_COLUMNS)

    def write(self, results: Iterable[RowResult]) -> None:
        for result in results:
            values = result.as_dict()
            self._writer.writerow(["" if values[c] is None else values[c] for c in RESULT_COLUMNS])
        self._text.flush()


class JsonlResults(_FileResults):
    """Results as JSON lines: the RESULT_COLUMNS fields, plus the probability per class."""

    def write(self, results: Iterable[RowResult]) -> None:
        for result in results:
            values = result.as_dict()
            values["probabilities"] = (result.prediction or {}).get("probabilities")
            self._text.write(json.dumps(values) + "\n")
        self._text.flush()


def results_format(path: Path, where: str = "--output") -> str:
    """The format the results file's suffix names: ``.csv`` or ``.jsonl``."""
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise _bad(f"{where} {clip(path, 200)}: name a .csv or .jsonl file (the results' format)")
    return suffix


def open_results(path: Path, where: str = "--output") -> ResultWriter:
    """A writer for ``path`` in the format its suffix names (.csv or .jsonl), created 0600
    when new; an existing file is overwritten in place."""
    suffix = results_format(path, where)
    try:
        handle = open_output(path)
    except OSError as exc:
        raise _bad(f"cannot write {where} {clip(path, 200)}: {exc.strerror}") from None
    return CsvResults(handle) if suffix == ".csv" else JsonlResults(handle)


# -- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowFailure:
    """A row that was not scored, and why."""

    row: int
    line: int | None
    reason: str


@dataclass
class BulkSummary:
    """What a run did: counts, the versions that answered, the first failures."""

    deployment: str
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    not_sent: int = 0
    requests: int = 0
    served: Counter[str] = field(default_factory=Counter)
    failures: list[RowFailure] = field(default_factory=list)
    stopped: str | None = None
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.not_sent == 0

    def add(self, result: RowResult) -> None:
        self.rows += 1
        if result.status == "ok":
            self.succeeded += 1
            p = result.prediction or {}
            self.served[f"v{p.get('version')} {p.get('arm')}"] += 1
            return
        if result.status == "failed":
            self.failed += 1
        else:
            self.not_sent += 1
        if len(self.failures) < MAX_LISTED:
            source = result.source
            self.failures.append(RowFailure(source.row, source.line, result.error or "?"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "rows": self.rows,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "not_sent": self.not_sent,
            "requests": self.requests,
            "served": dict(self.served),
            "failures": [{"row": f.row, "line": f.line, "reason": f.reason} for f in self.failures],
            "failures_listed": len(self.failures),
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
        }


def _size(record: Mapping[str, Any]) -> int:
    """The bytes a record adds to a request body (as the SDK encodes it, with its comma)."""
    return len(json.dumps(record).encode()) + 2


def batches(rows: Iterable[InputRow], max_records: int, max_bytes: int) -> Iterator[list[InputRow]]:
    """Group rows, in input order, into batches of at most ``max_records`` rows whose
    records fit in ``max_bytes`` of body. A record too large for any request becomes a row
    that cannot be sent; rows that cannot be sent travel in their batch (and are not sent)."""
    budget = max(max_bytes - BODY_MARGIN, 1)
    batch: list[InputRow] = []
    used = 0
    for given in rows:
        row, size = given, 0
        if given.record is not None:
            size = _size(given.record)
            if size > budget:
                problem = f"larger than the {max_bytes} bytes one request may hold"
                row, size = InputRow(given.row, given.line, None, problem), 0
        if batch and (len(batch) >= max_records or used + size > budget):
            yield batch
            batch, used = [], 0
        batch.append(row)
        used += size
    if batch:
        yield batch


def _record_errors(exc: InvalidInputError, count: int) -> dict[int, list[str]]:
    """The reasons per record of a refused batch; empty when an error names no record."""
    found: dict[int, list[str]] = {}
    for error in exc.errors:
        match = _RECORD.match(error.field)
        if match is None or int(match.group(1)) >= count:
            return {}
        found.setdefault(int(match.group(1)), []).append(
            f"{error.field.partition('.')[2] or error.field}: {error.reason}"
        )
    return found


@dataclass
class _Batch:
    """One batch on its way: what was answered, refused, or left unsent."""

    rows: list[InputRow]
    answered: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    unsent: dict[int, str] = field(default_factory=dict)

    def results(self) -> list[RowResult]:
        out = []
        for i, row in enumerate(self.rows):
            if i in self.answered:
                out.append(RowResult(row, "ok", prediction=self.answered[i]))
            elif i in self.unsent:
                out.append(RowResult(row, "not-sent", error=self.unsent[i]))
            else:
                out.append(RowResult(row, "failed", error=self.refused.get(i, row.problem)))
        return out


class BulkPredictor:
    """Sends rows to one deployment in batches and writes every row's result."""

    def __init__(
        self,
        client: Predicts,
        limits: PredictLimits,
        results: ResultWriter,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_batch: Callable[[BulkSummary], None] | None = None,
    ) -> None:
        self._client = client
        self._limits = limits
        self._results = results
        self._sleep = sleep
        self._on_batch = on_batch
        self.summary = BulkSummary(deployment=limits.deployment)

    def run(self, rows: Iterable[InputRow]) -> BulkSummary:
        """Score every row; returns the summary (also when the run stopped part-way)."""
        started = time.perf_counter()
        limits = self._limits
        for rows_of_batch in batches(rows, limits.max_records, limits.max_request_bytes):
            batch = _Batch(rows_of_batch)
            if self.summary.stopped is None:
                self._send(batch)
            else:
                reason = f"not sent: the run stopped earlier ({self.summary.stopped})"
                batch.unsent = {i: reason for i, r in enumerate(batch.rows) if r.record is not None}
            self._emit(batch.results())
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    def _emit(self, results: list[RowResult]) -> None:
        self._results.write(results)
        for result in results:
            self.summary.add(result)
        if self._on_batch is not None:
            self._on_batch(self.summary)

    def _stop(self, batch: _Batch, parts: Iterable[list[int]], reason: str, why: str) -> None:
        self.summary.stopped = reason
        for part in parts:
            batch.unsent.update(dict.fromkeys(part, why))

    def _send(self, batch: _Batch) -> None:
        """Send a batch's records (again without those the server refused, in halves when
        the body was too large) until each is answered or refused, or the run must stop."""
        queue = deque([[i for i, r in enumerate(batch.rows) if r.record is not None]])
        sheds = 0
        while queue:
            part = queue.popleft()
            if not part:
                continue
            records = [batch.rows[i].record or {} for i in part]
            self.summary.requests += 1
            try:
                answer = self._client.predict(self._limits.deployment, records=records)
            except ShedError as exc:
                sheds += 1
                if sheds > SHED_RETRIES:
                    reason = f"the server stayed overloaded after {SHED_RETRIES} retries"
                    self._stop(batch, [part, *queue], reason, f"not sent: {reason}")
                    return
                self._sleep(min(max(exc.retry_after, 0.1), 30.0))
                queue.appendleft(part)
                continue
            except MedopsError as exc:
                if self._refused(batch, part, queue, exc):
                    continue
                return
            predictions = answer.get("predictions", [])
            if len(predictions) != len(part):
                reason = f"the server answered {len(predictions)} of {len(part)} records"
                self._stop(batch, [part, *queue], reason, f"not answered: {reason}")
                return
            batch.answered.update(zip(part, predictions, strict=True))

    def _refused(
        self, batch: _Batch, part: list[int], queue: deque[list[int]], exc: MedopsError
    ) -> bool:
        """Take in the server's refusal of ``part``: True when the batch goes on (the queue
        holds what to send next), False when the run stops."""
        if isinstance(exc, RequestTooLargeError):
            if len(part) == 1:
                batch.refused[part[0]] = f"too large for one request: {exc.message}"
            else:
                queue.extendleft([part[len(part) // 2 :], part[: len(part) // 2]])
            return True
        if isinstance(exc, InvalidInputError):
            bad = _record_errors(exc, len(part))
            if bad:
                for n, reasons in bad.items():
                    batch.refused[part[n]] = "; ".join(reasons)
                queue.appendleft([i for n, i in enumerate(part) if n not in bad])
                return True
        if isinstance(exc, AuditUnavailableError):
            why = "not answered: the server's audit log failed; the row may be logged unanswered"
            self._stop(batch, [part], exc.message, why)
            self._stop(batch, queue, exc.message, f"not sent: {exc.message}")
            return False
        self._stop(batch, [part, *queue], exc.message, f"not sent: {exc.message}")
        return False
