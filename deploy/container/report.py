"""The built image's size and CycloneDX SBOM (run by build.sh with .venv's python, as root).

    .venv/bin/python deploy/container/report.py IMAGE --out image-report \
        [--build-seconds N] [--stage-seconds NAME=N ...]

Writes OUT/size.txt (``key: value`` lines: the image's size as buildah stores it, its
filesystem split into the Python environment and the rest, and the build time, with the date
and machine) and OUT/sbom.cdx.json: CycloneDX 1.6 JSON with the Python packages of the
image's /opt/medops (found by ``cyclonedx-py environment`` through the image's own sys.path)
and every Debian package of its dpkg status, validated against the CycloneDX schema with
cyclonedx-python-lib's strict JSON validator. Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

VENV = "/opt/medops"


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def mounted(image: str) -> Iterator[Path]:
    """The image's filesystem, mounted read-write by buildah on a throwaway container."""
    ctr = run("buildah", "from", "--pull=never", "--quiet", image)
    try:
        yield Path(run("buildah", "mount", ctr))
    finally:
        subprocess.run(["buildah", "umount", ctr], check=False, capture_output=True)
        subprocess.run(["buildah", "rm", ctr], check=False, capture_output=True)


def tree_bytes(root: Path) -> int:
    """Apparent size of the regular files under ``root`` (hard links once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            st = (Path(folder) / name).lstat()
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_size
    return total


def mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


# -- size ------------------------------------------------------------------------------


def buildah_size(image: str) -> str:
    """The image's size as ``buildah images`` states it (its layers, uncompressed)."""
    images = json.loads(run("buildah", "images", "--json", image))
    return str(images[0]["size"])


def size_report(
    image: str, root: Path, build_seconds: int | None, stages: dict[str, str]
) -> list[str]:
    stated = buildah_size(image)
    venv = tree_bytes(root / VENV.lstrip("/"))
    files = tree_bytes(root)
    total = files
    site = next((root / VENV.lstrip("/") / "lib").glob("python3*/site-packages"))
    packages = sorted(
        ((tree_bytes(p), p.name) for p in site.iterdir() if p.is_dir() and "." not in p.name),
        reverse=True,
    )[:8]
    lines = [
        f"image: {image}",
        f"size_bytes: {total} (the files of its filesystem)",
        f"size: {stated} (buildah images: the layers, uncompressed)",
        f"python_environment: {mb(venv)} ({VENV})",
        f"debian_and_rest: {mb(files - venv)}",
        "largest_python_packages: " + ", ".join(f"{name} {mb(n)}" for n, name in packages),
    ]
    if build_seconds is not None:
        detail = ", ".join(f"{k} {v} s" for k, v in stages.items())
        lines.append(f"build_seconds: {build_seconds}" + (f" ({detail})" if detail else ""))
    lines.append(
        f"measured: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} on "
        f"{os.cpu_count()} cores, {platform.machine()}, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB"
    )
    return lines


# -- SBOM ------------------------------------------------------------------------------


@dataclass
class DebPackage:
    name: str
    version: str
    arch: str
    description: str
    source: str | None
    depends: list[list[str]]
    provides: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"deb:{self.name}:{self.arch}"


def _names(field_value: str) -> list[list[str]]:
    """Depends-like field -> alternatives of package names (versions and :any dropped)."""
    groups = []
    for group in field_value.split(","):
        names = [alt.split("(")[0].strip().split(":")[0] for alt in group.split("|")]
        if names := [n for n in names if n]:
            groups.append(names)
    return groups


def dpkg_packages(root: Path) -> list[DebPackage]:
    text = (root / "var/lib/dpkg/status").read_text(encoding="utf-8")
    packages = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages.append(
                DebPackage(
                    name=fields["Package"],
                    version=fields["Version"],
                    arch=fields.get("Architecture", "all"),
                    description=fields.get("Description", "").split("\n")[0],
                    source=fields.get("Source", "").split(" ")[0] or None,
                    depends=_names(
                        ", ".join(
                            v for v in (fields.get("Pre-Depends"), fields.get("Depends")) if v
                        )
                    ),
                    provides=[g[0] for g in _names(fields.get("Provides", ""))],
                )
            )
    return packages


def python_bom(root: Path, work: Path) -> dict[str, object]:
    """``cyclonedx-py environment`` on the image's venv: an interpreter stand-in answers with
    the image's own sys.path (asked of the image's python in a chroot), seen from here."""
    image_path = json.loads(
        run(
            "chroot", str(root), f"{VENV}/bin/python", "-c",
            "import json,sys;json.dump(sys.path,sys.stdout)",
        )
    )  # fmt: skip
    seen = [str(root) + p for p in image_path if p.startswith("/")]
    stand_in = work / "python"
    stand_in.write_text(f"#!/bin/sh\necho '{json.dumps(seen)}'\n")
    stand_in.chmod(0o755)
    out = work / "python.cdx.json"
    cyclonedx = Path(sys.executable).with_name("cyclonedx-py")
    subprocess.run(
        [str(cyclonedx), "environment", str(stand_in), "--sv", "1.6", "--of", "JSON",
         "--output-reproducible", "-o", str(out)],
        check=True,
    )  # fmt: skip
    bom: dict[str, object] = json.loads(out.read_text())
    return bom


