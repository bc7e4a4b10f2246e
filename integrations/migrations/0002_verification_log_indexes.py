# Indexes for the staff logs: the channel and delivery-status filters, and on
# PostgreSQL a trigram index so a partial phone number is found without
# scanning the table (SQLite has no trigram indexes and small tables).

from django.db import migrations, models


def create_phone_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS verif_phone_trgm "
        "ON integrations_verification USING gin (phone gin_trgm_ops)"
    )


def drop_phone_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS verif_phone_trgm")


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0001_initial'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='verification',
            index=models.Index(fields=['channel', '-created_at'], name='verif_channel'),
        ),
        migrations.AddIndex(
            model_name='verification',
            index=models.Index(fields=['delivery_status', '-created_at'], name='verif_delivery'),
        ),
        migrations.RunPython(create_phone_trigram_index, drop_phone_trigram_index),
    ]
