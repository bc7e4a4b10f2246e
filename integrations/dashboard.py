"""Figures and charts for the staff dashboard: how verifications fare, per day and country.

Each figure comes from one grouped query over an indexed time range, so the
page stays fast on a log of millions of rows; charts are SVG drawn here on
the server (no JavaScript, nothing loaded from elsewhere).
"""

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .exceptions import CACHE_UNAVAILABLE
from .models import ApiCallLog, Verification

logger = logging.getLogger(__name__)

DAYS = 30
# SMS pumping: fraudsters make a service text numbers they profit from and
# never enter the code. A country sending this much with this little success
# in the last day is flagged.
PUMPING_MIN_SENDS = 50
PUMPING_MAX_CONVERSION = 0.20

# Final delivery reports; "queued" and "sent" may still change.
DELIVERY_FINAL = ["delivered", "undelivered", "failed", "read"]
DELIVERY_FAILED = ["undelivered", "failed"]

# A day is settled (its figures final) once its codes have expired (minutes)
# and the delivery reports of its messages are in (hours).
SETTLED_AFTER = timedelta(days=1)
CACHE_SECONDS = 40 * 86400

Status = Verification.Status


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


@dataclass
class Tally:
    """Counts for one day or one country."""

    label: str
    verifications: int = 0
    sends: int = 0
    approvals: int = 0
    failures: int = 0
    delivery_reports: int = 0
    delivery_failures: int = 0

    def add(self, row: dict[str, Any]) -> None:
        self.verifications += row["verifications"]
        self.sends += row["sends"]
        self.approvals += row["approvals"]
        self.failures += row["failures"]
        self.delivery_reports += row["delivery_reports"]
        self.delivery_failures += row["delivery_failures"]

    @property
    def conversion(self) -> float | None:
        """Approved ÷ verifications whose code went out (send failures excluded)."""
        sent = self.verifications - self.failures
        return self.approvals / sent if sent else None

    @property
    def delivery_failure_rate(self) -> float | None:
        return self.delivery_failures / self.delivery_reports if self.delivery_reports else None

    @property
    def conversion_text(self) -> str:
        return percent(self.conversion)

    @property
    def delivery_failure_text(self) -> str:
        return percent(self.delivery_failure_rate)


@dataclass
class Figures:
    start: date
    end: date
    days: list[Tally]
    countries: list[Tally]
    total: Tally
    api_calls: int
    api_errors: int
    pumping: list[Tally]
    charts: dict[str, SafeString] = field(default_factory=dict)

    @property
    def api_error_rate(self) -> float | None:
        return self.api_errors / self.api_calls if self.api_calls else None

    @property
    def api_error_text(self) -> str:
        return percent(self.api_error_rate)


def _tallies(queryset: QuerySet, *group_by: str) -> QuerySet:
    return (
        queryset.values(*group_by)
        .order_by()
        .annotate(
            verifications=Count("pk"),
            sends=Coalesce(Sum("send_count"), 0),
            approvals=Count("pk", filter=Q(status=Status.APPROVED)),
            failures=Count("pk", filter=Q(status=Status.FAILED)),
            delivery_reports=Count("pk", filter=Q(delivery_status__in=DELIVERY_FINAL)),
            delivery_failures=Count("pk", filter=Q(delivery_status__in=DELIVERY_FAILED)),
        )
    )


def _day_country_rows(first: date, last: date) -> list[dict[str, Any]]:
    """Tallies per (day, country) for the UTC days first..last, from the database."""
    since = datetime.combine(first, time.min, tzinfo=UTC)
    until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    rows = Verification.objects.filter(created_at__gte=since, created_at__lt=until)
    return list(_tallies(rows.annotate(day=TruncDate("created_at", tzinfo=UTC)), "day", "country"))


def _cache_key(day: date) -> str:
    return f"integrations:dashboard:day:{day.isoformat()}"


