"""Mail over SMTP: STARTTLS (on by default; the server's certificate is verified against the
system's trust store, or ``SSL_CERT_FILE``), login when the receiver has a secret (the SMTP
password, with ``smtp_user``), and a multipart/alternative message with a plain text and an
HTML part. ``Message-ID`` is made from the outbox row's id, so a mail system that saw a
notification can recognise its repeat."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime

from medops.alerting.links import Links
from medops.alerting.receivers import render
from medops.alerting.receivers.base import HTTP_TIMEOUT_SECONDS, DeliveryError
from medops.alerting.schemas import NotificationPayload, ReceiverConfig


def message(config: ReceiverConfig, payload: NotificationPayload, links: Links) -> EmailMessage:
    """The mail for ``payload``."""
    mail = EmailMessage()
    mail["Subject"] = render.title(payload)
    mail["From"] = config.sender or "medops@localhost"
    mail["To"] = ", ".join(config.to)
    mail["Date"] = format_datetime(links.now)
    if links.notification_id:
        mail["Message-ID"] = f"<{links.notification_id}@medops>"
    mail.set_content(render.plain(payload, links))
    mail.add_alternative(render.html(payload, links), subtype="html")
    return mail


class EmailReceiver:
    """Sends through ``smtp_host:smtp_port``."""

    def __init__(
        self,
        config: ReceiverConfig,
        password: str | None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        if not config.smtp_host or not config.to:
            raise DeliveryError(f"receiver {config.name!r} needs smtp_host and to")
        self._config = config
        self._password = password
        self._context = context

    def send(self, payload: NotificationPayload, links: Links) -> None:
        config = self._config
        where = f"smtp://{config.smtp_host}:{config.smtp_port}"
        try:
            with smtplib.SMTP(
                config.smtp_host or "", config.smtp_port, timeout=HTTP_TIMEOUT_SECONDS
            ) as smtp:
                smtp.ehlo()
                if config.starttls:
                    smtp.starttls(context=self._context or ssl.create_default_context())
                    smtp.ehlo()
                if self._password is not None:
                    smtp.login(config.smtp_user or config.sender or "", self._password)
                smtp.send_message(message(config, payload, links))
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{where}: answered {exc.smtp_code}") from None
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}") from None
        except ssl.SSLError as exc:
            raise DeliveryError(f"{where}: TLS failed ({exc.reason})") from None
        except OSError as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}") from None
