"""What every figure shares: one colour per compute unit, metric names in the user's words, the HTML embedding."""
import plotly.graph_objects as go
import plotly.io as pio

COMPUTE_UNITS = ("cpuOnly", "cpuAndGPU", "cpuAndNeuralEngine", "all")
# Same colour for a unit on every page.
UNIT_COLORS = {"cpuOnly": "#8c8c8c", "cpuAndGPU": "#2a9d8f", "cpuAndNeuralEngine": "#6a4c93", "all": "#e76f51"}
STAGE_COLORS = {"decrypt": "#8ecae6", "compile": "#ffb703", "load": "#219ebc", "first_prediction": "#fb8500"}
FAILURE_COLOR = "#c62828"
UNDERSAMPLED_COLOR = "#e9ecef"

# Plotly's config for every plot: no plotly.com links (closed networks), no logo.
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}


def base_layout(fig: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    """A light look set by hand: plotly's named templates cost ~100 ms per figure (a deep copy) on every render."""
    fig.update_layout(
        template="none", paper_bgcolor="white", plot_bgcolor="white", margin=dict(l=10, r=10, t=50 if title else 20, b=10),
        font=dict(family="-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif", size=12, color="#1d232b"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        hoverlabel=dict(bgcolor="white"),
    )
    fig.update_xaxes(gridcolor="#eef1f4", linecolor="#c9d1d9", zeroline=False, automargin=True)
    fig.update_yaxes(gridcolor="#eef1f4", linecolor="#c9d1d9", zeroline=False, automargin=True)
    if title:
        # Title on top of the figure, the legend between it and the plot.
        fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=0.995, yref="container", yanchor="top",
                                     font=dict(size=14)), margin=dict(t=80))
    if height:
        fig.update_layout(height=height)
    return fig


def ms(value: float | None) -> str:
    """A duration as people read it: 0.84 ms, 12.3 ms, 1,430 ms, 12.5 s."""
    if value is None:
        return "–"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 1000:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def percent(rate: float | None) -> str:
    if rate is None:
        return "–"
    if rate == 0:
        return "0%"
    if rate < 0.001:
        return "<0.1%"
    return f"{rate:.1%}"


def to_html(fig: go.Figure, div_id: str) -> str:
    """A <div> and the script that draws the figure with the page's own Plotly (loaded by base.html)."""
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG,
                       validate=False)
