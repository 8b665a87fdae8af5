"""``/api/v1/``: one URL module (``api/urls.py``) for the whole JSON API; each app keeps its views."""
