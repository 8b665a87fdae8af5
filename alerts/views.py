"""Alert pages: the list of alert summaries (one per model version change, of the filtered alerts), one summary with
its alerts, one alert with its evidence plot, triage of either with a note (POST),
starting a check for one model version, and a project's notification settings. Thin: queries here are lookups;
statistics live in insights, figures in alerts.figures, the settings' validation in alerts.forms."""
import logging
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from collector.auth import visible_projects
from collector.filters import without_blanks
from collector.models import Run
from insights.vocabulary import ALERT_METRIC_LABELS, METRICS_BY_ALERT_NAME
from perfboard.celery import publish

from . import figures, notify, summaries
from .api import AlertFilter, visible_alerts
from .forms import NotificationSettingsForm
from .models import STATES, Alert, AlertSummary, NotificationSettings
from .triage import add_note, set_state, set_summary_state
from .tasks import check_regressions

log = logging.getLogger(__name__)

PAGE_SIZE = 50  # summaries
NOTE_LENGTH = 4000


class CheckForm(forms.Form):
    project = forms.SlugField()
    model = forms.CharField(max_length=200)
    version = forms.CharField(max_length=64)


def _context(**values):
    return {"page": "alerts", "states": STATES, **values}


@login_required
def alert_list(request):
    filters = AlertFilter(without_blanks(request.GET), queryset=visible_alerts(request))
    form = filters.form
    alerts = filters.qs  # a bad field is named, the rest apply
    page = Paginator(summaries.summaries_of(alerts), PAGE_SIZE).get_page(request.GET.get("page"))
    projects = list(visible_projects(request).order_by("slug"))
    return render(request, "alerts/list.html", _context(
        form=form, page_obj=page, rows=summaries.rows(page, alerts), projects=projects,
        summary_query="?withdrawn=true" if getattr(form, "cleaned_data", {}).get("withdrawn") else "",
        filter_errors=[f"{k}: {' '.join(v)}" for k, v in form.errors.items()]))


def visible_summaries(request):
    return AlertSummary.objects.filter(project__in=visible_projects(request)).select_related("project",
                                                                                             "state_changed_by")


@login_required
def summary_detail(request, pk):
    summary = get_object_or_404(visible_summaries(request), pk=pk)
    withdrawn = request.GET.get("withdrawn") == "true"
    alerts = visible_alerts(request).filter(summary=summary, withdrawn_at__isnull=not withdrawn)
    (row,) = summaries.rows([summary], alerts) or [summaries.SummaryRow(summary)]
    for alert in row.alerts:
        summaries.annotate(alert)
    return render(request, "alerts/summary.html", _context(
        summary=summary, row=row, withdrawn=withdrawn,
        withdrawn_count=summary.alerts.filter(withdrawn_at__isnull=False).count(),
        notes=summary.notes.select_related("author", "alert")))


@login_required
def alert_detail(request, pk):
    alert = summaries.annotate(get_object_or_404(visible_alerts(request).select_related("summary"), pk=pk))
    return render(request, "alerts/detail.html", _context(
        alert=alert, metric_label=alert.metric_label, figure=_figure(alert),
        notes=alert.notes.select_related("author")))


def _figure(alert: Alert) -> str:
    if alert.kind == "crash_rate":
        fig = figures.rate_evidence(alert.baseline, alert.runs_baseline, alert.current, alert.runs_current,
                                    baseline_version=alert.baseline_version, version=alert.version)
    elif alert.kind == "placement":
        before = (f"{alert.baseline_version} iOS {alert.baseline_os_major}" if alert.baseline_os_major
                  else alert.baseline_version)
        fig = figures.placement_evidence(alert.baseline, alert.current, baseline_label=before,
                                         current_label=f"{alert.version}"
                                         + (f" iOS {alert.os_major}" if alert.os_major else ""))
    else:
        column = METRICS_BY_ALERT_NAME[alert.metric].column
        ids = list(alert.baseline_run_ids) + list(alert.current_run_ids)
        values = dict((i, (t, v)) for i, t, v in Run.objects.filter(id__in=ids).values_list("id", "started_at",
                                                                                           column))
        pick = lambda run_ids: [values[i] for i in run_ids if i in values]  # noqa: E731
        fig = figures.timing_evidence(pick(alert.baseline_run_ids), pick(alert.current_run_ids),
                                      metric_label=ALERT_METRIC_LABELS.get(alert.metric, alert.metric),
                                      baseline_version=alert.baseline_version, version=alert.version,
                                      baseline_value=alert.baseline, current_value=alert.current,
                                      unit="MB" if alert.metric == "peak_memory_mb" else "ms")
    return figures.to_html(fig, "alert-evidence")


