"""A small, deterministic YAML writer for the files medops exports (Prometheus rule files,
promtool unit tests, Alertmanager configs).

Only what those files need: mappings (in insertion order), sequences, strings, numbers and
booleans, in block style. A string is written plain when it cannot be read back as anything
else, as a literal block (``|-``) when it spans lines (PromQL reads better that way),
single-quoted when it holds double quotes (a PromQL selector) and no single one, and otherwise
double-quoted with backslash escapes. The
same input always gives the same bytes, so the generated files under ``deploy/prometheus``
can be compared with what the exporter writes now.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

Value = str | int | float | bool | None | Sequence["Value"] | Mapping[str, "Value"]

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_DURATION = re.compile(r"^[0-9]+(ms|[smhdwy])$")  # not a number to YAML, so plain
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value: str | int | float | bool | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if (_PLAIN.fullmatch(value) and value.lower() not in _RESERVED) or _DURATION.fullmatch(value):
        return value
    if '"' in value and "'" not in value and value.isprintable():
        return f"'{value}'"  # PromQL's matchers read better without escapes
    return _quoted(value)


def _quoted(value: str) -> str:
    """A YAML double-quoted scalar: backslash escapes for the quote, the backslash and every
    character that is not printable (``\\U`` beyond the 16-bit plane, no surrogate pairs)."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _is_block_text(value: Value) -> bool:
    """Whether ``value`` reads back unchanged from a ``|-`` literal block: several lines, no
    leading blank, no trailing blanks or newline, nothing but printable characters."""
    if not isinstance(value, str) or "\n" not in value or value[:1].isspace():
        return False
    lines = value.split("\n")
    return all(line.isprintable() and line == line.rstrip() for line in lines) and bool(lines[-1])


def _emit(value: Value, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        lines: list[str] = []
        for key, item in value.items():
            head = f"{pad}{_scalar(key)}:"
            if _is_block_text(item):
                assert isinstance(item, str)
                lines.append(f"{head} |-")
                lines += [f"{pad}  {line}" if line else "" for line in item.split("\n")]
            elif isinstance(item, Mapping | list | tuple) and item:
                lines.append(head)
                lines += _emit(item, indent + 2)
            else:
                lines.append(f"{head} {_flat(item)}")
        return lines
    if isinstance(value, list | tuple):
        lines = []
        for item in value:
            if isinstance(item, Mapping | list | tuple) and item:
                inner = _emit(item, indent + 2)
                inner[0] = f"{pad}- {inner[0][indent + 2 :]}"
                lines += inner
            else:
                lines.append(f"{pad}- {_flat(item)}")
        return lines
    return [f"{pad}{_flat(value)}"]


def _flat(value: Value) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    assert not isinstance(value, Sequence) or isinstance(value, str)
    return _scalar(value)


def dump(value: Mapping[str, Value], header: str = "") -> str:
    """``value`` as a YAML document, after ``header`` (comment lines, each ``# ``-prefixed)."""
    comments = [f"# {line}".rstrip() for line in header.splitlines()]
    return "\n".join([*comments, *(_emit(value, 0) or ["{}"])]) + "\n"
