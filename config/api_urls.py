"""Everything under /api/v1/."""

from django.urls import include, path, register_converter
from rest_framework.routers import SimpleRouter

from helpdesk.api.fields import IdConverter
from helpdesk.api.views import (
    AgentViewSet,
    CalendarViewSet,
    CustomerViewSet,
    TeamViewSet,
    WhoAmIView,
)
from qa.api.views import QaReportView, ReviewViewSet, SampleRunViewSet
from tickets.api.csat import ComplaintViewSet, CsatViewSet
from tickets.api.reports import SummaryView
from tickets.api.imports import ImportJobCreateView, ImportJobView, ImportTicketsView
from tickets.api.views import (
    CustomerTicketsView,
    IngestView,
    TicketViewSet,
)

register_converter(IdConverter, "id")

router = SimpleRouter()
router.trailing_slash = "/?"  # /transition and /transition/ both work: integrators write either
router.register("tickets", TicketViewSet, basename="ticket")
router.register("customers", CustomerViewSet, basename="customer")
router.register("teams", TeamViewSet, basename="team")
router.register("agents", AgentViewSet, basename="agent")
router.register("calendars", CalendarViewSet, basename="calendar")
router.register("qa/sample-runs", SampleRunViewSet, basename="sample-run")
router.register("qa/reviews", ReviewViewSet, basename="review")
router.register("csat", CsatViewSet, basename="csat")
router.register("complaints", ComplaintViewSet, basename="complaint")

urlpatterns = [
    path("me", WhoAmIView.as_view(), name="whoami"),
    path("qa/report", QaReportView.as_view(), name="qa-report"),
    path("reports/summary", SummaryView.as_view(), name="reports-summary"),
    path("messages/ingest", IngestView.as_view(), name="message-ingest"),
    path("imports/tickets", ImportTicketsView.as_view(), name="import-tickets"),
    path("imports/jobs", ImportJobCreateView.as_view(), name="import-jobs"),
    path("imports/jobs/<id:job_id>", ImportJobView.as_view(), name="import-job"),
    path("customers/<id:customer_id>/tickets/", CustomerTicketsView.as_view({"get": "list"}), name="customer-tickets"),
    *router.urls,
    path("", include("knowledge.api.urls")),
]
