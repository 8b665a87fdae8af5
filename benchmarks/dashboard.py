"""Server-side render time of the dashboard's overview and compare pages at 10k, 100k and 1M runs.

Loads the fleet simulator's runs (bulk, COPY) into one project per size ("bench-10000", "bench-100000",
"bench-1000000") of the configured PostgreSQL database (so the largest size shares the table with the others), runs
VACUUM ANALYZE (benchmarks.maintenance), then renders each page repeatedly in-process through Django's test client
(URL routing, session, queries, figure building, template) and prints the median and p95, and the page's first
request after the load ("first ms": the pages keep no aggregates of their own to recompute, so it should be one more
warm request; the first page's also pays the process's imports). Memoised Wilson intervals are cleared before every
request.
`python -m benchmarks.first_request` measures the first request after an upload through the API on its own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dash_bench python -m benchmarks.dashboard
    DATABASE_URL=... python -m benchmarks.dashboard --sizes 10000 100000 --repeat 20

The projects are kept between invocations: a size already loaded is not loaded again (`--reset` starts over).
Goal (issue 3): p95 under 300 ms at 1M runs, and no more than twice the 10k figure.

`--interleave SLUG SLUG` measures the same pages on two (or more) projects already in the database, one request of
each in turn, so both see the same phases of a noisy machine (on a shared 2-core box the same request's p50 moved
1.5x between runs minutes apart), and prints each one's p50 / p95 and the ratio of the last's p50 to the first's:

    DATABASE_URL=.../hchk_1m python -m benchmarks.dashboard --sizes 10000 --repeat 1   # bench-10000 beside check-1000000
    DATABASE_URL=.../hchk_1m python -m benchmarks.dashboard --interleave bench-10000 check-1000000 --repeat 20

`--weight` prints instead what each page makes a browser download as script (issue 12, item 8): the bytes of the
`<script src>` files, of the chart bundle a page with charts fetches, and of inline scripts, raw and gzip-compressed
(as whitenoise serves the collected files); and, where Debian's Chromium is installed, the median ms from navigation
start to the first chart drawn (runserver, so no compression: an upper bound). It needs no PostgreSQL: it migrates the configured database and loads the
demo fleet into it (`manage.py load_demo`), so point it at a scratch directory:

    PERFBOARD_VAR_DIR=/tmp/weight python -m benchmarks.dashboard --weight

Before issue 12 every page loaded the full plotly.min.js (v4.1.1: 4,815,814 bytes, 1,468,899 gzip), charts or not.
"""
import argparse
import os
import re
import statistics
import sys
import time

