"""The one request parser of the API: JSON, refusing what would crash the decoder."""

from collections.abc import Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus a clean 400 for deeply nested documents.

    Python's decoder recurses once per nesting level, so `[[[[…]]]]` a few
    thousand levels deep raises RecursionError, which DRF does not catch and
    would answer 500. The body size is already capped by
    DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads JSON through `request.body`).
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply.") from exc
