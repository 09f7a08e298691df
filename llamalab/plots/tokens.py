"""An answer as coloured tokens, from the token inspector's records (`TokenView.to_records()`): each
token's background goes from red (the model was unsure of it) to green (it was sure), its hover
title holds the probability, the entropy and the top alternatives, and against a second model the
per-token KL shows under each token and the first token where the greedy choices part is framed.
"""

from __future__ import annotations

import html

from ..core.metrics import metric

PARTING_STYLE = "outline:3px solid #6a3d9a;outline-offset:1px"


def token_colour(prob: float) -> str:
    """Background for a token of probability `prob`: red at 0, amber at 0.5, green at 1."""
    p = min(max(float(prob), 0.0), 1.0)
    return f"hsl({120 * p:.0f}, 75%, 82%)"


def tokens_html(records, title: str = "") -> str:
    """HTML of the answer's tokens (records: dicts or a DataFrame with the tokens group's keys).
    The first record whose `parts` is true is framed and labelled."""
    rows = records.to_dict("records") if hasattr(records, "to_dict") else list(records)
    first = next((r["position"] for r in rows if r.get("parts")), None)
    spans = "".join(_span(r, r["position"] == first) for r in rows)
    head = f"<div style='font-weight:bold;margin-bottom:4px'>{html.escape(title)}</div>"
    return (
        f"<div class='llamalab-tokens'>{head if title else ''}"
        f"<div style='line-height:2.4;font-family:monospace;font-size:13px'>{spans}</div>"
        f"{_legend(rows, first)}</div>"
    )


def _span(r: dict, parting: bool) -> str:
    text = html.escape(r["token"].replace("\n", "↵"))
    kl = r.get("token_kl")
    under = (
        f"<span style='display:block;font-size:9px;line-height:1;color:#555'>{kl:.2f}</span>"
        if kl is not None and kl == kl
        else ""
    )
    style = (
        f"background:{token_colour(r['token_prob'])};white-space:pre;padding:1px 1px;"
        f"margin:0 1px;border-radius:3px;display:inline-block;text-align:center;"
        f"{PARTING_STYLE if parting else ''}"
    )
    cls = "llamalab-token llamalab-parting" if parting else "llamalab-token"
    return f"<span class='{cls}' style='{style}' title='{_title(r)}'>{text}{under}</span>"


def _title(r: dict) -> str:
    lines = [
        f"{metric('token_prob').label} {r['token_prob']:.3f}",
        f"{metric('token_entropy').label} {r['token_entropy']:.2f}",
        f"{metric('alternatives').label}: {r['alternatives']}",
    ]
    if r.get("other_top1") is not None:
        other = r.get("other_prob")
        lines.append(
            f"{metric('other_prob').label} "
            f"{'—' if other is None or other != other else format(other, '.3f')}, "
            f"{metric('other_top1').label} {r['other_top1']!r}"
        )
    if r.get("token_kl") is not None and r["token_kl"] == r["token_kl"]:
        lines.append(f"{metric('token_kl').label} {r['token_kl']:.4f}")
    return html.escape("\n".join(lines), quote=True)


def _legend(rows: list[dict], first) -> str:
    scale = "".join(
        f"<span style='background:{token_colour(p)};padding:0 6px'>{p:.1f}</span>"
        for p in (0.0, 0.25, 0.5, 0.75, 1.0)
    )
    kl = any(r.get("token_kl") is not None for r in rows)
    notes = [f"{metric('token_prob').label}: {scale}"]
    if kl:
        notes.append(f"numbers under the tokens: {metric('token_kl').label}")
    if any(r.get("other_top1") is not None for r in rows):
        notes.append(
            "greedy choices never part"
            if first is None
            else f"<span style='{PARTING_STYLE}'>framed</span>: the first token where the greedy "
            f"choices part (position {first})"
        )
    notes.append("hover a token for its alternatives")
    return f"<div style='font-size:11px;color:#444;margin-top:4px'>{' · '.join(notes)}</div>"
