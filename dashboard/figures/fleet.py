"""The fleet page: failure rates by status and stage per unit, and the coverage matrix."""
from insights.vocabulary import FAILURE_STATUSES, STAGES

from .common import UNIT_COLORS, figure, layout

STATUS_COLORS = dict(zip(FAILURE_STATUSES, ("#c62828", "#ef6c00", "#6d4c41", "#7b1fa2")))
STAGE_ORDER = (*STAGES, "unknown")


def failures_by_status(units: list[str], totals: dict, failures: dict, *, title: str):
    """Stacked failure rate per unit, one colour per status: totals {unit: runs}, failures {(unit, status): n}."""
    data = []
    for status, color in STATUS_COLORS.items():
        ys = [failures.get((u, status), 0) / totals[u] if totals.get(u) else 0 for u in units]
        if not any(ys):
            continue
        data.append(dict(type="bar", x=list(units), y=ys, name=status, marker=dict(color=color),
                         customdata=[[failures.get((u, status), 0), totals.get(u, 0)] for u in units],
                         hovertemplate="%{x}: " + status + " in %{customdata[0]} of %{customdata[1]} runs"
                                       " (%{y:.2%})<extra></extra>"))
    return figure(data, layout(title, height=340, barmode="stack",
                               yaxis=dict(tickformat=".1%", title=dict(text="share of runs"), rangemode="tozero")))


def failures_by_stage(units: list[str], by_stage: dict, *, title: str):
    """Failed runs per stage (decrypt ... prediction), grouped by unit: by_stage {(unit, stage): n}."""
    stages = [s for s in STAGE_ORDER if any(by_stage.get((u, s)) for u in units)]
    data = [dict(type="bar", x=stages, y=[by_stage.get((u, s), 0) for s in stages], name=u,
                 marker=dict(color=UNIT_COLORS.get(u))) for u in units]
    return figure(data, layout(title, height=340, barmode="group",
                               yaxis=dict(title=dict(text="failed runs"), rangemode="tozero")))


def coverage_matrix(rows: list[str], os_majors: list[int], units: list[str], counts: dict, *, title: str,
                    min_runs: int):
    """Runs per device (rows) x (OS major, unit) (columns); counts {(row, os_major, unit): runs}.

    Cells with at least `min_runs` runs are green (darker = more), under-sampled cells pale orange with their
    count, empty cells white with 0: those are what a lab should run next.
    """
    cols = [(o, u) for o in os_majors for u in units]
    x = [[f"iOS {o}" for o, _ in cols], [u for _, u in cols]]
    z_enough, z_few, text = [], [], []
    for row in rows:
        ze, zf, t = [], [], []
        for o, u in cols:
            n = counts.get((row, o, u), 0)
            t.append(str(n))
            if n >= min_runs:
                ze.append(n), zf.append(None)
            else:
                ze.append(None), zf.append(1.0 if n else 0.0)
        z_enough.append(ze), z_few.append(zf), text.append(t)
    common = dict(type="heatmap", x=x, y=list(rows), text=text, texttemplate="%{text}", showscale=False, xgap=1,
                  ygap=1, hovertemplate="%{y}<br>%{x}<br>%{text} runs<extra></extra>")
    data = [
        dict(common, z=z_few, colorscale=[[0, "#ffffff"], [0.5, "#ffffff"], [0.5, "#fde2c4"], [1, "#fde2c4"]],
             zmin=0, zmax=1, textfont=dict(size=9, color="#8a4b08"), name=f"fewer than {min_runs} runs"),
        dict(common, z=z_enough, colorscale=[[0, "#c7e9c0"], [1, "#238b45"]], textfont=dict(size=9),
             name="enough runs"),
    ]
    return figure(data, layout(title, height=max(280, 22 * len(rows) + 160), margin=dict(t=110),
                               xaxis=dict(side="top", tickfont=dict(size=10)),
                               yaxis=dict(autorange="reversed", type="category", tickfont=dict(size=10))))
