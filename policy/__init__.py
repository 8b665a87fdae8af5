"""The compute-unit policy: which unit each device should use, with its fallback chain, and the evidence for it.

``evidence`` draws the evidence from the runs and calls ``insights.policy``; ``api`` serves it (``GET
/api/v1/policy`` and ``/policy/export``, routed from ``api/urls.py``); ``views``, ``queries`` and ``figures`` are the
policy pages (``/policy``, ``/policy/cold-start``); ``marks`` gives the dashboard overview its per-device mark.
"""
