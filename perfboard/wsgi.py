import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfboard.settings")
application = get_wsgi_application()

# What a worker loads lives as long as it: import every view now (not on the first request), then move all of it out
# of the garbage collector's reach. Without this, the collections that an upload's many small objects trigger walk
# Django's and pydantic's objects each time: ~30 µs a run, more than validating it (benchmarks/ingest_steps.py).
get_resolver().url_patterns
gc.collect()
gc.freeze()
