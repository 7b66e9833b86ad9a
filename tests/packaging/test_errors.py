"""Packaging errors are one complete line: converters' dictionaries, arrays and advice are
summarised, never cut in the middle of a word or a bracket, and the root cause is named."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from skl2onnx import convert_sklearn  # type: ignore[import-untyped]
from skl2onnx.common.data_types import FloatTensorType  # type: ignore[import-untyped]
from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]
from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
from sklearn.semi_supervised import LabelPropagation  # type: ignore[import-untyped]

from medops.errors import PackagingError
from medops.packaging import package_model
from medops.packaging.onnx_graph import one_line


@functools.cache
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x, y


def balanced(text: str) -> bool:
    """Every bracket opened in ``text`` is closed, in order."""
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def test_a_converter_error_holding_a_dictionary_is_summarised_with_its_cause() -> None:
    """skl2onnx's own HistGradientBoosting failure (a page of attributes raised from
    protobuf's TypeError) becomes one line: the attributes as {...}, the cause named."""
    x, y = cancer()
    model = HistGradientBoostingClassifier(max_iter=3).fit(x.to_numpy(), y)
    with pytest.raises(ValueError, match="Unable to create node") as caught:
        convert_sklearn(
            model,
            initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
            options={"zipmap": False},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
    assert "\n" in str(caught.value)  # skl2onnx prints the dictionary over many lines
    line = one_line(caught.value)
    assert "\n" not in line
    assert balanced(line)
    assert "attributes={...}" in line
    assert "(because TypeError: Field onnx.AttributeProto.ints: Expected an int" in line
    assert len(line) <= 300


def test_long_converter_advice_ends_at_a_sentence_not_mid_word() -> None:
    """A model skl2onnx has no converter for gives PackagingError whose message is one line
    that ends with a whole sentence of skl2onnx's own message."""
    x, y = cancer()
    model = LabelPropagation().fit(x, y)
    with pytest.raises(PackagingError) as caught:
        package_model(model, sample=x)
    message = str(caught.value)
    prefix = "skl2onnx cannot convert LabelPropagation: "
    assert message.startswith(prefix)
    assert "\n" not in message
    assert balanced(message)
    assert message.endswith(".")
    with pytest.raises(Exception) as native:  # noqa: PT011 - skl2onnx raises a plain RuntimeError
        convert_sklearn(model, initial_types=[("input", FloatTensorType([None, x.shape[1]]))])
    full = " ".join(str(native.value).split())
    summary = message.removeprefix(prefix)
    assert full.startswith(summary)
    assert len(summary) < len(full)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("short and clear", "short and clear"),
        ("two\nlines", "two lines"),
        ("values [" + ", ".join(["0.5"] * 40) + "] refused", "values [...] refused"),
        ("kept (a short detail) here", "kept (a short detail) here"),
        ("unclosed {'a': " + "1, " * 40, "unclosed {...}"),
        (("word " * 80).strip(), ("word " * 59).strip() + "..."),
    ],
)
def test_one_line_never_cuts_inside_a_word_or_a_bracket(text: str, expected: str) -> None:
    """Newlines are joined, long bracketed details shown as [...], an unclosed detail is
    closed, and a long line ends after a whole word."""
    assert one_line(RuntimeError(text)) == expected


def test_one_line_of_an_empty_message_is_the_exception_type() -> None:
    """An exception without a message is named by its type."""
    assert one_line(KeyError()) == "KeyError"
    assert one_line(np.linalg.LinAlgError()) == "LinAlgError"
