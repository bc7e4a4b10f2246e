"""The Twilio SMS backend: one message through the official `twilio` client.

The vendor SDK is imported only here. Settings are read at each send, never at
import, so tests can point TWILIO_API_BASE_URL at a fake Twilio on loopback.
"""

import logging
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies, proxy_bypass

import certifi
import urllib3
from django.conf import settings
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from .exceptions import (
    InvalidPhoneNumberError,
    InvalidRequestError,
    ProviderError,
    ProviderUnavailableError,
)
from .phones import mask_phone
from .sms import ACCOUNT_SID_SHAPE, BaseSmsBackend, SmsMessage

logger = logging.getLogger(__name__)

TWILIO_API_BASE_URL = "https://api.twilio.com"
FORM = "application/x-www-form-urlencoded"
CONNECT_TIMEOUT_SECONDS = 3.0
# Connections to Twilio kept alive per process: one per gunicorn thread is plenty.
POOL_SIZE = 64
INVALID_TO_NUMBER = 21211


class TwilioBackend(BaseSmsBackend):
    """Sends SMS and WhatsApp messages with Twilio's Messages API.

    Credentials are those sent with the request (the guide's accountSID,
    authToken, fromNumber) when present, else the server's. Failures become
    our errors: a bad number `InvalidPhoneNumberError`, any other refusal
    `ProviderError` (permanent), and timeouts, network faults and Twilio's
    5xx `ProviderUnavailableError` (try later). There are no retries: the
    caller decides whether to resend, and the limits count every send.
    """

    def send(self, message: SmsMessage) -> str:
        account_sid, auth_token, sender = _credentials(message)
        params = {"to": message.to, "body": message.body, **sender}
        if message.channel == "whatsapp":
            # WhatsApp goes through the same API, both addresses prefixed.
            params["to"] = _whatsapp_address(message.to)
            if "from_" in params:
                params["from_"] = _whatsapp_address(params["from_"])
        if _is_our_callback(message.status_callback):
            params["status_callback"] = str(message.status_callback)

        client = Client(account_sid, auth_token, http_client=_http_client())
        try:
            created = client.messages.create(**params)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _error_for(exc.status, exc.code, message) from exc
        except urllib3.exceptions.HTTPError as exc:
            # Connect/read timeouts, refused or reset connections, broken chunking.
            logger.warning(
                "Twilio could not be reached for a message to %s: %s",
                mask_phone(message.to),
                type(exc).__name__,
            )
            raise ProviderUnavailableError() from exc
        except ValueError as exc:
            # A 2xx answer that is not JSON: something other than Twilio answered.
            logger.warning("Twilio answered a message to %s with no JSON", mask_phone(message.to))
            raise ProviderUnavailableError() from exc
        return str(created.sid)


def _credentials(message: SmsMessage) -> tuple[str, str, dict[str, str]]:
    """Account SID, auth token, and the sender as the client's keyword argument."""
    server_sender = _server_sender()
    if message.account is not None:
        if not ACCOUNT_SID_SHAPE.match(message.account.account_sid):
            raise InvalidRequestError("accountSID is not a Twilio account SID (AC + 32 hex).")
        if not message.account.auth_token:
            # The token kept with a verification for its resends reads as empty
            # once no FIELD_ENCRYPTION_KEYS key decrypts it; the server's token
            # is not this account's, so the send stops here.
            raise ProviderError(
                "The auth token of this Twilio account cannot be read any more; "
                "start a new verification with accountSID and authToken."
            )
        sender = {"from_": message.account.from_number} if message.account.from_number else {}
        if not (sender or server_sender):
            raise InvalidRequestError("Send fromNumber with accountSID and authToken.")
        return message.account.account_sid, message.account.auth_token, sender or server_sender
    if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and server_sender):
        logger.error(
            "SMS_BACKEND is twilio but TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
            "TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID) are not all set"
        )
        raise ProviderUnavailableError("Sending messages is not configured on this server.")
    return settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, server_sender


def _server_sender() -> dict[str, str]:
    if settings.TWILIO_FROM_NUMBER:
        return {"from_": settings.TWILIO_FROM_NUMBER}
    if settings.TWILIO_MESSAGING_SERVICE_SID:
        return {"messaging_service_sid": settings.TWILIO_MESSAGING_SERVICE_SID}
    return {}