@login_required
@require_POST
def change_state(request, pk):
    """One alert's state, with a note; the same state and a note: the note alone."""
    alert = get_object_or_404(visible_alerts(request), pk=pk)  # another project's alert: 404
    state, note = request.POST.get("state", alert.state), request.POST.get("note", "").strip()[:NOTE_LENGTH]
    if state not in STATES:
        messages.error(request, f"Unknown state {state!r}.")
    elif state != alert.state:
        set_state(alert, state, request.user, note)
        messages.success(request, f"Alert {alert.id} is now {state}.")
    elif note:
        add_note(alert.summary, request.user, note, alert)
        messages.success(request, f"Note added to alert {alert.id}.")
    return _back(request, reverse("alerts:detail", args=[alert.pk]))


@login_required
@require_POST
def change_summary_state(request, pk):
    """A summary's state, applied to its alerts not triaged separately, with a note; or a note alone."""
    summary = get_object_or_404(visible_summaries(request), pk=pk)
    state, note = request.POST.get("state", summary.state), request.POST.get("note", "").strip()[:NOTE_LENGTH]
    if state not in STATES:
        messages.error(request, f"Unknown state {state!r}.")
    elif state != summary.state:
        changed = set_summary_state(summary, state, request.user, note)
        messages.success(request, f"{summary} is now {state}: {changed} alert{'s' if changed != 1 else ''} set "
                                  "(alerts triaged separately keep their state).")
    elif note:
        add_note(summary, request.user, note)
        messages.success(request, f"Note added to {summary}.")
    return _back(request, reverse("alerts:summary", args=[summary.pk]))


def _back(request, default: str):
    """To the page the form was on (a local ``next``), else to ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


@login_required
@require_POST
def start_check(request):
    form = CheckForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A check needs a project, a model and a version.")
        return redirect("alerts:list")
    project = visible_projects(request).filter(slug=form.cleaned_data["project"]).first()
    if project is None:
        raise Http404("no such project")
    model, version = form.cleaned_data["model"], form.cleaned_data["version"]
    sent = publish(check_regressions, args=[project.slug, model, version])
    if sent:
        messages.success(request, f"Regression check of {model} {version} started; new alerts appear here.")
    else:
        messages.error(request, f"The regression check of {model} {version} could not be started: {sent.error}."
                                " Nothing was queued; try again later.")
    return redirect(reverse("alerts:list") + "?" + urlencode({"project": project.slug, "model": model,
                                                             "version": version}))


@login_required
@never_cache  # the page may show a newly generated webhook secret: no copy of it in a browser or proxy cache
@require_http_methods(["GET", "POST"])
def notifications(request, slug):
    """A project's webhook and e-mail recipients, for the people who may see the project (others: 404)."""
    project = get_object_or_404(visible_projects(request), slug=slug)
    conf = NotificationSettings.objects.filter(project=project).first() or NotificationSettings(project=project)
    if request.method == "POST" and "send_test" in request.POST:  # the saved settings, not the form's
        for ok, text in notify.send_test(conf):
            (messages.success if ok else messages.error)(request, text)
        return redirect("alerts:notifications", slug=project.slug)
    form = NotificationSettingsForm(request.POST if request.method == "POST" else None, instance=conf)
    if form.is_bound and form.is_valid():
        form.save()
        log.info("notification settings of %s changed by %s%s", project.slug, request.user.get_username(),
                 " (new webhook secret)" if form.generated_secret or form.cleaned_data["secret"] else "")
        if form.generated_secret:
            # Rendered now rather than after a redirect: the secret must not travel through the messages storage
            # (a cookie, or the session table). A GET never shows it; re-sending "generate" replaces it.
            return render(request, "alerts/notifications.html", _context(
                project=project, form=NotificationSettingsForm(instance=conf), secret_set=True,
                new_secret=form.generated_secret))
        messages.success(request, "Notification settings saved.")
        return redirect("alerts:notifications", slug=project.slug)
    return render(request, "alerts/notifications.html", _context(
        project=project, form=form, secret_set=bool(form.stored_secret)))