PAGES = [
    ("overview", "/", {}),
    ("overview crash rate", "/", {"metric": "crash_rate"}),
    ("compare", "/compare", {}),
    ("compare cold load", "/compare", {"metric": "load_cold"}),
    ("overview, field only", "/", {"source": "field"}),
    ("compare, field only", "/compare", {"source": "field"}),
    ("overview, iOS 26+", "/", {"os_min": 26}),
    ("compare, iOS 26+", "/compare", {"os_min": 26}),
    # The overview picks its rows: per chip while too few devices are well sampled (the 10k fleet), else per device
    # (100k and up), a larger answer. The same rows at every size compare like with like.
    ("overview, rows by device", "/", {"rows": "device"}),
    ("overview, rows by chip", "/", {"rows": "chip"}),
    ("overview, field only, rows by device", "/", {"source": "field", "rows": "device"}),
    # Issue 13: the pages and APIs whose answers grew with the runs, default and filtered. {model} and {version} are
    # the project's model version with the most runs (segmenter-lite's, for variant).
    ("versions", "/versions", {}),
    ("versions, iOS 26+", "/versions", {"os_min": 26}),
    ("fleet", "/fleet", {}),
    ("fleet, field only", "/fleet", {"source": "field"}),
    ("policy page", "/policy", {"model": "{model}", "version": "{version}"}),
    ("cold start page", "/policy/cold-start", {"model": "{model}", "version": "{version}"}),
    ("cold start, load A/B", "/policy/cold-start", {"model": "{model}", "version": "{version}", "metric": "load"}),
    ("api stats", "/api/v1/stats", {"model": "{model}", "version": "{version}", "metric": "load_cold", "by": "chip"}),
    ("api stats, iOS 26+", "/api/v1/stats",
     {"model": "{model}", "version": "{version}", "metric": "load_cold", "by": "chip", "os_min": 26}),
    ("api stats, iOS 18 only", "/api/v1/stats",
     {"model": "{model}", "version": "{version}", "metric": "load_cold", "by": "chip", "os_min": 18, "os_max": 18}),
    ("api stats, by device", "/api/v1/stats",
     {"model": "{model}", "version": "{version}", "metric": "prediction", "by": "device"}),
    ("api stats, variant", "/api/v1/stats",
     {"model": "segmenter-lite", "version": "{segmenter}", "metric": "first_prediction", "by": "chip",
      "variant": "prewarm"}),
    ("api stats, 7 days", "/api/v1/stats",
     {"model": "{model}", "version": "{version}", "metric": "load_cold", "by": "chip", "started_after": "{week}"}),
    # From noon: the rows answer the whole days, the runs the afternoon of the first.
    ("api stats, 7 days from noon", "/api/v1/stats",
     {"model": "{model}", "version": "{version}", "metric": "load_cold", "by": "chip",
      "started_after": "{week}T12:00:00Z"}),
    ("api policy", "/api/v1/policy", {"model": "{model}", "version": "{version}", "device": "iPhone15,2"}),
    # The run list: a page of the project's newest runs and their count, filtered by name and by row keys.
    ("api runs", "/api/v1/runs", {}),
    ("api runs, page 50", "/api/v1/runs", {"page": 50}),
    # Halfway down the project's runs (page 50 at 10k, 5,000 at 1M): what an OFFSET walk costs with the list's size.
    ("api runs, halfway down", "/api/v1/runs", {"page": "{middle}"}),
    # The same with a filter the time index does not hold: an offset's walk reads each run's row to filter it.
    ("api runs, field only, halfway down", "/api/v1/runs", {"source": "field", "page": "{middle_field}"}),
    # A status: not a key of the sketch rows, counted from their failures per status.
    ("api runs, successful only", "/api/v1/runs", {"status": "ok"}),
    ("api runs, successful only, halfway down", "/api/v1/runs", {"status": "ok", "page": "{middle_ok}"}),
    ("api runs, model, field, one unit", "/api/v1/runs", {"model": "{model}", "source": "field", "compute_units": "all"}),
    # No project named: the newest runs of every project the user reads (those measured here and any before them).
    ("api runs, every project, page 50", "/api/v1/runs", {"project": None, "page": 50}),
    ("api policy export", "/api/v1/policy/export", {"model": "{model}", "version": "{version}"}),
]


