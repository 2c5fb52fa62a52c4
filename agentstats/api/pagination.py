"""Upstream-style pagination: a plain JSON array, with Link and X-Result-Count headers."""

from typing import Any

from django.conf import settings
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param


class LinkHeaderPagination(PageNumberPagination):
    """Page with ?page= and ?page_size=; the body stays a list, as the Waldur SDK expects."""

    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE

    def get_paginated_response(self, data: Any) -> Response:
        if self.page is None or self.request is None:
            raise RuntimeError("paginate_queryset() must run before get_paginated_response()")
        url = self.request.build_absolute_uri()
        paginator = self.page.paginator
        links = {"first": remove_query_param(url, self.page_query_param)}
        if self.page.has_previous():
            links["prev"] = replace_query_param(
                url, self.page_query_param, self.page.previous_page_number()
            )
        if self.page.has_next():
            links["next"] = replace_query_param(
                url, self.page_query_param, self.page.next_page_number()
            )
        links["last"] = replace_query_param(url, self.page_query_param, paginator.num_pages)
        header = ", ".join(f'<{link}>; rel="{rel}"' for rel, link in links.items())
        return Response(data, headers={"Link": header, "X-Result-Count": str(paginator.count)})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema
