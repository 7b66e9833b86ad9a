"""docs/architecture.md stays the true map: its package and module tables match the tree under
src/medops, and every diagram in docs/diagrams parses, is shown by a page, and exists where a
page shows it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "medops"
DOCS = ROOT / "docs"
DIAGRAMS = DOCS / "diagrams"
ARCHITECTURE = DOCS / "architecture.md"
SVG = "{http://www.w3.org/2000/svg}"

# Every page that may show a diagram: the docs and the README.
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.svg)\)")


def _table(marker: str) -> list[str]:
    """The first-column names (in backticks) of the table between the marker comments."""
    text = ARCHITECTURE.read_text()
    block = re.search(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", text, re.S)
    assert block is not None, f"docs/architecture.md has no <!-- {marker}:start/end --> block"
    return re.findall(r"^\| `([^`]+)` \|", block.group(1), re.M)


def _packages() -> set[str]:
    """Every package under src/medops, as `sub/` or `sub/inner/` (the root itself excluded)."""
    return {
        init.parent.relative_to(PACKAGE).as_posix() + "/"
        for init in PACKAGE.rglob("__init__.py")
        if init.parent != PACKAGE and "__pycache__" not in init.parts
    }


def _top_level_packages() -> set[str]:
    return {name for name in _packages() if name.count("/") == 1}


def test_the_package_table_lists_every_package_and_only_packages_that_exist() -> None:
    """Each folder with an __init__.py under src/medops has a row in the package table, and
    each row names such a folder (the failure lists the names to add and to remove)."""
    documented = _table("packages")
    assert len(documented) == len(set(documented)), "a package is listed twice"
    real = _packages()
    assert {"api/", "audit/", "registry/", "serving/", "monitoring/"} <= real
    missing = sorted(real - set(documented))
    phantom = sorted(set(documented) - real)
    assert (missing, phantom) == ([], []), (
        f"packages without a row: {missing}; rows without a package: {phantom}"
    )


def test_the_module_table_lists_every_top_level_module_and_only_those() -> None:
    """Each .py file directly in src/medops has a row in the module table, and each row names
    one that exists."""
    documented = _table("modules")
    real = {path.name for path in PACKAGE.glob("*.py")}
    assert "__init__.py" in real
    missing = sorted(real - set(documented))
    phantom = sorted(set(documented) - real)
    assert (missing, phantom) == ([], []), (
        f"modules without a row: {missing}; rows without a module: {phantom}"
    )


def _parse(svg: Path) -> ET.Element:
    # The repository's own committed files, not input from outside: the stdlib parser will do.
    return ET.parse(svg).getroot()  # noqa: S314


def _svgs() -> list[Path]:
    return sorted(DIAGRAMS.glob("*.svg"))


def test_there_are_diagrams_and_each_has_its_source() -> None:
    """The five diagrams of the map exist, each next to the Graphviz source `make diagrams`
    renders it from."""
    names = {path.stem for path in _svgs()}
    assert {
        "layers",
        "lifecycle",
        "prediction-path",
        "audit-chain",
        "monitoring-windows",
    } <= names
    for svg in _svgs():
        assert svg.with_suffix(".dot").is_file(), f"{svg.name} has no .dot source"


@pytest.mark.parametrize("svg", _svgs(), ids=lambda p: p.name)
def test_every_diagram_is_well_formed_svg_with_text(svg: Path) -> None:
    """The file parses as XML, its root is an <svg> with a viewBox (so it scales in a page),
    and it draws real text labels (not paths standing in for letters)."""
    root = _parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox")
    texts = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.strip()]
    assert len(texts) >= 5
    sizes = {float(t.get("font-size", "0")) for t in root.iter(f"{SVG}text")}
    assert min(sizes) >= 10, "a label is too small to read"


def _references() -> dict[Path, list[Path]]:
    """Each page that shows a diagram, with the files its image links point at."""
    found = {}
    for page in PAGES:
        targets = [(page.parent / link).resolve() for link in IMAGE.findall(page.read_text())]
        if targets:
            found[page] = targets
    return found


def test_every_diagram_is_shown_by_a_page() -> None:
    """No SVG in docs/diagrams is left unreferenced."""
    shown = {target for targets in _references().values() for target in targets}
    unshown = [svg.name for svg in _svgs() if svg.resolve() not in shown]
    assert unshown == []


def test_every_diagram_a_page_shows_exists() -> None:
    """Every ![...](x.svg) in the docs and the README points at a file that exists."""
    references = _references()
    assert ARCHITECTURE in references
    broken = [
        f"{page.name}: {target}"
        for page, targets in references.items()
        for target in targets
        if not target.is_file()
    ]
    assert broken == []


def test_the_layer_diagram_names_every_top_level_package() -> None:
    """docs/diagrams/layers.svg has a label naming each top-level package (`core/`, `db/`,
    ...), so a new package cannot be left off the picture of the layers."""
    root = _parse(DIAGRAMS / "layers.svg")
    words = {word for text in root.iter(f"{SVG}text") for word in (text.text or "").split()}
    missing = sorted(
        name for name in _top_level_packages() if name not in words and name[:-1] not in words
    )
    assert missing == []