def _error_for(
    status: int, code: int | None, message: SmsMessage
) -> InvalidPhoneNumberError | ProviderError | ProviderUnavailableError:
    logger.warning(
        "Twilio refused a message to %s: HTTP %s, error %s", mask_phone(message.to), status, code
    )
    if status >= 500 or status == 429:
        # 429 is Twilio's concurrency limit on our account: trying later works.
        return ProviderUnavailableError()
    if code == INVALID_TO_NUMBER:
        return InvalidPhoneNumberError()
    if 400 <= status < 500:
        return ProviderError(
            f"The SMS provider refused the message (Twilio error {code}).", provider_code=code
        )
    # Redirects are not followed; anything else means Twilio is not what answered.
    return ProviderUnavailableError()


def _whatsapp_address(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


def _is_our_callback(url: str | None) -> bool:
    # Twilio will POST delivery updates there; only ever our own public endpoint.
    return bool(url) and str(url).startswith(f"{settings.PUBLIC_BASE_URL}/")


# --- HTTP -------------------------------------------------------------------------


class _HttpClient(HttpClient):
    """The twilio client's transport, on urllib3 as the project's other HTTP calls.

    The twilio package's own transport goes through requests, whose work on
    each request (merging session settings, hooks, cookies, the environment)
    cost more CPU than the exchange itself: a seventh of a whole send. This one
    sends what the twilio client built, to `base_url`, as a form, with split
    (connect, read) timeouts, no retries and no redirects. Its pool of kept-alive
    connections is shared by the process's threads, as urllib3's pools may be.
    """

    def __init__(self, *, base_url: str, timeout: tuple[float, float]) -> None:
        super().__init__(logging.getLogger("twilio.http_client"), is_async=False)
        self.base_url = base_url
        self.timeouts = timeout
        options: dict[str, Any] = {
            "timeout": urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            "retries": False,
            "maxsize": POOL_SIZE,
            "ca_certs": certifi.where(),
        }
        # The environment is read once here, not at every request.
        proxy = _proxy_for(base_url)
        self.pool = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(url)
        # The scheme and host the client chose (api.twilio.com, or an edge or
        # region host when TWILIO_EDGE/TWILIO_REGION are set), unless
        # TWILIO_API_BASE_URL points elsewhere.
        origin = f"{parts.scheme}://{parts.netloc}"
        if self.base_url != TWILIO_API_BASE_URL:
            origin = self.base_url
        query = "&".join(filter(None, [parts.query, urlencode(_present(params), doseq=True)]))
        url = origin + parts.path + (f"?{query}" if query else "")
        sent = dict(headers or {})
        if auth is not None:
            sent.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        body = None
        if data:
            body = urlencode(_present(data), doseq=True).encode()
            sent["Content-Type"] = FORM
        logs = self.logger.isEnabledFor(logging.INFO)  # as the twilio package's transport does
        if logs:
            self.log_request({"method": method, "url": url, "params": None, "headers": headers})
        answer = self.pool.request(method, url, body=body, headers=sent, redirect=False)
        if logs:
            self.log_response(answer.status, answer)  # type: ignore[arg-type]
        return Response(answer.status, answer.data.decode("utf-8", "replace"), answer.headers)


def _present(values: dict[str, object] | None) -> list[tuple[str, object]]:
    return [(name, value) for name, value in (values or {}).items() if value is not None]


def _proxy_for(base_url: str) -> str | None:
    """The proxy that HTTPS_PROXY or HTTP_PROXY sets for `base_url`, unless NO_PROXY spares it."""
    parts = urlsplit(base_url)
    if proxy_bypass(parts.hostname or ""):
        return None
    return getproxies().get(parts.scheme)


_client: _HttpClient | None = None
_client_lock = threading.Lock()


def _http_client() -> _HttpClient:
    """The process's HTTP client for the current settings.

    The read timeout applies to each socket read: Twilio answers in one piece,
    so a hung provider is cut off after connect + read ≤ TWILIO_TIMEOUT_SECONDS.
    """
    global _client
    total = float(settings.TWILIO_TIMEOUT_SECONDS)
    connect = min(CONNECT_TIMEOUT_SECONDS, total / 2)
    timeout = (connect, total - connect)
    base_url = settings.TWILIO_API_BASE_URL.rstrip("/")
    with _client_lock:
        if _client is None or (_client.base_url, _client.timeouts) != (base_url, timeout):
            _client = _HttpClient(base_url=base_url, timeout=timeout)
        return _client
