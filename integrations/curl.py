"""Import an API definition from a cURL command, as copied from API docs or a browser."""

import base64
import json
import re
import shlex
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.db import transaction

from .models import (
    ApiBodyParam,
    ApiDefinition,
    ApiHeader,
    ApiQueryParam,
    validate_api_url,
)


class CurlError(Exception):
    """The text is not a cURL command this importer understands; the message says why."""


Row = tuple[str, str, bool]  # key, value, is_secret

# Options whose value only matters to the curl program itself.
IGNORED_WITH_VALUE = {
    "-o",
    "--output",
    "-m",
    "--max-time",
    "--connect-timeout",
    "--retry",
    "-w",
    "--write-out",
    "--proxy",
    "-x",
    "--cacert",
    "--cert",
    "--key",
    "-c",
    "--cookie-jar",
}
IGNORED_FLAGS = {
    "-s",
    "--silent",
    "-S",
    "--show-error",
    "-L",
    "--location",
    "-k",
    "--insecure",
    "-i",
    "--include",
    "-v",
    "--verbose",
    "--compressed",
    "-f",
    "--fail",
    "--fail-with-body",
    "--http1.1",
    "--http2",
    "-N",
    "--no-buffer",
    "-g",
    "--globoff",
}
# Short options that take a value (it may be attached: -XPOST).
SHORT_WITH_VALUE = set("XHduAbeoxmwc")
DATA_OPTIONS = {"-d", "--data", "--data-raw", "--data-binary", "--data-ascii"}
SECRET_HINTS = ("token", "secret", "password", "passwd", "apikey", "api-key", "api_key", "auth")
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}


@dataclass
class ParsedCurl:
    method: str
    url: str
    body_format: str = ApiDefinition.BodyFormat.JSON
    query: list[Row] = field(default_factory=list)
    headers: list[Row] = field(default_factory=list)
    body: list[Row] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    return lowered in SECRET_HEADERS or any(hint in lowered for hint in SECRET_HINTS)


def _split_option(token: str) -> tuple[str, str | None]:
    """`--data=x` → ("--data", "x")."""
    if token.startswith("--") and "=" in token:
        name, value = token.split("=", 1)
        return name, value
    return token, None


def _expand_short(token: str) -> list[str]:
    """`-sSL` → `-s -S -L`; `-XPOST` → `-X POST`; `-sd x=1` → `-s -d x=1`, as curl reads them."""
    if not token.startswith("-") or token.startswith("--") or len(token) <= 2:
        return [token]
    expanded = []
    for index, letter in enumerate(token[1:], start=1):
        expanded.append("-" + letter)
        if letter in SHORT_WITH_VALUE:
            if token[index + 1 :]:
                expanded.append(token[index + 1 :])
            break
    return expanded


def _tokens(command: str) -> list[str]:
    text = re.sub(r"\\\r?\n", " ", command.strip())
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise CurlError(f"The command could not be read ({exc}); check its quotes.") from exc
    if not tokens or tokens[0].rsplit("/", 1)[-1] not in ("curl", "curl.exe"):
        raise CurlError("This is not a cURL command: paste a command that starts with curl.")
    return [part for token in tokens[1:] for part in _expand_short(token)]