def image_labels(image: str) -> dict[str, str]:
    info = json.loads(run("buildah", "inspect", "--type", "image", image))
    labels: dict[str, str] = info["OCIv1"]["config"].get("Labels") or {}
    return labels


def sbom(image: str, root: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        bom = python_bom(root, Path(tmp))
    labels = image_labels(image)
    version = labels.get("org.opencontainers.image.version", "0")
    debian_version = (root / "etc/debian_version").read_text().strip()
    debs = dpkg_packages(root)
    provided = {p: d.name for d in debs for p in d.provides}
    by_name = {d.name: d for d in debs}

    components = bom.setdefault("components", [])
    dependencies = bom.setdefault("dependencies", [])
    assert isinstance(components, list) and isinstance(dependencies, list)
    python_refs = [c["bom-ref"] for c in components]
    depended = {r for d in dependencies for r in d.get("dependsOn", [])}

    os_ref = "os:debian"
    components.append(
        {
            "type": "operating-system",
            "bom-ref": os_ref,
            "name": "debian",
            "version": debian_version,
            "description": "Debian GNU/Linux 12 (bookworm)",
        }
    )
    for deb in debs:
        purl = PackageURL(
            type="deb",
            namespace="debian",
            name=deb.name,
            version=deb.version,
            qualifiers={"arch": deb.arch, "distro": f"debian-{debian_version}"},
        )
        component: dict[str, object] = {
            "type": "library",
            "bom-ref": deb.ref,
            "name": deb.name,
            "version": deb.version,
            "purl": purl.to_string(),
            "description": deb.description,
        }
        if deb.source:
            component["properties"] = [{"name": "debian:source", "value": deb.source}]
        components.append(component)
        needs = []
        for group in deb.depends:
            name = next((n for n in group if n in by_name), None) or next(
                (provided[n] for n in group if n in provided), None
            )
            if name and name != deb.name:
                needs.append(by_name[name].ref)
        dependencies.append({"ref": deb.ref, "dependsOn": sorted(set(needs))})
    dependencies.append({"ref": os_ref, "dependsOn": sorted(d.ref for d in debs)})
    image_ref = "image:medops"
    top_python = sorted(r for r in python_refs if r not in depended)
    dependencies.append({"ref": image_ref, "dependsOn": [os_ref, *top_python]})

    metadata = bom.setdefault("metadata", {})
    assert isinstance(metadata, dict)
    metadata["component"] = {
        "type": "container",
        "bom-ref": image_ref,
        "name": "medops",
        "version": version,
        "description": f"{image}: the medops server image",
        "properties": [
            {"name": f"oci:label:{k}", "value": v} for k, v in sorted(labels.items())
        ],
    }
    metadata["timestamp"] = labels.get("org.opencontainers.image.created") or dt.datetime.now(
        dt.UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    bom["serialNumber"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, image + version)}"
    return bom


def validate(text: str) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        msg = f"the SBOM is not valid CycloneDX 1.6: {error}"
        raise SystemExit(msg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image")
    parser.add_argument("--out", type=Path, default=Path("image-report"))
    parser.add_argument("--build-seconds", type=int)
    parser.add_argument("--stage-seconds", action="append", default=[])
    args = parser.parse_args()
    if shutil.which("buildah") is None:
        print("FAIL: buildah is not installed", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    stages = dict(s.split("=", 1) for s in args.stage_seconds)
    with mounted(args.image) as root:
        lines = size_report(args.image, root, args.build_seconds, stages)
        (args.out / "size.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            print(f"   {line}")
        bom = sbom(args.image, root)
    text = json.dumps(bom, indent=2, sort_keys=False)
    validate(text)
    (args.out / "sbom.cdx.json").write_text(text + "\n")
    components = bom["components"]
    assert isinstance(components, list)
    kinds = {
        "python": sum(1 for c in components if str(c.get("purl", "")).startswith("pkg:pypi/")),
        "debian": sum(1 for c in components if str(c.get("purl", "")).startswith("pkg:deb/")),
    }
    print(
        f"PASS sbom: {args.out / 'sbom.cdx.json'} valid CycloneDX 1.6 JSON, "
        f"{kinds['python']} Python and {kinds['debian']} Debian packages"
    )
    print(f"PASS size: {lines[2].split(': ', 1)[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
