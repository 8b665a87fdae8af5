from functools import cached_property

from django.core.paginator import Paginator
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from . import evidence


class RunPaginator(Paginator):
    """Pages of runs counted by the evidence query's count (sketch rows where they answer), not COUNT(*)."""

    @cached_property
    def count(self) -> int:
        return evidence.count(self.object_list)


class RunPagination(PageNumberPagination):
    """Pages of 100 (page_size up to 1,000). ``page`` and ``page_size`` must be whole numbers (page_size from 1 to
    1,000), else a 400 naming them: DRF would quietly answer another page size, or read ``page=last``, and a script
    would page through something else than it asked for. A page past the end stays a 404."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    last_page_strings = ()

    def paginate_queryset(self, queryset, request, view=None):
        for name, top in ((self.page_query_param, None), (self.page_size_query_param, self.max_page_size)):
            raw = request.query_params.get(name)
            if raw is not None and not _whole_number(raw, top):
                raise ValidationError({name: [f"must be a whole number from 1 to {top}" if top
                                              else "must be a whole number from 1"]})
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
        return parameters


def _whole_number(raw: str, top: int | None) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) < 10 and 1 <= int(raw) <= (top or 10**9)


class RunListPagination(RunPagination):
    """GET /api/v1/runs: the same pages, counted by :class:`RunPaginator`."""

    django_paginator_class = RunPaginator
