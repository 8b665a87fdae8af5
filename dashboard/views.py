"""Dashboard pages: thin views that glue filters (dashboard.filters), queries (dashboard.queries) and figure
builders (dashboard.figures). No statistics and no SQL here."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .context import dashboard_context


def _stub(request, page):
    filters, scope, context = dashboard_context(request, page)
    return render(request, "dashboard/stub.html", context)


@login_required
def overview(request):
    return _stub(request, "overview")


@login_required
def compare(request):
    return _stub(request, "compare")


@login_required
def versions(request):
    return _stub(request, "versions")


@login_required
def fleet(request):
    return _stub(request, "fleet")


@login_required
def run_detail(request, run_id):
    return _stub(request, "run")
