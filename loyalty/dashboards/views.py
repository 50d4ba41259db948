"""Staff dashboards: one view per dashboard, each reading one selector (through the replica when
one is configured) and rendering one template; ``?export=<table>`` gives that table as CSV.

Who may see which dashboard: docs/permissions.md ("Dashboards"); anonymous visitors go to the
admin login, logged-in users without the permission (members, staff of another role) get 403."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from loyalty.dashboards import charts
from loyalty.dashboards.forms import FiltersForm, SegmentsForm
from loyalty.dashboards.routers import replica_reads
from loyalty.dashboards.selectors.base import Page
from loyalty.dashboards.selectors.health import program_health
from loyalty.dashboards.selectors.offers import offers_dashboard
from loyalty.dashboards.selectors.profitability import profitability_dashboard
from loyalty.dashboards.selectors.segments import segments_choosable, segments_dashboard
from loyalty.dashboards.selectors.tiers import tiers_dashboard


@dataclass(frozen=True)
class Board:
    slug: str
    title: str
    permission: str
    summary: str


BOARDS = [
    Board(
        "health", "Program health", "dashboards.dashboards_health", "Members, activity, retention, points, liability"
    ),
    Board("tiers", "Tiers", "dashboards.dashboards_tiers", "Distribution over time, movements, spend per tier"),
    Board("segments", "Segments", "dashboards.dashboards_segments", "Sizes, composition, overlap, RFM, CLV, at risk"),
    Board("offers", "Offers and campaigns", "dashboards.dashboards_offers", "Redemptions and points against budget"),
    Board(
        "profitability",
        "Profitability and settlement",
        "dashboards.dashboards_profitability",
        "Revenue, program cost, margin, coalition settlement",
    ),
]
BY_SLUG = {b.slug: b for b in BOARDS}


def boards_for(user) -> list[Board]:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return []
    return [b for b in BOARDS if user.has_perm(b.permission)]


def staff_dashboard(slug: str | None = None) -> Callable:
    """Anonymous: to the admin login. Not staff, or staff without this dashboard's permission: 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            allowed = boards_for(request.user)
            if not allowed or (slug and BY_SLUG[slug] not in allowed):
                raise PermissionDenied("You may not see this dashboard.")
            request.boards = allowed
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


@staff_dashboard()
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboards/index.html", {"boards": request.boards})


def csv_response(page: Page, table_id: str, filters) -> HttpResponse:
    table = page.table(table_id)
    if table is None:
        raise Http404("No such table")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"{table.id}-{filters.program.pk}-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow([c.label for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in table.columns])
    return response


def _dashboard(request: HttpRequest, slug: str, form, build: Callable) -> HttpResponse:
    context = {"boards": request.boards, "board": BY_SLUG[slug], "form": form}
    if not form.is_valid():
        return render(request, "dashboards/dashboard.html", context, status=400)
    filters = form.filters()
    with replica_reads():
        page = build(filters)
        export = request.GET.get("export")
        if export:
            return csv_response(page, export, filters)
    sections = []
    for chart, table in page.sections:
        sections.append({"svg": charts.render(chart, table) if chart else None, "table": table})
    query = request.GET.copy()
    query.pop("export", None)
    context.update(page=page, sections=sections, filters=filters, query=query.urlencode())
    return render(request, "dashboards/dashboard.html", context)


@staff_dashboard("health")
def health(request: HttpRequest) -> HttpResponse:
    return _dashboard(request, "health", FiltersForm(request.GET), program_health)


@staff_dashboard("tiers")
def tiers(request: HttpRequest) -> HttpResponse:
    return _dashboard(request, "tiers", FiltersForm(request.GET), tiers_dashboard)


@staff_dashboard("segments")
def segments(request: HttpRequest) -> HttpResponse:
    with replica_reads():
        choices = segments_choosable()
    form = SegmentsForm(request.GET, segment_choices=choices)
    return _dashboard(
        request, "segments", form, lambda filters: segments_dashboard(filters, form.cleaned_data.get("segments") or [])
    )


@staff_dashboard("offers")
def offers(request: HttpRequest) -> HttpResponse:
    return _dashboard(request, "offers", FiltersForm(request.GET), offers_dashboard)


@staff_dashboard("profitability")
def profitability(request: HttpRequest) -> HttpResponse:
    return _dashboard(request, "profitability", FiltersForm(request.GET), profitability_dashboard)
