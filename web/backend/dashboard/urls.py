"""URLs: the REST API under ``/api/``, its OpenAPI schema and docs, and the built dashboard
(``web/frontend/dist``, when present) at ``/``."""

from django.conf import settings
from django.http import FileResponse, Http404
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from dashboard.api.errors import not_found

handler404 = "dashboard.api.errors.not_found"
handler500 = "dashboard.api.errors.server_error"


def dashboard_page(request, route=""):
    """The single-page dashboard's index.html for its client-side routes (``/simulated``);
    WhiteNoise serves ``/`` and the assets themselves."""
    index = settings.FRONTEND_DIST / "index.html"
    if not index.is_file():
        raise Http404("the dashboard is not built (cd web/frontend && npm run build)")
    return FileResponse(index.open("rb"), content_type="text/html")


urlpatterns = [
    path("api/", include("dashboard.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Unknown API URLs answer in the API's JSON shape, also with DEBUG on.
    re_path(r"^api/", not_found),
    re_path(r"^(?!api/|static/)(?P<route>[\w\-/]*)$", dashboard_page, name="dashboard"),
]
