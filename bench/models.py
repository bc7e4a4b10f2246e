"""Bench-only tables for `write_floor`: the least durable work a correct check must do.

A check locks one verification by key, changes it and appends one event, in
one transaction; these two tables let the bench time exactly that and nothing
more (no authentication, no serializers, no other queries).
"""

from django.db import models
from django.utils import timezone


class BenchCounter(models.Model):
    """Stands in for a verification: one row locked and changed per request."""

    key = models.CharField(max_length=40, unique=True)
    hits = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.key}: {self.hits}"


class BenchEvent(models.Model):
    """Stands in for a verification event: one row inserted per request."""

    counter = models.ForeignKey(BenchCounter, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The same indexes as a verification event, so an insert costs the same.
        indexes = [models.Index(fields=["created_at"], name="bench_event_created")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.created_at:%Y-%m-%d %H:%M:%S}"
