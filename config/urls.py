from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from helpdesk.views_health import healthz
from tickets.views_csat import survey

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file, so the content security policy needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # The customer's satisfaction survey: public, the signed token is the only key.
    path("survey/<str:token>/", survey, name="csat-survey"),
    # For load balancers: database, broker and beat's heartbeat; public, no data.
    path("healthz", healthz, name="healthz"),
]


def _json_or_html(status: int, default_view):
    """Under /api/ errors keep the API's JSON shape; elsewhere Django's pages."""

    def view(request, exception=None):
        if request.path.startswith("/api/"):
            message = "Not found." if status == 404 else "Server error."
            return JsonResponse({"error": {"code": "not_found" if status == 404 else "server_error", "message": message, "fields": {}}}, status=status)
        return default_view(request, exception) if exception is not None else default_view(request)

    return view


handler404 = _json_or_html(404, defaults.page_not_found)
handler500 = _json_or_html(500, defaults.server_error)