def placeholders(project) -> dict:
    """Values for the pages' {model}, {version}, {segmenter}, {week}, {middle}, {middle_field} and {middle_ok}: the
    project's largest model version, the week before its last run, the run list's middle page (of all runs, of field
    runs, of successful runs)."""
    from datetime import timedelta

    from django.db.models import Count, Max

    from collector.models import ModelVersion, Run

    def largest(**where):
        return (ModelVersion.objects.filter(project=project, **where).annotate(n=Count("runs"))
                .order_by("-n").first())

    mv, seg = largest(), largest(name="segmenter-lite")
    last = Run.objects.filter(project=project).aggregate(last=Max("started_at"))["last"]

    def middle(**where):  # the page of 100 halfway down the list
        return str(max(1, Run.objects.filter(project=project, **where).count() // 200))

    return {"model": mv.name, "version": mv.version, "segmenter": seg.version if seg else mv.version,
            "week": (last - timedelta(days=7)).date().isoformat(), "middle": middle(),
            "middle_field": middle(source="field"), "middle_ok": middle(status="ok")}


def fill(params: dict, values: dict) -> dict:
    """A page's parameters with the placeholders' values; a parameter given None is left out."""
    return {k: v.format(**values) if isinstance(v, str) else v for k, v in params.items() if v is not None}


def percentile(values, p):
    xs = sorted(values)
    k = (len(xs) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def grow(project_slug: str, target: int) -> int:
    """Load runs until the project holds `target` (a seed per project and step, so run_ids never collide)."""
    import zlib

    from benchmarks.fleet import generate
    from collector.bulk import bulk_load
    from collector.models import Run

    have = Run.objects.filter(project__slug=project_slug).count()
    if have < target:
        t0 = time.perf_counter()
        bulk_load(project_slug, generate(target - have, seed=zlib.crc32(project_slug.encode()) + have))
        print(f"  loaded {target - have:,} runs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    from benchmarks.maintenance import vacuum_analyze

    vacuum_analyze()
    return Run.objects.filter(project__slug=project_slug).count()


def interleaved(client, pages, repeat):
    """{page name: [(p50, p95) per project]} of ``pages`` ([(name, path, [params per project])]), each request of
    one project followed by the same request of the next, ``repeat`` times (after one warm request of each)."""
    from dashboard.presenters import clear_caches

    out = {}
    for name, path, per_project in pages:
        for params in per_project:
            client.get(path, params)
        times = [[] for _ in per_project]
        for _ in range(repeat):
            for i, params in enumerate(per_project):
                clear_caches()
                t0 = time.perf_counter()
                response = client.get(path, params)
                times[i].append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{path} answered {response.status_code}")
        out[name] = [(statistics.median(t), percentile(t, 0.95)) for t in times]
    return out


def measure(client, path, params, repeat):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dashboard.presenters import clear_caches

    t0 = time.perf_counter()
    client.get(path, params)  # the first request after the load (and, for the first page, the imports)
    first = (time.perf_counter() - t0) * 1000
    times, queries = [], 0
    for _ in range(repeat):
        clear_caches()
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = client.get(path, params)
            times.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        queries = len(captured)
    return first, statistics.median(times), percentile(times, 0.95), queries


WEIGHT_PAGES = [
    ("login", "/accounts/login/", False),
    ("overview", "/", True),
    ("compare", "/compare", True),
    ("versions", "/versions", True),
    ("fleet", "/fleet", True),
    ("policy", "/policy", True),
    ("cold start", "/policy/cold-start", True),
    ("run", None, True),
    ("alerts", "/alerts/", True),
    ("alert", None, True),
    ("profiling", "/profiling/", True),
]
SCRIPT_SRC = re.compile(r'<script[^>]*\bsrc="([^"]+)"')
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S)
CHART_BUNDLE = re.compile(r'data-chart-bundle="([^"]+)"')


def static_bytes(url: str) -> bytes:
    """The file a static URL names, from the apps' static directories (as whitenoise finds it)."""
    from django.conf import settings
    from django.contrib.staticfiles import finders

    path = finders.find(url.split("?")[0].removeprefix("/" + settings.STATIC_URL.strip("/") + "/"))
    if path is None:
        raise SystemExit(f"no static file for {url}")
    return open(path, "rb").read()


def script_weight(html: str) -> tuple[int, int, list[str]]:
    """(raw bytes, gzip bytes, files) of the script a page makes a browser fetch and run: its <script src> files, the
    chart bundle when it draws a chart (the page names it in data-chart-bundle, fetched once by the first chart),
    and its inline scripts."""
    import gzip

    files = SCRIPT_SRC.findall(html)
    if 'class="plotly-graph-div"' in html:
        files += [url for url in CHART_BUNDLE.findall(html)[:1] if url not in files]
    raw = gz = 0
    for url in files:
        body = static_bytes(url)
        raw, gz = raw + len(body), gz + len(gzip.compress(body, 9))
    inline = "".join(INLINE_SCRIPT.findall(html)).encode()
    return raw + len(inline), gz + len(gzip.compress(inline, 9)), [u.rsplit("/", 1)[-1] for u in files]


def weight(argv=None):
    """Script bytes per page of the demo fleet (see the module docstring)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from alerts.models import Alert
    from collector.models import Run

    call_command("migrate", verbosity=0)
    call_command("load_demo", stdout=open(os.devnull, "w"))
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    paths = {"run": f"/runs/{Run.objects.filter(project__slug='demo').first().run_id}",
             "alert": f"/alerts/{Alert.objects.first().pk}" if Alert.objects.exists() else "/alerts/"}
    rendered = first_chart_times({name: path or paths[name] for name, path, _ in WEIGHT_PAGES})
    print(f"{'page':<12} {'charts':>6} {'script bytes':>13} {'gzip':>10} {'first chart ms':>15}  files")
    for name, path, logged_in in WEIGHT_PAGES:
        response = (client if logged_in else Client()).get(path or paths[name])
        if response.status_code != 200:
            raise SystemExit(f"{path or paths[name]} answered {response.status_code}")
        html = response.content.decode()
        raw, gz, files = script_weight(html)
        charts = html.count('class="plotly-graph-div"')
        first = rendered.get(name)
        shown = "-" if first is None else f"{first:,.0f}"
        print(f"{name:<12} {charts:>6} {raw:>13,} {gz:>10,} {shown:>15}  {' '.join(files) or '-'}", flush=True)


def first_chart_times(paths: dict, repeat: int = 3) -> dict:
    """Median ms from navigation start to the first chart drawn (Plotly's data bound to it), per page with charts,
    in headless Chromium (Debian's /usr/bin/chromium) against ``manage.py runserver`` on this database. Empty when
    Chromium or Playwright is missing."""
    import socket
    import subprocess

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if not os.path.exists("/usr/bin/chromium"):
        return {}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base, out = f"http://127.0.0.1:{port}", {}
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{base}/accounts/login/")
            page.fill("input[name=username]", "demo")
            page.fill("input[name=password]", "demo")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            for name, path in paths.items():
                times = []
                for _ in range(repeat):
                    page.goto(base + path)
                    if not page.locator(".plotly-graph-div").count():
                        break
                    page.wait_for_function("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                           ".some(el => el._fullData && el._fullData.length)", timeout=30_000)
                    times.append(page.evaluate("performance.now()"))
                if times:
                    out[name] = statistics.median(times)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    return out


def logged_in_client(benchmark: str, username: str):
    """(user, Django test client logged in as that user) on the configured PostgreSQL database (Django set up)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    if connection.vendor != "postgresql":
        raise SystemExit(f"{benchmark} needs PostgreSQL: set DATABASE_URL=postgres://...")
    # A gunicorn worker's start-up (perfboard/wsgi.py): every view imported, then gc.freeze(). Without it the p95 of
    # this process, not a worker's, counted a full collection of the imports every ~9 requests (~100 ms at 1M runs).
    import perfboard.wsgi  # noqa: F401
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user, _ = get_user_model().objects.get_or_create(username=username)
    client = Client()
    client.force_login(user)
    return user, client


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--project", default="bench", help="prefix of the projects' slugs")
    parser.add_argument("--reset", action="store_true", help="delete the projects' runs first")
    parser.add_argument("--only", nargs="+", help="measure only the pages whose name contains one of these words")
    parser.add_argument("--interleave", nargs="+", metavar="SLUG",
                        help="measure these projects (already loaded) request by request in turn; see the docstring")
    parser.add_argument("--pending", type=int, default=0,
                        help="list the project's N newest runs as pending while measuring (what a fold's backlog "
                             "costs a page; those runs are in their rows too, so the answers count them twice)")
    args = parser.parse_args(argv)
    user, client = logged_in_client("benchmarks.dashboard", "dashboard-bench")
    from collector.models import PendingRun, Project, Run

    if args.interleave:
        projects = [Project.objects.get(slug=slug) for slug in args.interleave]
        for project in projects:
            project.members.add(user)
        values = [placeholders(project) for project in projects]
        pages = [(name, path, [fill({"project": p.slug, **params}, v) for p, v in zip(projects, values)])
                 for name, path, params in PAGES if not args.only or any(word in name for word in args.only)]
        sizes = [Run.objects.filter(project=p).count() for p in projects]
        print(f"{'page':<36} " + " ".join(f"{f'{n:,} p50 / p95':>20}" for n in sizes) + f" {'ratio':>6}")
        for name, figures in interleaved(client, pages, args.repeat).items():
            cells = " ".join(f"{f'{p50:.0f} / {p95:.0f}':>20}" for p50, p95 in figures)
            print(f"{name:<36} {cells} {figures[-1][0] / figures[0][0]:>6.2f}", flush=True)
        return

    print(f"{'runs':>10}  {'page':<36} {'first ms':>9} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for size in sorted(args.sizes):
        slug = f"{args.project}-{size}"
        if args.reset:
            Project.objects.filter(slug=slug).delete()
        project, _ = Project.objects.get_or_create(slug=slug, defaults={"name": f"Dashboard benchmark, {size:,} runs"})
        project.members.add(user)
        total = grow(slug, size)
        values = placeholders(project)
        listed = list(Run.objects.filter(project=project).order_by("-id").values_list("id", flat=True)[:args.pending])
        PendingRun.objects.bulk_create([PendingRun(run_id=pk) for pk in listed], batch_size=5000)
        if listed:
            from benchmarks.maintenance import vacuum_analyze

            vacuum_analyze()
            print(f"  ({len(listed):,} runs listed as pending)")
        for name, path, params in PAGES:
            if args.only and not any(word in name for word in args.only):
                continue
            first, median, p95, queries = measure(client, path, fill({"project": slug, **params}, values),
                                                  args.repeat)
            print(f"{total:>10,}  {name:<36} {first:>9.0f} {median:>10.0f} {p95:>8.0f} {queries:>8}", flush=True)
        PendingRun.objects.filter(run_id__in=listed).delete()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
    weight() if "--weight" in sys.argv[1:] else main()