def rows_for_days(first: date, last: date, *, now: datetime) -> list[dict[str, Any]]:
    """Tallies per (day, country) for first..last; settled days come from the cache.

    Reading a month of a busy log takes seconds, but a day's figures stop
    changing once its codes have expired and its delivery reports are in, so
    settled days are computed once and cached; only the last days are read
    on every view.
    """
    settled_before = (now - SETTLED_AFTER).astimezone(UTC).date()
    settled = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    settled = [day for day in settled if day < settled_before]
    cached = _cached_days(settled)
    rows: list[dict[str, Any]] = []
    missing = []
    for day in settled:
        if _cache_key(day) in cached:
            rows.extend(cached[_cache_key(day)])
        else:
            missing.append(day)
    if missing:
        by_day: dict[date, list[dict[str, Any]]] = {day: [] for day in missing}
        for row in _day_country_rows(missing[0], missing[-1]):
            if row["day"] in by_day:
                by_day[row["day"]].append(row)
        _cache_days(by_day)
        for found in by_day.values():
            rows.extend(found)
    live_from = max(first, settled_before)
    if live_from <= last:
        rows.extend(_day_country_rows(live_from, last))
    return rows


def _cached_days(days: list[date]) -> dict[str, Any]:
    try:
        return cache.get_many([_cache_key(day) for day in days])
    except CACHE_UNAVAILABLE as exc:
        # The figures are all in the database: a slower page, not a broken one.
        logger.warning("Dashboard: no cache (%s), reading the database", type(exc).__name__)
        return {}


def _cache_days(by_day: dict[date, list[dict[str, Any]]]) -> None:
    # Without a cache (said when reading), the next view computes these days again.
    with contextlib.suppress(*CACHE_UNAVAILABLE):
        cache.set_many({_cache_key(day): found for day, found in by_day.items()}, CACHE_SECONDS)


def window(now: datetime) -> tuple[date, date]:
    """The first and last UTC day the dashboard shows."""
    end = now.astimezone(UTC).date()
    return end - timedelta(days=DAYS - 1), end


def cache_settled_days(*, now: datetime | None = None) -> None:
    """Compute and cache the window's settled days ahead of the first view (run daily)."""
    now = now or timezone.now()
    rows_for_days(*window(now), now=now)


