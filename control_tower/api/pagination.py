from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """`?page=N&page_size=M` (M up to API_MAX_PAGE_SIZE) with count, next and previous links."""

    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
