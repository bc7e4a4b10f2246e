"""Re-encryption of every stored secret under the newest FIELD_ENCRYPTION_KEYS key."""

from dataclasses import dataclass, field

from django.apps import apps
from django.db import models

from .crypto import EncryptedTextField, is_unreadable


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "app.Model.field" → rows
    failed: list[str] = field(default_factory=list)  # "app.Model.field #pk"


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    """(model, field) for every EncryptedTextField of every installed model."""
    return [
        (model, model_field)
        for model in apps.get_models()
        for model_field in model._meta.concrete_fields
        if isinstance(model_field, EncryptedTextField)
    ]


def rotate_stored_secrets() -> RotationReport:
    """Decrypt each secret with any configured key and store it under the newest one.

    Row by row, so one value no key can read is reported and the rest still
    rotate; run it again after adding the missing key.
    """
    report = RotationReport()
    for model, model_field in encrypted_fields():
        label = f"{model._meta.label}.{model_field.name}"
        manager = model._base_manager
        pks = manager.exclude(**{model_field.attname: ""}).values_list("pk", flat=True)
        count = 0
        for pk in list(pks):
            rows = manager.filter(pk=pk)
            value = rows.values_list(model_field.attname, flat=True).get()
            if is_unreadable(value):
                report.failed.append(f"{label} #{pk}")
                continue
            # update() runs the field's get_prep_value: encrypted with the first key.
            rows.update(**{model_field.attname: value})
            count += 1
        report.rotated[label] = count
    return report
