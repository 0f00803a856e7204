"""The public satisfaction survey page: no login, the signed link is the only key.

Every way a link can fail renders a page with a 4xx status (400 tampered, 410 expired or
answered), never a 500. Pages are in the customer's language unless ?lang= picks another.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from helpdesk.errors import DomainError

from . import csat

LANGUAGE_CODES = [code for code, _name in settings.LANGUAGES]
STATUS_FOR = {csat.TAMPERED: 400, csat.EXPIRED: 410, csat.USED: 410}
STARS = ["5", "4", "3", "2", "1"]  # right to left, so CSS can light the stars before the hovered one


class SurveyForm(forms.Form):
    stars = forms.TypedChoiceField(
        label=_("Your rating"), choices=[(s, s) for s in STARS], coerce=int,
        error_messages={"required": _("Choose from 1 to 5 stars.")},
    )
    comment = forms.CharField(label=_("Anything you want to tell us? (optional)"), required=False, max_length=2000)


def _language(request: HttpRequest, preferred: str | None) -> str:
    asked = request.GET.get("lang", "")
    if asked in LANGUAGE_CODES:
        return asked
    if preferred in LANGUAGE_CODES:
        return preferred
    current = translation.get_language() or settings.LANGUAGE_CODE
    return current if current in LANGUAGE_CODES else settings.LANGUAGE_CODE


def _page(request: HttpRequest, template: str, language: str, context: dict, status: int = 200) -> HttpResponse:
    with translation.override(language):
        others = [code for code in LANGUAGE_CODES if code != language]
        response = render(
            request, template, {**context, "language": language, "other_languages": others}, status=status
        )
    response["Content-Language"] = language
    # The link is the key: never pass it to another site. Not "no-referrer": browsers then send
    # "Origin: null" with the form, and the CSRF check refuses it.
    response["Referrer-Policy"] = "same-origin"
    return response


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the stars and the comment box; POST rates the ticket and thanks the customer."""
    try:
        survey = csat.survey_for_token(token)
    except DomainError as error:
        return _unavailable(request, error, _language(request, None))
    language = _language(request, survey.ticket.customer.language)
    form = SurveyForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                csat.submit_survey(token=token, stars=form.cleaned_data["stars"], comment=form.cleaned_data["comment"])
            except DomainError as error:
                return _unavailable(request, error, language)
            return _page(request, "tickets/survey_thanks.html", language, {"stars": form.cleaned_data["stars"]})
        status = 400
    selected = str(form["stars"].value() or "")
    context = {"form": form, "ticket": survey.ticket, "stars": STARS, "selected": selected, "token": token}
    return _page(request, "tickets/survey.html", language, context, status=status)


def _unavailable(request: HttpRequest, error: DomainError, language: str) -> HttpResponse:
    return _page(
        request, "tickets/survey_unavailable.html", language, {"code": error.code}, status=STATUS_FOR.get(error.code, 400)
    )
