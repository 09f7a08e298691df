"""BlindArena: two anonymous answers to the same prompt, a vote, the next pair; then Reveal shows
the leaderboard (Bradley–Terry scores with intervals from every vote in the store, the room's board
in a room) beside each contender's perplexity and KL, and which answer was which.

The round (`llamalab.blind_round`, or in a room the one the educator published on the board:
`llamalab.workshop.room_round`) holds the answers and the hidden mapping; `bradley_terry` rates;
`leaderboard_figure` draws; the store (`llamalab.workshop.votes_store`) keeps the votes. The widget
only shows and wires them: no contender's name appears in it before Reveal.
"""

from __future__ import annotations

import getpass
import html

import ipywidgets as w
import plotly.graph_objects as go

from llamalab import InvalidSetting, LlamalabError, bradley_terry, metric
from llamalab.plots import QUALITY_METRICS, leaderboard_figure, update_figure
from llamalab.workshop import room_round, votes_store

from ._common import ErrorBox, guarded, html_table, message_html, pre

CHOICES = (("1 is better", "1"), ("Tie", "tie"), ("2 is better", "2"))
RATING_COLUMNS = ("rank", "contender", "bt_score", "bt_low", "bt_high", "votes", "wins", "ties")


class BlindArena(w.VBox):
    """Vote on `blind`'s pairs (a BlindRound: `llamalab.blind_round`; None: the round published on
    the room's board, no model loaded) without knowing who wrote which answer; `votes`: where the
    votes go and the leaderboard reads them (default: the room's board in a room, else this
    kernel); `voter`: the name on the votes (editable here)."""

    def __init__(self, blind=None, votes=None, voter: str | None = None):
        blind = room_round() if blind is None else blind
        self.blind, self.store = blind, votes if votes is not None else votes_store()
        self.cast: dict[str, dict] = {}  # pair_id → this learner's vote record
        self.ratings = None
        self.index = 0
        self.errors = ErrorBox()
        self.voter = w.Text(value=_user() if voter is None else voter, description="Your name")
        self.status = w.HTML()
        self.prompt = w.HTML()
        self.answers = (w.HTML(), w.HTML())
        self.same = w.HTML()
        self.buttons = [w.Button(description=d, tooltip=c) for d, c in CHOICES]
        for b, (_, choice) in zip(self.buttons, CHOICES):
            b.on_click(guarded(self.errors)(lambda _, c=choice: self.vote(c)))
        self.skip_button = w.Button(description="Skip", icon="forward")
        self.skip_button.on_click(lambda _: self.next())
        self.reveal_button = w.Button(
            description="Reveal", button_style="warning", icon="eye", disabled=True
        )
        self.reveal_button.on_click(guarded(self.errors)(lambda _: self.reveal()))
        self.progress = w.IntProgress(value=0, min=0, max=max(1, len(blind.pairs)))
        self.figure = go.FigureWidget()
        self.table = w.HTML()
        self.mapping = w.HTML()
        self.results = w.VBox([self.figure, self.table, self.mapping])
        self.results.layout.display = "none"
        super().__init__(
            children=[
                w.HBox([self.voter, self.progress, self.status]),
                self.prompt,
                w.HBox(
                    [_column("Answer 1", self.answers[0]), _column("Answer 2", self.answers[1])]
                ),
                self.same,
                w.HBox([*self.buttons, self.skip_button, self.reveal_button]),
                self.errors,
                self.results,
            ]
        )
        self.add_class("llamalab-blind-arena")
        self._show()

    # ---------------------------------------------------------------- actions

    @property
    def current(self):
        """The pair on screen (None when every pair was shown)."""
        return self.blind.pairs[self.index] if self.index < len(self.blind.pairs) else None

    def vote(self, choice: str) -> dict:
        """What a vote button does: the record for this pair ("1", "2" or "tie"), stored, then the
        next pair."""
        pair = self.current
        if self.blind.revealed:
            raise InvalidSetting(
                "This round was revealed: a vote now would not be blind.",
                "Start a new round (llamalab.blind_round) to vote again.",
            )
        if pair is None:
            raise _done()
        record = self.store.add(self.blind.vote(pair.pair_id, choice, self.voter.value.strip()))
        self.cast[pair.pair_id] = record
        self.errors.clear()
        self.next()
        return record

    def next(self) -> None:
        """Show the next pair (or that all were shown)."""
        self.index = min(self.index + 1, len(self.blind.pairs))
        self._show()

    def reveal(self) -> None:
        """Show who wrote which answer, and the leaderboard from every vote in the store (again:
        refresh with the room's latest votes)."""
        self.errors.clear()
        self.blind.reveal()
        self.mapping.value = self._mapping_html()
        self.results.layout.display = None
        self.reveal_button.description = "Refresh leaderboard"
        self.reveal_button.disabled = False
        for b in [*self.buttons, self.skip_button]:
            b.disabled = True  # votes from here on would not be blind
        mine = set(self.blind.contenders)
        votes = [v for v in self.store.records() if v["a"] in mine and v["b"] in mine]
        try:
            self.ratings = bradley_terry(votes)
        except LlamalabError as e:  # too few votes yet, or contenders never compared
            self.errors.show(e, kind="warning")
            self.table.value = self._quality_only()
            return
        update_figure(self.figure, leaderboard_figure(self.ratings, self.blind.quality))
        self.table.value = self._ratings_html()

    # ---------------------------------------------------------------- drawing

    def _show(self) -> None:
        pair, n = self.current, len(self.blind.pairs)
        self.progress.value = len(self.cast)
        self.reveal_button.disabled = pair is not None or not self.cast  # after voting, not during
        for b in self.buttons:
            b.disabled = pair is None
        self.skip_button.disabled = pair is None
        if pair is None:
            self.status.value = f"All {n} pairs shown: {len(self.cast)} voted. Press Reveal."
            if not self.cast:
                self.status.value = f"All {n} pairs shown, none voted: nothing to reveal."
            self.prompt.value = self.same.value = ""
            for a in self.answers:
                a.value = ""
            return
        self.status.value = f"pair {self.index + 1} of {n} · {len(self.cast)} voted"
        self.prompt.value = f"<b>Prompt</b>{pre(pair.prompt)}"
        self.answers[0].value, self.answers[1].value = pre(pair.answer_1), pre(pair.answer_2)
        self.same.value = (
            message_html("The two answers are identical: a tie is the honest vote.", kind="info")
            if pair.identical
            else ""
        )

    def _rows(self) -> list[dict]:
        return [{**r.to_dict(), **self.blind.quality.get(r.name, {})} for r in self.ratings.ratings]

    def _ratings_html(self) -> str:
        fmt = {k: "{:.0f}".format for k in ("bt_score", "bt_low", "bt_high")}
        cols = {k: fmt.get(k) for k in RATING_COLUMNS}
        cols.update({k: "{:.4g}".format for k in QUALITY_METRICS if _measured(self.blind, k)})
        heads = {k: metric(k).label for k in cols}
        n = self.ratings.votes
        note = f"<p>{n} votes · 95 % intervals from {self.ratings.resamples} bootstrap resamples"
        if len(self.ratings.names) == 2:
            a, b = (r.name for r in self.ratings.ratings)
            p = self.ratings.win_probability(a, b)
            verdict = "the room tells them apart" if p.low > 0.5 else "not told apart yet"
            note += (
                f" · P({html.escape(a)} preferred) = {p.mean:.2f} "
                f"[{p.low:.2f}, {p.high:.2f}]: {verdict}"
            )
        if getattr(self.store, "skipped", None):
            note += f" · {len(self.store.skipped)} malformed record(s) skipped"
        return html_table(self._rows(), cols, heads) + note + "</p>"

    def _quality_only(self) -> str:
        rows = [{"contender": c, **self.blind.quality.get(c, {})} for c in self.blind.contenders]
        cols = {"contender": None}
        cols.update({k: "{:.4g}".format for k in QUALITY_METRICS if _measured(self.blind, k)})
        return html_table(rows, cols, {k: metric(k).label for k in cols})

    def _mapping_html(self) -> str:
        labels = {"a": "Answer 1", "b": "Answer 2", "tie": "tie"}
        rows = [
            {
                "prompt": r.prompt,
                "answer 1": r.answer_1,
                "answer 2": r.answer_2,
                "your vote": labels[self.cast[r.pair_id]["winner"]]
                if r.pair_id in self.cast
                else "—",
            }
            for r in self.blind.reveal()
        ]
        return "<b>Which was which</b>" + html_table(rows, dict.fromkeys(rows[0] if rows else []))


def _column(title: str, body: w.HTML) -> w.VBox:
    return w.VBox([w.HTML(f"<b>{title}</b>"), body], layout=w.Layout(width="48%", margin="0 6px"))


def _measured(blind, key: str) -> bool:
    return any(key in q for q in blind.quality.values())


def _done() -> InvalidSetting:
    return InvalidSetting("Every pair was shown.", "Press Reveal to see the leaderboard.")


def _user() -> str:
    try:
        return getpass.getuser()[:40] or "learner"
    except Exception:
        return "learner"
