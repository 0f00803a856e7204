"""GET /healthz for load balancers and monitoring: 200 when this machine can serve, else 503.

`?only=database` (any of database, broker, beat, comma-separated) runs just those checks: a
load balancer should route on the web's own needs, because a broker or beat outage affects
every web machine alike and taking them all out of service would stop the API too.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import health


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Public and unauthenticated: the body holds statuses and an age, nothing else."""
    only = health.CHECKS
    if "only" in request.GET:
        only = tuple(name.strip() for name in request.GET["only"].split(",") if name.strip())
        unknown = [name for name in only if name not in health.CHECKS]
        if unknown or not only:
            message = _("Name checks among: %(checks)s.") % {"checks": ", ".join(health.CHECKS)}
            return JsonResponse(
                {"error": {"code": "invalid", "message": message, "fields": {"only": [message]}}}, status=400
            )
    healthy, body = health.report(only)
    return JsonResponse(body, status=200 if healthy else 503)
