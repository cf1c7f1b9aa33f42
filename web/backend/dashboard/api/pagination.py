"""Page-number pagination with a client-chosen page size (capped)."""

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """``?page=2&page_size=20``; answers ``{count, next, previous, results}``."""

    page_size_query_param = "page_size"
    max_page_size = 500
