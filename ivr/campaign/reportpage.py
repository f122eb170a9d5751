"""The after-action report as one self-contained HTML page: inline CSS and SVG, no script,
no external resource; it opens offline, prints, and reads on a projector. The numbers come
from `ivr.campaign.afteraction`.

Built here rather than with Jinja2 and a plotting library: the page is a few tables and one
staircase chart; every value goes through `_e` (html.escape, quotes included; a test feeds it
a `<script>` name); and matplotlib would be a large dependency, with fonts and styles of its
own to pin, for one chart that is a polyline.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from html import escape
from typing import Any

from ivr.campaign.afteraction import (
    MILESTONES,
    CampaignData,
    answers,
    curve,
    drill_row,
    per_unit,
    quotas,
    time_to_quota,
    timeline,
)
from ivr.outcomes import ANSWERS

_CSS = """
body{font:18px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#111}
h1{font-size:2em;margin:.2em 0}h2{margin-top:1.5em;border-bottom:2px solid #333}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #999;padding:.25em .6em}
th{background:#eee;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.drill{background:#c60;color:#fff;font-size:2.2em;font-weight:bold;text-align:center;
padding:.3em;letter-spacing:.1em;border:4px solid #000}
.muted{color:#555}svg{max-width:100%;height:auto;border:1px solid #ccc;background:#fff}
@media print{body{margin:0;max-width:none;font-size:12pt}h2{break-after:avoid}
table,svg{break-inside:avoid}.drill{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _min(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} min"


def _clock(ms: float | None) -> str:
    if ms is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _table(head: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            out.append(f'<td class="n">{_e(cell)}</td>' if i in numeric else f"<td>{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _tick_step(span: float, most: int = 12) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 1440):
        if span / step <= most:
            return step
    return span / most


def _steps(points: list[tuple[float, int]], sx: Any, sy: Any, end: float) -> str:
    """A staircase polyline: counts hold until the next answer."""
    coords = [f"{sx(0):.1f},{sy(0):.1f}"]
    last = 0
    for minute, count in points:
        coords.append(f"{sx(minute):.1f},{sy(last):.1f}")
        coords.append(f"{sx(minute):.1f},{sy(count):.1f}")
        last = count
    coords.append(f"{sx(end):.1f},{sy(last):.1f}")
    return " ".join(coords)


@dataclass(frozen=True)
class _Plot:
    """Where the curve's axes are on the page, and how minutes and counts map onto them."""

    width: int
    height: int
    end: float
    top: int
    left: int = 60
    right: int = 20
    upper: int = 20
    lower: int = 50

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    def sx(self, minute: float) -> float:
        return self.left + self.plot_w * minute / self.end

    def sy(self, count: float) -> float:
        plot_h = self.height - self.upper - self.lower
        return self.upper + plot_h * (1 - count / (self.top * 1.05))


def curve_svg(data: CampaignData, width: int = 900, height: int = 380) -> str:
    """The mobilisation curve as inline SVG: available answers, forecast on site, quotas."""
    c = curve(data)
    wanted = quotas(data)
    last_event = max((data.minutes(e["t"]) for e in data.events), default=0.0)
    end = max([5.0, last_event, *(m for m, _ in c.available), *(m for m, _ in c.on_site)])
    top = max([1, sum(wanted.values()), *(n for _, n in c.available), *(n for _, n in c.on_site)])
    plot = _Plot(width, height, end, top)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="Mobilisation curve" font-family="sans-serif" font-size="13">',
        *_axes(plot),
        *_quota_lines(plot, wanted),
        f'<polyline fill="none" stroke="#2a7" stroke-width="2" stroke-dasharray="6 3" '
        f'points="{_steps(c.on_site, plot.sx, plot.sy, end)}"><title>forecast on site</title>'
        "</polyline>"
        f'<polyline fill="none" stroke="#06c" stroke-width="3" '
        f'points="{_steps(c.available, plot.sx, plot.sy, end)}"><title>available answers</title>'
        "</polyline>",
        *_legend(plot),
        "</svg>",
    ]
    return "".join(parts)


def _axes(plot: _Plot) -> list[str]:
    """Both axes, their ticks and labels."""
    left, upper, zero = plot.left, plot.upper, plot.sy(0)
    parts = [
        f'<line x1="{left}" y1="{zero:.1f}" x2="{plot.width - plot.right}" y2="{zero:.1f}" '
        'stroke="#000"/>',
        f'<line x1="{left}" y1="{upper}" x2="{left}" y2="{zero:.1f}" stroke="#000"/>',
    ]
    step = _tick_step(plot.end)
    tick = 0.0
    while tick <= plot.end + 1e-9:
        x = plot.sx(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{zero:.1f}" x2="{x:.1f}" y2="{zero + 5:.1f}" stroke="#000"/>'
            f'<text x="{x:.1f}" y="{zero + 20:.1f}" text-anchor="middle">{tick:g}</text>'
        )
        tick += step
    parts.append(
        f'<text x="{left + plot.plot_w / 2:.1f}" y="{plot.height - 8}" text-anchor="middle">'
        "minutes since start</text>"
    )
    ystep = max(1, int(_tick_step(plot.top, 8)))
    for count in range(0, plot.top + 1, ystep):
        y = plot.sy(count)
        parts.append(
            f'<line x1="{left - 5}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#000"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{count}</text>'
        )
    return parts


def _quota_lines(plot: _Plot, wanted: dict[str, int]) -> list[str]:
    """A dotted line per role's quota, and a dashed red one for their total."""
    left, right = plot.left, plot.width - plot.right
    parts = []
    for role, quota in sorted(wanted.items()):
        y = plot.sy(quota)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#999" '
            f'stroke-dasharray="2 4"/><text x="{right - 4}" y="{y - 4:.1f}" '
            f'text-anchor="end" fill="#666">quota {_e(role)} {quota}</text>'
        )
    if len(wanted) > 1:
        total_quota = sum(wanted.values())
        y = plot.sy(total_quota)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#c00" '
            f'stroke-dasharray="8 4" stroke-width="2"/><text x="{right - 4}" '
            f'y="{y - 4:.1f}" text-anchor="end" fill="#c00">total quota {total_quota}</text>'
        )
    return parts


def _legend(plot: _Plot) -> list[str]:
    left, upper = plot.left, plot.upper
    return [
        f'<rect x="{left + 10}" y="{upper}" width="14" height="4" fill="#06c"/>'
        f'<text x="{left + 30}" y="{upper + 6}">available answers</text>'
        f'<rect x="{left + 10}" y="{upper + 18}" width="14" height="4" fill="#2a7"/>'
        f'<text x="{left + 30}" y="{upper + 24}">forecast on site</text>'
    ]


def render_html(data: CampaignData, drills: list[CampaignData] | None = None) -> str:
    """The report page. `drills`: previous drill campaigns to compare with (drills only)."""
    s = data.summary
    drill = bool(s.get("drill"))
    title = f"Campaign {s.get('campaign', '')} — {s.get('name', '')}"
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
    ]
    if drill:
        out.append('<div class="drill">DRILL / EXERCICE — not a real alert</div>')
    out.append(f"<h1>{_e(title)}</h1>")
    out.append(
        f'<p class="muted">Status: {_e(s.get("status", ""))}. Started '
        f"{_e(_clock(data.start_ms))}; report made {_e(_clock(time.time() * 1000))}.</p>"
    )
    out.append("<h2>Timeline</h2>")
    out.append(
        _table(
            ["Minute", "Time", "Event"],
            [[f"{m:.1f}", _clock(data.start_ms + m * 60_000), text] for m, text in timeline(data)],
            {0},
        )
    )
    out.append("<h2>Counts</h2>")
    keys = ["total", *ANSWERS, "no_answer", "busy", "voicemail", "failed", "hung_up"]
    keys += ["cancelled", "pending", "attempts"]
    out.append(_table(["", *keys], [["all", *(s.get(k, 0) for k in keys)]], set(range(1, 12))))
    out.append("<h2>Channels</h2>")
    out.append(_channels(data))
    out.append("<h2>Per role</h2>")
    out.append(_per_role(data))
    out.append("<h2>Per unit</h2>")
    unit_keys = ["total", *ANSWERS, "no_answer", "cancelled", "pending"]
    out.append(
        _table(
            ["Unit", *unit_keys],
            [[unit, *(c[k] for k in unit_keys)] for unit, c in per_unit(data).items()],
            set(range(1, len(unit_keys) + 1)),
        )
    )
    out.append("<h2>Mobilisation curve</h2>")
    out.append(curve_svg(data))
    if drill:
        out.append("<h2>Comparison with previous drills</h2>")
        out.append(_drill_comparison([data, *(drills or [])]))
    out.append("<h2>Answers</h2>")
    out.append(_answers(data))
    out.append("</body></html>\n")
    return "".join(out)


def _per_role(data: CampaignData) -> str:
    s = data.summary
    reached = time_to_quota(data)
    rows = []
    for role, entry in s.get("by_role", {}).items():
        times = reached.get(role, {})
        rows.append(
            [role, entry.get("total", 0), entry.get("available", 0), entry.get("quota") or "—",
             "yes" if entry.get("met") else "no", *(_min(times.get(p)) for p in MILESTONES)]
        )  # fmt: skip
    if "" in reached:
        total_quota = sum(quotas(data).values())
        rows.append(
            ["all roles", s.get("total", 0), s.get("available", 0), total_quota,
             "yes" if reached[""][100] is not None else "no",
             *(_min(reached[""].get(p)) for p in MILESTONES)]
        )  # fmt: skip
    head = ["Role", "People", "Available", "Quota", "Met", *(f"{p}% of quota" for p in MILESTONES)]
    return _table(head, rows, {1, 2, 3, 5, 6, 7, 8})


def _drill_comparison(campaigns: list[CampaignData]) -> str:
    compare = [drill_row(d) for d in campaigns]
    return _table(
        ["Campaign", "Name", "Started", "Total", "Available", "50% of quota", "100% of quota"],
        [[r["campaign"], r["name"],
          _clock(r["started_at"] * 1000 if r["started_at"] else None), r["total"],
          r["available"], _min(r["t50"]), _min(r["t100"])] for r in compare],
        {3, 4, 5, 6},
    )  # fmt: skip


def _answers(data: CampaignData) -> str:
    return _table(
        ["Name", "Id", "Role", "Unit", "Answer", "By", "Time", "Minute", "Arrival (min)"],
        [[r["name"], r["id"], r["role"], r["unit"], r["answer"], _BY.get(r["by"], ""),
          _clock(r["at_ms"]), _min(r["minute"]), "—" if r["eta"] is None else r["eta"]]
         for r in answers(data)],
        {7, 8},
    )  # fmt: skip


#: How an answer came, as the report says it.
_BY = {"voice": "key on the call", "callback": "callback line", "sms": "SMS reply"}
#: SMS results, as the report says them (`ivr.campaign.report.SMS_RESULTS`).
_SMS = {
    "sent": "sent (handed to the gateway)", "delivered": "delivered (receipt)",
    "undelivered": "not delivered (receipt)", "failed": "refused by the gateway",
    "unknown": "unknown (sender lost while sending)",
    "skipped": "not sent (answered before, no mobile, quota met)", "answered": "answered by reply",
}  # fmt: skip


def _channels(data: CampaignData) -> str:
    """The delivery plan, then what each channel did: calls, SMS, mails, answers by each."""
    s = data.summary
    by = Counter(state.answered_by for state in data.states.values() if state.answered)
    plan = " → ".join(s.get("plan") or ["voice"])
    rows: list[list[Any]] = [
        ["Voice", "calls placed", s.get("attempts", 0)],
        ["Voice", "answered with a key on the call", by["voice"]],
        ["Callback line", "answered by calling back", by["callback"]],
    ]
    sms, mail = s.get("sms") or {}, s.get("mail") or {}
    if "sms" in plan or any(sms.values()):
        rows += [["SMS", label, sms.get(key, 0)] for key, label in _SMS.items()]
    if any(mail.values()):
        rows += [["Mail", "sent", mail.get("sent", 0)], ["Mail", "failed", mail.get("failed", 0)]]
    table = _table(["Channel", "", "Count"], rows, {2})
    return f"<p>Delivery plan: {_e(plan)}.</p>{table}"
