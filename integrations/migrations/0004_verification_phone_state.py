import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """A relation with no column: the verification's phone joined to the phone's limits."""

    dependencies = [
        ("integrations", "0003_developer_section"),
    ]

    # No column, so nothing to do in the database (SQLite would rebuild the table).
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="verification",
                    name="phone_state",
                    field=models.ForeignObject(
                        from_fields=["phone"],
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="integrations.phonestate",
                        to_fields=["phone"],
                    ),
                ),
            ]
        ),
    ]