def forget_cached_days(*, now: datetime | None = None) -> None:
    """Drop the cached settled days (after rows were added to past days, e.g. by seeding)."""
    today = (now or timezone.now()).astimezone(UTC).date()
    cache.delete_many(
        [_cache_key(today - timedelta(days=n)) for n in range(CACHE_SECONDS // 86400)]
    )


def collect_figures(now: datetime | None = None) -> Figures:
    """The dashboard's figures for the last DAYS days (UTC), and the last 24 hours."""
    now = now or timezone.now()
    start, end = window(now)
    since = datetime.combine(start, time.min, tzinfo=UTC)

    days = {
        start + timedelta(days=n): Tally((start + timedelta(days=n)).isoformat())
        for n in range(DAYS)
    }
    countries: dict[str, Tally] = {}
    total = Tally("total")
    # Grouped by day and country; the per-day and per-country views are sums
    # of these (at most DAYS x countries) rows.
    for row in rows_for_days(start, end, now=now):
        days[row["day"]].add(row)
        country = row["country"] or "unknown"
        countries.setdefault(country, Tally(country)).add(row)
        total.add(row)

    last_day = Verification.objects.filter(created_at__gte=now - timedelta(hours=24))
    pumping = []
    for row in _tallies(last_day, "country"):
        tally = Tally(row["country"] or "unknown")
        tally.add(row)
        conversion = tally.conversion
        if tally.sends >= PUMPING_MIN_SENDS and (conversion or 0) < PUMPING_MAX_CONVERSION:
            pumping.append(tally)

    calls = ApiCallLog.objects.filter(created_at__gte=since).aggregate(
        calls=Count("pk"), errors=Count("pk", filter=Q(outcome=ApiCallLog.Outcome.ERROR))
    )
    figures = Figures(
        start=start,
        end=end,
        days=list(days.values()),
        countries=sorted(countries.values(), key=lambda t: (-t.sends, t.label)),
        total=total,
        api_calls=calls["calls"],
        api_errors=calls["errors"],
        pumping=sorted(pumping, key=lambda t: t.label),
    )
    figures.charts = draw_charts(figures)
    return figures


# --- SVG ------------------------------------------------------------------------------

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 36
COLORS = {
    "sends": "#417690",
    "approvals": "#2e9e4f",
    "failures": "#ba2121",
    "conversion": "#8a5a00",
}


def draw_charts(figures: Figures) -> dict[str, SafeString]:
    labels = [tally.label[5:] for tally in figures.days]  # MM-DD
    per_day = line_chart(
        "Sends, approvals and failures per day",
        labels,
        [
            ("sends", [t.sends for t in figures.days]),
            ("approvals", [t.approvals for t in figures.days]),
            ("failures", [t.failures for t in figures.days]),
        ],
    )
    conversion = line_chart(
        "Conversion rate per day",
        labels,
        # A day whose codes all failed to go out, or with none, has no rate: a gap, not 0 %.
        [("conversion", [_percent_or_none(t.conversion) for t in figures.days])],
        y_max=100,
        unit="%",
    )
    top = figures.countries[:15]
    per_country = bar_chart(
        "Sends per country",
        [t.label for t in top],
        [t.sends for t in top],
        notes=[t.conversion_text + " converted" for t in top],
    )
    return {"per_day": per_day, "conversion": conversion, "per_country": per_country}


def _percent_or_none(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _frame(title: str, body: list[str], height: int = HEIGHT) -> SafeString:
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="dashboard-chart">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )
    # Every label and number above went through escape() or is a number we made.
    return mark_safe(svg)  # noqa: S308


def _axes(y_max: float, unit: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#666">{value:g}{escape(unit)}</text>'
        )
    return parts


def _runs(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """The unbroken stretches of `points` between the gaps (None)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if run]


def line_chart(
    title: str,
    labels: list[str],
    series: list[tuple[str, list[float | None]]],
    *,
    y_max: float | None = None,
    unit: str = "",
) -> SafeString:
    """One line per series over shared x labels, with a legend; a None value is a gap."""
    highest = max((value or 0 for _, values in series for value in values), default=0)
    top = y_max or _nice_max(highest)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    body = _axes(top, unit)
    for i, label in enumerate(labels):
        if i % 5 == 0 or i == len(labels) - 1:
            x = LEFT + i * step
            body.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="11" '
                f'text-anchor="middle" fill="#666">{escape(label)}</text>'
            )
    for n, (name, values) in enumerate(series):
        color = COLORS.get(name, "#417690")
        points = [
            None if value is None else (LEFT + i * step, TOP + plot_h * (1 - min(value, top) / top))
            for i, value in enumerate(values)
        ]
        for run in _runs(points):
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            body.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>'
            )
        for point, label, value in zip(points, labels, values, strict=True):
            if point is None or value is None:
                continue
            x, y = point
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(label)}: {value:g}{escape(unit)} {escape(name)}</title></circle>"
            )
        legend_x = LEFT + 8 + n * 110
        body.append(
            f'<rect x="{legend_x}" y="{HEIGHT - 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="{HEIGHT - 5}" font-size="11">{escape(name)}</text>'
        )
    return _frame(title, body)


def bar_chart(
    title: str, labels: list[str], values: list[float], *, notes: list[str] | None = None
) -> SafeString:
    """Horizontal bars, one per label, with the value (and a note) beside each."""
    row_h = 22
    height = max(len(labels), 1) * row_h + TOP + 8
    top = _nice_max(max(values, default=0))
    plot_w = WIDTH - LEFT - 220
    body = []
    if not labels:
        body.append(f'<text x="{LEFT}" y="{TOP + 12}" font-size="12" fill="#666">No data.</text>')
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * row_h
        width = plot_w * value / top
        note = f" · {escape(notes[i])}" if notes else ""
        body.append(
            f'<text x="{LEFT - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{LEFT}" y="{y + 3}" width="{width:.1f}" height="{row_h - 8}" '
            f'fill="{COLORS["sends"]}"><title>{escape(label)}: {value:g}</title></rect>'
            f'<text x="{LEFT + width + 6:.1f}" y="{y + 14}" font-size="11" fill="#333">'
            f"{value:g}{note}</text>"
        )
    return _frame(title, body, height)
