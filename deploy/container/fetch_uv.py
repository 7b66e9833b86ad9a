"""Install the uv binary pinned by uv-requirements.txt (version and sha256 hashes) into a
folder, from the package index's wheel, with the standard library only: the image's builder
stage needs neither pip nor python3-venv (two apt and pip steps fewer).

    python3 fetch_uv.py uv-requirements.txt /opt/uv/bin

UV_WHEEL_INDEX: a PEP 691 simple index (default https://pypi.org/simple); SSL_CERT_FILE: a CA
bundle to trust (a TLS-inspecting proxy's). Exits non-zero when no wheel for this machine
matches a pinned hash.
"""

import hashlib
import io
import json
import os
import platform
import re
import ssl
import sys
import urllib.request
import zipfile


def main() -> int:
    requirements, dest = sys.argv[1], sys.argv[2]
    with open(requirements, encoding="utf-8") as fh:
        text = fh.read()
    pinned = re.search(r"^uv==(\S+)", text, re.MULTILINE)
    hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", text))
    if pinned is None or not hashes:
        print(f"{requirements} pins no uv version with hashes", file=sys.stderr)
        return 1
    version = pinned.group(1)
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
    index = os.environ.get("UV_WHEEL_INDEX", "https://pypi.org/simple").rstrip("/")
    request = urllib.request.Request(
        f"{index}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60, context=context) as answer:  # noqa: S310
        files = json.load(answer)["files"]
    machine = platform.machine()
    wheel = next(
        (
            f
            for f in files
            if f["filename"].startswith(f"uv-{version}-")
            and f"_{machine}" in f["filename"]
            and "manylinux" in f["filename"]
            and f["hashes"].get("sha256") in hashes
        ),
        None,
    )
    if wheel is None:
        print(f"no uv {version} wheel for {machine} with a pinned hash", file=sys.stderr)
        return 1
    with urllib.request.urlopen(wheel["url"], timeout=120, context=context) as answer:  # noqa: S310
        data = answer.read()
    if hashlib.sha256(data).hexdigest() not in hashes:
        print(f"{wheel['filename']}: sha256 matches no pinned hash", file=sys.stderr)
        return 1
    os.makedirs(dest, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in ("uv", "uvx"):
            target = os.path.join(dest, name)
            with open(target, "wb") as out:
                out.write(archive.read(f"uv-{version}.data/scripts/{name}"))
            os.chmod(target, 0o755)
    print(f"uv {version} from {wheel['filename']} (sha256 checked) in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
