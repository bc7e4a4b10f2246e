"""The setup as JSON: custom attributes, API definitions and what other apps add (flows).

`export_config()` gives a dict that can live in version control; secrets are
never in it (a secret row keeps its key and `"is_secret": true`, no value).
`import_config(data)` applies such a dict idempotently, matching objects by
name, and reports what it created, changed or left unchanged. A secret row
keeps the secret already stored under the same key; a new one starts empty
and is reported, to be filled in the admin.

Other apps add their objects with `register_section()` from their
`AppConfig.ready()` — chat flows do, so this module never imports them:

    register_section("flows", export=export_flows, import_=import_flows)

`export` returns a list of JSON-ready dicts; `import_` takes that list and
returns a list of `Change`. Sections are imported after attributes and API
definitions, in the order they were registered, inside the same transaction.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from .models import (
    ApiBodyParam,
    ApiDefinition,
    ApiHeader,
    ApiQueryParam,
    ApiResponseMapping,
    ApiRow,
    CustomAttribute,
)

FORMAT_VERSION = 1
ROW_KINDS: dict[str, type[ApiQueryParam | ApiHeader | ApiBodyParam]] = {
    "query_params": ApiQueryParam,
    "headers": ApiHeader,
    "body_params": ApiBodyParam,
}


class ConfigError(Exception):
    """The file cannot be imported; the message names the object and the problem."""


@dataclass(frozen=True)
class Change:
    kind: str  # "attribute", "api_definition", or a registered section's kind
    name: str
    action: str  # "created", "changed" or "unchanged"
    note: str = ""

    def __str__(self) -> str:
        text = f"{self.action} {self.kind} {self.name!r}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Section:
    name: str
    export: Callable[[], list[dict[str, Any]]]
    import_: Callable[[list[dict[str, Any]]], list[Change]]


_sections: dict[str, Section] = {}


def register_section(
    name: str,
    *,
    export: Callable[[], list[dict[str, Any]]],
    import_: Callable[[list[dict[str, Any]]], list[Change]],
) -> None:
    """Add a top-level key of the JSON file, exported and imported by the given functions."""
    if name in ("version", "attributes", "api_definitions"):
        raise ValueError(f"{name!r} is a built-in section.")
    _sections[name] = Section(name, export, import_)


# --- Export -------------------------------------------------------------------------


def _attribute_data(attribute: CustomAttribute) -> dict[str, Any]:
    return {"name": attribute.name, "type": attribute.type, "description": attribute.description}


def _row_data(row: ApiRow) -> dict[str, Any]:
    if row.is_secret:
        return {"key": row.key, "is_secret": True}
    return {"key": row.key, "value": row.value}


def _definition_data(definition: ApiDefinition) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": definition.name,
        "description": definition.description,
        "method": definition.method,
        "url": definition.url,
        "body_format": definition.body_format,
        "timeout": definition.timeout,
        "retries": definition.retries,
    }
    for kind in ROW_KINDS:
        data[kind] = [_row_data(row) for row in getattr(definition, kind).all()]
    data["response_mappings"] = [
        {"source": m.source, "path": m.path, "attribute": m.attribute.name}
        for m in definition.response_mappings.select_related("attribute")
    ]
    return data


def export_config() -> dict[str, Any]:
    """Attributes, API definitions and registered sections; never a secret."""
    data: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "attributes": [_attribute_data(a) for a in CustomAttribute.objects.all()],
        "api_definitions": [
            _definition_data(d)
            for d in ApiDefinition.objects.prefetch_related(*ROW_KINDS, "response_mappings")
        ],
    }
    for section in _sections.values():
        data[section.name] = section.export()
    return data


# --- Import -------------------------------------------------------------------------


def _require(item: Any, kind: str, fields: tuple[str, ...]) -> str:
    if not isinstance(item, dict):
        raise ConfigError(f"Each {kind} must be a JSON object.")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"A {kind} has no name.")
    missing = [f for f in fields if f not in item]
    if missing:
        raise ConfigError(f"{kind} {name!r}: missing {', '.join(missing)}.")
    return name


def _clean(obj: Any, label: str, exclude: list[str] | None = None) -> None:
    try:
        obj.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        problems = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
        )
        raise ConfigError(f"{label}: {problems}") from exc


def _import_attribute(item: Any) -> Change:
    name = _require(item, "attribute", ("type",))
    wanted = {"name": name, "type": item["type"], "description": item.get("description", "")}
    attribute = CustomAttribute.objects.filter(name=name).first()
    if attribute is not None and _attribute_data(attribute) == wanted:
        return Change("attribute", name, "unchanged")
    action = "created" if attribute is None else "changed"
    attribute = attribute or CustomAttribute(name=name)
    attribute.type, attribute.description = wanted["type"], wanted["description"]
    _clean(attribute, f"attribute {name!r}")
    attribute.save()
    return Change("attribute", name, action)


def _normalized_definition(item: Any) -> dict[str, Any]:
    name = _require(item, "API definition", ("method", "url"))
    data = {
        "name": name,
        "description": item.get("description", ""),
        "method": item["method"],
        "url": item["url"],
        "body_format": item.get("body_format", ApiDefinition.BodyFormat.JSON),
        "timeout": item.get("timeout", 10),
        "retries": item.get("retries", 0),
    }
    for kind in ROW_KINDS:
        rows = item.get(kind, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "key" in r for r in rows):
            raise ConfigError(f"API definition {name!r}: {kind} must be a list of {{key, value}}.")
        data[kind] = [
            {"key": r["key"], "is_secret": True}
            if r.get("is_secret")
            else {"key": r["key"], "value": r.get("value", "")}
            for r in rows
        ]
    mappings = item.get("response_mappings", [])
    if not isinstance(mappings, list) or not all(
        isinstance(m, dict) and "attribute" in m for m in mappings
    ):
        raise ConfigError(f"API definition {name!r}: response_mappings need an attribute each.")
    data["response_mappings"] = [
        {"source": m.get("source", "json"), "path": m.get("path", ""), "attribute": m["attribute"]}
        for m in mappings
    ]
    return data


def _import_definition(item: Any) -> Change:
    data = _normalized_definition(item)
    name = data["name"]
    label = f"API definition {name!r}"
    definition = ApiDefinition.objects.filter(name=name).first()
    if definition is not None and _definition_data(definition) == data:
        return Change("api_definition", name, "unchanged")
    action = "created" if definition is None else "changed"
    kept_secrets: dict[tuple[str, str], str] = {}
    if definition is None:
        definition = ApiDefinition(name=name)
    else:
        for kind in ROW_KINDS:
            for row in getattr(definition, kind).filter(is_secret=True):
                kept_secrets[(kind, row.key)] = row.secret_value
    for field in ("description", "method", "url", "body_format", "timeout", "retries"):
        setattr(definition, field, data[field])
    _clean(definition, label)
    definition.save()

    missing_secrets: list[str] = []
    for kind, model in ROW_KINDS.items():
        getattr(definition, kind).all().delete()
        for position, row_data in enumerate(data[kind]):
            row = model(definition=definition, key=row_data["key"], position=position)
            if row_data.get("is_secret"):
                row.is_secret = True
                row.secret_value = kept_secrets.get((kind, row.key), "")
                if not row.secret_value:
                    missing_secrets.append(row.key)
            else:
                row.value = row_data["value"]
            _clean(row, f"{label}, {kind} {row.key!r}", exclude=["definition"])
            row.save()
    definition.response_mappings.all().delete()
    for position, mapping_data in enumerate(data["response_mappings"]):
        attribute = CustomAttribute.objects.filter(name=mapping_data["attribute"]).first()
        if attribute is None:
            raise ConfigError(f"{label}: unknown attribute {mapping_data['attribute']!r}.")
        mapping = ApiResponseMapping(
            definition=definition,
            source=mapping_data["source"],
            path=mapping_data["path"],
            attribute=attribute,
            position=position,
        )
        _clean(mapping, f"{label}, response mapping", exclude=["definition"])
        mapping.save()
    note = f"set secret {', '.join(missing_secrets)} in the admin" if missing_secrets else ""
    return Change("api_definition", name, action, note)


@transaction.atomic
def import_config(data: Any) -> list[Change]:
    """Apply an exported setup; all or nothing. Raises ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError("The file must hold a JSON object.")
    if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ConfigError(f"Unknown format version {data.get('version')!r}.")
    for key in ("attributes", "api_definitions", *_sections):
        if not isinstance(data.get(key, []), list):
            raise ConfigError(f'"{key}" must be a list.')
    changes = [_import_attribute(item) for item in data.get("attributes", [])]
    changes += [_import_definition(item) for item in data.get("api_definitions", [])]
    for section in _sections.values():
        if section.name in data:
            changes += section.import_(data[section.name])
    return changes
