import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# Room left free on each page of the table, so that a row's new version fits
# beside the old one and the update stays HOT (see Verification.Meta).
VERIFICATION_FILLFACTOR = 90


def set_fillfactor(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(
            apps.get_model("integrations", "Verification")._meta.db_table
        )
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {VERIFICATION_FILLFACTOR})")


def reset_fillfactor(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(
            apps.get_model("integrations", "Verification")._meta.db_table
        )
        schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    """Let a code check update its verification without rewriting any index.

    The status index goes (the column changes on every check), as does the
    bot foreign key's own index (verif_bot covers it), and PostgreSQL keeps
    a tenth of each page free for new row versions.
    """

    dependencies = [
        ("integrations", "0004_verification_phone_state"),
    ]

    operations = [
        # The check now joins the phone's row in SQL of its own; the relation
        # had no column, so only Django's state changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveField(model_name="verification", name="phone_state")]
        ),
        migrations.RemoveIndex(
            model_name="verification",
            name="verif_status",
        ),
        migrations.AlterField(
            model_name="verification",
            name="bot",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="verifications",
                to="integrations.bot",
            ),
        ),
        migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False),
    ]
