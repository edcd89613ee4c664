"""Small self-contained HTML fragments for Jupyter's rich display (`_repr_html_`): a titled card of
tables and lines of text. Standard library only (layer 0), so every layer's results can use it; the full
HTML graph view is talon.viz.html."""

from __future__ import annotations

from html import escape
from typing import Any, Iterable, Sequence

_CARD = "font-family:system-ui,sans-serif;font-size:13px;border:1px solid #ccd;border-radius:6px;padding:8px 12px;margin:4px 0;max-width:100%;overflow-x:auto"
_CELL = "padding:2px 8px;border-bottom:1px solid #eee;text-align:{align}"


def _cell(value: Any, tag: str) -> str:
    align = "right" if isinstance(value, (int, float)) and not isinstance(value, bool) else "left"
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return f'<{tag} style="{_CELL.format(align=align)}">{escape(text)}</{tag}>'


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], caption: str | None = None, max_rows: int = 200) -> str:
    """An HTML table; more than `max_rows` rows are cut with a closing line saying how many were left out."""
    rows = list(rows)
    shown = rows[:max_rows]
    body = "".join("<tr>" + "".join(_cell(v, "td") for v in r) + "</tr>" for r in shown)
    if len(rows) > max_rows:
        body += f'<tr><td colspan="{len(headers)}">… {len(rows) - max_rows} more rows</td></tr>'
    cap = f'<caption style="text-align:left;font-weight:600">{escape(caption)}</caption>' if caption else ""
    head = "<tr>" + "".join(_cell(h, "th") for h in headers) + "</tr>"
    return f'<table style="border-collapse:collapse;margin:4px 0">{cap}<thead>{head}</thead><tbody>{body}</tbody></table>'


def card(title: str, parts: Iterable[str]) -> str:
    """A titled box of `parts`: HTML fragments from `table`, or plain text lines (escaped)."""
    inner = "".join(p if p.startswith("<table") else f"<div>{escape(p)}</div>" for p in parts)
    return f'<div style="{_CARD}"><div style="font-weight:700;margin-bottom:4px">{escape(title)}</div>{inner}</div>'