def parse_curl(command: str) -> ParsedCurl:
    """Method, URL, headers and body of a cURL command; raises CurlError."""
    tokens = _tokens(command)
    method = ""
    url = ""
    headers: list[tuple[str, str]] = []
    data: list[str] = []
    json_body = False
    as_query = False
    ignored: list[str] = []
    position = 0
    while position < len(tokens):
        name, attached = _split_option(tokens[position])
        position += 1
        takes_value = name in {
            "-X",
            "--request",
            "-H",
            "--header",
            "-u",
            "--user",
            "--url",
            "--json",
            "--data-urlencode",
            "-A",
            "--user-agent",
            "-b",
            "--cookie",
            "-e",
            "--referer",
            *DATA_OPTIONS,
            *IGNORED_WITH_VALUE,
        }
        value = attached
        if takes_value and value is None:
            if position >= len(tokens):
                raise CurlError(f"The option {name} needs a value.")
            value = tokens[position]
            position += 1
        if name in ("-X", "--request"):
            method = (value or "").upper()
        elif name in ("-H", "--header"):
            if ":" not in (value or ""):
                raise CurlError(f'The header "{value}" has no colon.')
            key, _, header_value = (value or "").partition(":")
            headers.append((key.strip(), header_value.strip()))
        elif name in DATA_OPTIONS or name == "--data-urlencode":
            data.append(value or "")
        elif name == "--json":
            data.append(value or "")
            json_body = True
        elif name in ("-u", "--user"):
            token = base64.b64encode((value or "").encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        elif name in ("-A", "--user-agent"):
            headers.append(("User-Agent", value or ""))
        elif name in ("-b", "--cookie"):
            headers.append(("Cookie", value or ""))
        elif name in ("-e", "--referer"):
            headers.append(("Referer", value or ""))
        elif name == "--url":
            url = _set_url(url, value or "")
        elif name in ("-G", "--get"):
            as_query = True
        elif name in IGNORED_FLAGS or name in IGNORED_WITH_VALUE:
            ignored.append(name)
        elif name.startswith("-") and name != "-":
            raise CurlError(f"The option {name} is not supported; remove it and try again.")
        else:
            url = _set_url(url, tokens[position - 1])
    if not url:
        raise CurlError("The command has no URL.")
    return _build(
        method, url, headers, data, json_body=json_body, as_query=as_query, ignored=ignored
    )


def _set_url(current: str, value: str) -> str:
    if current:
        raise CurlError("The command has more than one URL; import one request at a time.")
    if "://" not in value:
        value = "http://" + value  # what curl itself assumes
    return value


def _build(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    data: list[str],
    *,
    json_body: bool,
    as_query: bool,
    ignored: list[str],
) -> ParsedCurl:
    try:
        validate_api_url(url, check_attributes=False)
    except ValidationError as exc:
        raise CurlError(" ".join(exc.messages)) from exc
    method = method or ("POST" if data and not as_query else "GET")
    if method not in ApiDefinition.Method.values:
        raise CurlError(f"The method {method} is not supported (GET, POST, PUT, PATCH, DELETE).")
    parts = urlsplit(url)
    parsed = ParsedCurl(method=method, url=urlunsplit((*parts[:3], "", "")), ignored=ignored)
    parsed.query = [(k, v, _looks_secret(k)) for k, v in parse_qsl(parts.query, True)]

    content_type = ""
    for key, value in headers:
        if key.lower() == "content-type":
            content_type = value.lower()
            continue  # the executor sets it from the body format
        parsed.headers.append((key, value, _looks_secret(key)))
    raw = "&".join(data)
    if as_query:
        parsed.query += [(k, v, _looks_secret(k)) for k, v in parse_qsl(raw, True)]
    elif raw:
        is_json = json_body or "json" in content_type or raw.lstrip().startswith("{")
        if is_json:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise CurlError(f"The body is not valid JSON: {exc}.") from exc
            if not isinstance(body, dict):
                raise CurlError("A JSON body must be an object ({...}) to become body parameters.")
            parsed.body = [
                (key, value if isinstance(value, str) else json.dumps(value), _looks_secret(key))
                for key, value in body.items()
            ]
        else:
            parsed.body_format = ApiDefinition.BodyFormat.FORM
            parsed.body = [(k, v, _looks_secret(k)) for k, v in parse_qsl(raw, True)]
    return parsed


def _unique_name(base: str) -> str:
    name, number = base[:90], 2
    while ApiDefinition.objects.filter(name=name).exists():
        name, number = f"{base[:85]} ({number})", number + 1
    return name


@transaction.atomic
def import_curl(command: str, *, name: str = "") -> ApiDefinition:
    """A new API definition from a cURL command; raises CurlError or ValidationError."""
    parsed = parse_curl(command)
    parts = urlsplit(parsed.url)
    definition = ApiDefinition(
        name=name.strip() or _unique_name(f"{parsed.method} {parts.hostname}{parts.path}"),
        method=parsed.method,
        url=parsed.url,
        body_format=parsed.body_format,
    )
    definition.full_clean()
    definition.save()
    row_kinds: list[tuple[type[ApiQueryParam | ApiHeader | ApiBodyParam], list[Row]]] = [
        (ApiQueryParam, parsed.query),
        (ApiHeader, parsed.headers),
        (ApiBodyParam, parsed.body),
    ]
    for model, rows in row_kinds:
        for position, (key, value, secret) in enumerate(rows):
            row = model(definition=definition, key=key, position=position, is_secret=secret)
            if secret:
                row.secret_value = value
            else:
                row.value = value
            row.full_clean(exclude=["definition"])
            row.save()
    return definition
