from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from helpdesk import views_errors
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


# Error answers (helpdesk/views_errors.py): the API's error shape under /api/, and 503 with
# Retry-After while the database cannot serve.
handler404 = views_errors.not_found
handler500 = views_errors.server_error
