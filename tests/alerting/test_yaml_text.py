"""The YAML behind the exported files: whatever it writes reads back as the same value, and
the same value gives the same bytes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from medops.alerting.yaml_text import Value, dump

TRICKY = [
    "yes", "No", "on", "OFF", "null", "~", "true", "1.0", "0x1F", "1e3", "+1", ".inf", "5m",
    "a: b", "a #b", "- x", "[x]", "{x}", "'q'", '"q"', "it's", 'say "hi"', "", " lead",
    "trail ", "tab\there", "two\nlines", "ends\n", "\nstarts", "a\n\nb", "a \nb", "ünï",
    "{{ $labels.deployment }}", 'rate(x{status=~"5.."}[5m])\n> 0.01', "é\u2028x", "%x", "@x",
    "`x", "!x", "&x", "*x", "|x", ">x", "?x", ",x", "x,", "key:", "-",
]  # fmt: skip

scalars = st.one_of(
    st.text(max_size=30),
    st.sampled_from(TRICKY),
    st.integers(-(10**6), 10**6),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
keys = st.one_of(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), st.sampled_from(TRICKY))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


def _read(text: str) -> Any:
    return yaml.safe_load(text)


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_read_back_as_strings(text: str) -> None:
    """Strings YAML would take for booleans, numbers, nulls, comments or flow syntax, and
    multi-line text with blanks, read back as the exact string."""
    document: dict[str, Value] = {"value": text, "list": [text], "nested": {text: text}}
    assert _read(dump(document)) == document


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, values, max_size=5))
def test_any_document_reads_back_unchanged(document: dict[str, Value]) -> None:
    """Random nested mappings and sequences of strings, numbers, booleans and nulls."""
    assert _read(dump(document)) == document


def test_the_header_is_comments_and_output_is_stable() -> None:
    """The header becomes # lines; the same value gives the same text."""
    document: dict[str, Value] = {"groups": [{"name": "g", "rules": []}]}
    text = dump(document, "line one\nline two")
    assert text.startswith("# line one\n# line two\ngroups:\n  - name: g\n    rules: []\n")
    assert dump(document, "line one\nline two") == text


def test_a_multi_line_expression_is_a_literal_block() -> None:
    """PromQL over several lines is written as a ``|`` block, read back the same."""
    expr = 'sum(rate(x{status=~"5.."}[5m]))\n/ sum(rate(x[5m]))\n> 0.01'
    text = dump({"expr": expr})
    assert text.startswith("expr: |")
    assert _read(text) == {"expr": expr}
