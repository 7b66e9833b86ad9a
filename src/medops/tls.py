"""TLS for ``medops server``: the certificate and key named by the settings, checked before
uvicorn starts so a wrong path or a key that does not match its certificate is one clear
error instead of a traceback from deep inside the event loop."""

from __future__ import annotations

import ssl
from typing import Any

from medops.config import Settings
from medops.errors import ConfigurationError


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS keyword arguments for ``settings`` (none when TLS is not configured).

    Raises ConfigurationError when only one of the two files is set, when one cannot be read,
    or when the key does not belong to the certificate."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        missing = "MEDOPS_TLS_CERT_FILE" if cert is None else "MEDOPS_TLS_KEY_FILE"
        raise ConfigurationError(
            f"{missing} is not set: TLS needs both MEDOPS_TLS_CERT_FILE and MEDOPS_TLS_KEY_FILE"
        )
    for name, path in (("MEDOPS_TLS_CERT_FILE", cert), ("MEDOPS_TLS_KEY_FILE", key)):
        if not path.is_file():
            raise ConfigurationError(f"{name} {path} is not a file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"MEDOPS_TLS_CERT_FILE {cert} and MEDOPS_TLS_KEY_FILE {key} are not a PEM "
            f"certificate and its private key ({exc.__class__.__name__}: {exc})"
        ) from exc
    # uvicorn builds its own PROTOCOL_TLS_SERVER context from these, whose floor is TLS 1.2.
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
