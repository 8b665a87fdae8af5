"""Figure builders: pure functions, plain data in (lists, dicts, dataclasses from `dashboard.queries`), a
`plotly.graph_objects.Figure` out. No Django, no database: each is tested on hand-made data.

One module per page (`overview`, `compare`, `versions`, `run`, `fleet`; `policy` for the policy pages); shared
colours, labels and the HTML embedding live in `common`.
"""
