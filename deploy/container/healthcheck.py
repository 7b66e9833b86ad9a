"""The image's HEALTHCHECK: exit 0 when the server on this container's loopback answers
/healthz with 200, else 1 (standard library only; the image has no curl).

HEALTHCHECK_PORT: the port the server listens on (default 8000, the image's CMD). When
MEDOPS_TLS_CERT_FILE is set the server speaks TLS; the probe then uses https on the loopback
without checking the certificate's name (it is the server's own, issued for its public name).
"""

import os
import ssl
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("HEALTHCHECK_PORT", "8000")
    if os.environ.get("MEDOPS_TLS_CERT_FILE"):
        url = f"https://127.0.0.1:{port}/healthz"
        context: ssl.SSLContext | None = ssl._create_unverified_context()  # noqa: S323
    else:
        url = f"http://127.0.0.1:{port}/healthz"
        context = None
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as answer:  # noqa: S310
            return 0 if answer.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
