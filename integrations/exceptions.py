"""Domain errors of the OTP service.

Each carries the HTTP status and machine-readable code the API answers with;
`integrations.errors.exception_handler` turns them into the JSON error shape.
Nothing here imports DRF, so domain code can raise them anywhere.
"""

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What the Redis cache raises when its server is down, unreachable or too slow
# to answer (REDIS_SOCKET_TIMEOUT). A send then refuses (its per-bot count
# cannot be taken: 503 `cache_unavailable`) and the dashboard reads the database.
CACHE_UNAVAILABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)


class ServiceError(Exception):
    status_code = 400
    code = "invalid_request"
    default_detail = "The request is not valid."

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        self.detail = detail or self.default_detail
        self.retry_after = retry_after
        super().__init__(self.detail)


class InvalidRequestError(ServiceError):
    pass


class InvalidPhoneNumberError(ServiceError):
    code = "invalid_phone_number"
    default_detail = "This is not a valid mobile phone number."


class CountryNotAllowedError(ServiceError):
    code = "country_not_allowed"
    default_detail = "Phone numbers from this country are not accepted."


class RateLimitedError(ServiceError):
    status_code = 429
    code = "rate_limited"
    default_detail = "Too many codes were sent to this number. Try again later."


class PhoneLockedError(ServiceError):
    status_code = 429
    code = "phone_locked"
    default_detail = "Too many wrong codes were entered for this number. Try again later."


class VerificationNotFoundError(ServiceError):
    """No such verification, or one of another bot (which must not learn it exists)."""

    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class VerificationClosedError(ServiceError):
    status_code = 409
    code = "verification_closed"
    default_detail = "This verification is no longer pending."


class DailyCapReachedError(ServiceError):
    status_code = 503
    code = "daily_cap_reached"
    default_detail = "The daily limit of messages has been reached. Try again tomorrow."


class ProviderError(ServiceError):
    """The SMS provider refused the message for a reason that will not go away."""

    status_code = 502
    code = "provider_error"
    default_detail = "The SMS provider refused the message."

    def __init__(
        self,
        detail: str | None = None,
        *,
        provider_code: str | int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.provider_code = provider_code


class ProviderUnavailableError(ServiceError):
    """The SMS provider could not be reached or failed; trying later may work."""

    status_code = 503
    code = "provider_unavailable"
    default_detail = "The SMS provider is not available. Try again later."


class InvalidSignatureError(ServiceError):
    """A webhook whose signature does not prove it came from the provider."""

    status_code = 403
    code = "invalid_signature"
    default_detail = "The request signature is missing or not valid."
