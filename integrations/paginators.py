"""A paginator for admin lists of log tables that may hold millions of rows."""

import json

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

# Below this many rows an exact COUNT(*) is cheap enough and gives exact pages.
EXACT_COUNT_BELOW = 10_000


class EstimatedCountPaginator(Paginator):
    """Counts exactly on small results, asks PostgreSQL's planner on large ones.

    A COUNT(*) over a million rows reads them all (PostgreSQL keeps no row
    count), which is most of the time an admin list takes. The planner's
    estimate (from the table statistics, `pg_class.reltuples` for the whole
    table) answers at once; the list then says "about N".
    """

    @cached_property
    def count(self) -> int:
        estimate = self.estimated_count
        if estimate is None or estimate < EXACT_COUNT_BELOW:
            return super().count
        return estimate

    @cached_property
    def is_estimated(self) -> bool:
        estimate = self.estimated_count
        return estimate is not None and estimate >= EXACT_COUNT_BELOW

    @cached_property
    def estimated_count(self) -> int | None:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or connections[queryset.db].vendor != "postgresql":
            return None
        try:
            sql, params = queryset.order_by().query.sql_with_params()
        except EmptyResultSet:  # e.g. queryset.none(): nothing to ask the planner
            return 0
        with connections[queryset.db].cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])
