from django.db import migrations, models

SLOTS = 8  # DailySendCount.SLOTS when this migration was written


def spread_counts(apps, schema_editor):
    """Each day's count, spread over the slots as their shares of any cap are."""
    by_day = apps.get_model("integrations", "DailySendCountByDay")
    slot = apps.get_model("integrations", "DailySendCount")
    slot.objects.bulk_create(
        slot(day=row.day, slot=number, count=row.count // SLOTS + (number < row.count % SLOTS))
        for row in by_day.objects.all()
        for number in range(SLOTS)
    )


def gather_counts(apps, schema_editor):
    by_day = apps.get_model("integrations", "DailySendCountByDay")
    slot = apps.get_model("integrations", "DailySendCount")
    totals = slot.objects.values("day").annotate(total=models.Sum("count"))
    by_day.objects.bulk_create(by_day(day=t["day"], count=t["total"]) for t in totals)


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0007_message_sid_on_sending_events"),
    ]

    operations = [
        migrations.RenameModel("DailySendCount", "DailySendCountByDay"),
        migrations.CreateModel(
            name="DailySendCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("slot", models.PositiveSmallIntegerField()),
                ("count", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("day", "slot"), name="daily_send_count_slot")
                ],
            },
        ),
        migrations.RunPython(spread_counts, gather_counts),
        migrations.DeleteModel("DailySendCountByDay"),
    ]
