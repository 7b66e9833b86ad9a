"""YAML for the files medops exports (Prometheus rule files, promtool unit tests,
Alertmanager configs), written by PyYAML's safe dumper.

Mappings keep their insertion order, block style throughout, no line folding, and a string
that spans lines (PromQL reads better that way) as a literal block (``|``). The same input
always gives the same bytes, so the generated files under ``deploy/prometheus`` can be compared
with what the exporter writes now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

Value = str | int | float | bool | None | Sequence["Value"] | Mapping[str, "Value"]


class _Dumper(yaml.SafeDumper):
    """The safe dumper, with sequences indented under their key and multi-line strings as
    literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        del indentless
        super().increase_indent(flow, False)


def _string(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None
    )


_Dumper.add_representer(str, _string)


def _plain(value: Value) -> Any:
    """Mappings as dicts and sequences as lists (tuples and mapping proxies included)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def dump(value: Mapping[str, Value], header: str = "") -> str:
    """``value`` as a YAML document, after ``header`` (comment lines, each ``# ``-prefixed)."""
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    text: str = yaml.dump(
        _plain(value),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=False,  # escaped: PyYAML writes U+0085 raw, which reads back as a break
        width=1_000_000,
    )
    return comments + text
