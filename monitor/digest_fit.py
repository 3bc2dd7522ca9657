"""How much of each story a digest's HTML can show and still stay under Gmail's clipping size.

Gmail clips a message past about 102 KB and hides the rest behind "View entire message", so a
long digest loses its last sections silently. Each story therefore gets a tier, from a full
card down to a bare numbered link, chosen from the measured size of every tier of every story
(measured by the caller with the templates in use, overrides included):

1. the first few stories are full cards whatever happens (a digest that is only links helps nobody);
2. every story gets at least a bare link if they all fit; if not, the last ones are left out and
   counted (the plain-text part and the webhook still carry them), and so is a story whose link
   alone is absurdly long (a hostile feed);
3. a share of what is left goes to more full cards, then every remaining story is raised to a
   short linked headline, then to a compact entry, then to a full card, as far as the budget goes.

Stories are ranked across sections (every section's first story, then every section's second...)
so the last watch of a long digest is not reduced to links by the first. Each pass is one walk
over the stories: linear in their number, and a story too big for a tier just stays a tier lower.
The planner is pure (sizes come in through `cost`); `fitted_html` measures and renders.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import structlog
from jinja2 import Environment

from monitor.digest import (
    HTML_BUDGET_BYTES,
    DigestView,
    EntryView,
    ItemView,
    LinkView,
    template_environment,
)
from monitor.digest_labels import ARABIC, Labels

log = structlog.get_logger(__name__)

BRIEF_CHARS = 40  # a linked headline in the list of links is cut to this many characters


class Tier(IntEnum):
    """Lower is richer; raising a story means lowering its tier."""

    FULL = 0
    COMPACT = 1
    BRIEF = 2  # the headline's first words, linked
    BARE = 3  # the story's number, linked
    OMITTED = 4  # counted only


# Size in bytes of story `i` (display order) rendered at a tier; never asked for OMITTED.
CostOf = Callable[[int, Tier], int]


@dataclass(frozen=True)
class FitRules:
    budget: int  # bytes of HTML the planned digest may take
    forced_full: int = 3  # first stories shown in full even when links must then be left out
    forced_full_max: int = 12_000  # ... unless one card alone is this big (a hostile headline)
    link_max: int = 2_500  # a story whose bare link is bigger (a hostile address) is only counted
    full_share: float = 0.4  # of the room left once every story has a link, kept for full cards


def priority_order(section_sizes: Sequence[int]) -> list[int]:
    """Display indices ranked by position within their section, then by section."""
    keyed = []
    index = 0
    for section, size in enumerate(section_sizes):
        for rank in range(size):
            keyed.append((rank, section, index))
            index += 1
    keyed.sort()
    return [index for _, _, index in keyed]


def plan_tiers(
    section_sizes: Sequence[int],
    cost: CostOf,
    *,
    base: int,
    omitted_note: int,
    rules: FitRules,
) -> list[Tier]:
    """Tiers in display order. `base` is the measured size of the whole digest with every story
    BARE; `omitted_note` the size of one section's "N more not shown" line."""
    plan = _Plan(section_sizes, cost, base, omitted_note, rules.budget)
    order = priority_order(section_sizes)
    plan.omit_oversized(order, limit=rules.link_max)
    plan.raise_first(order[: rules.forced_full], Tier.FULL, limit=rules.forced_full_max)
    plan.omit_from_the_end(order)
    plan.raise_each(order, Tier.BARE, Tier.FULL, room=int(rules.full_share * plan.room()))
    plan.raise_each(order, Tier.BARE, Tier.BRIEF)
    plan.raise_each(order, Tier.BRIEF, Tier.COMPACT)
    plan.raise_each(order, Tier.COMPACT, Tier.FULL)
    return plan.tiers


class _Plan:
    """The tiers chosen so far and the predicted size they add up to."""

    def __init__(self, section_sizes: Sequence[int], cost: CostOf, base: int, omitted_note: int, budget: int) -> None:
        self.tiers = [Tier.BARE] * sum(section_sizes)
        self.section_of = [section for section, size in enumerate(section_sizes) for _ in range(size)]
        self.cost = cost
        self.total = base
        self.omitted_note = omitted_note
        self.budget = budget
        self.noted: set[int] = set()

    def room(self) -> int:
        return max(0, self.budget - self.total)

    def extra(self, index: int, tier: Tier) -> int:
        return self.cost(index, tier) - self.cost(index, self.tiers[index])

    def raise_first(self, indices: Sequence[int], tier: Tier, *, limit: int) -> None:
        """Raise these stories regardless of the budget, unless one alone costs over `limit`."""
        for index in indices:
            extra = self.extra(index, tier) if self.tiers[index] != Tier.OMITTED else limit + 1
            if extra <= limit:
                self.tiers[index] = tier
                self.total += extra

    def omit_oversized(self, order: Sequence[int], *, limit: int) -> None:
        for index in order:
            if self.cost(index, Tier.BARE) > limit:
                self.omit(index)

    def omit(self, index: int) -> None:
        self.total -= self.cost(index, Tier.BARE)
        self.tiers[index] = Tier.OMITTED
        section = self.section_of[index]
        if section not in self.noted:
            self.noted.add(section)
            self.total += self.omitted_note

    def omit_from_the_end(self, order: Sequence[int]) -> None:
        """Leave out the lowest-ranked BARE stories until the rest fit (each section that loses
        a story gains one "N more" line)."""
        for index in reversed(order):
            if self.total <= self.budget:
                return
            if self.tiers[index] == Tier.BARE:
                self.omit(index)

    def raise_each(self, order: Sequence[int], current: Tier, tier: Tier, room: int | None = None) -> None:
        """Raise every story now at `current` to `tier`, in rank order, while it still fits
        within `room` (default: the whole remaining budget); one that does not fit is skipped."""
        room = self.room() if room is None else min(room, self.room())
        for index in order:
            if self.tiers[index] != current:
                continue
            extra = self.extra(index, tier)
            if extra <= room:
                self.tiers[index] = tier
                self.total += extra
                room -= extra


# -- fitting the HTML under the budget -------------------------------------------------------

FIT_MARGIN = 1_500  # bytes kept free for what per-story sizes miss (a run of links split in two)
FIT_ATTEMPTS = 3


def fitted_html(view: DigestView, template_dir: Path | None = None, budget: int = HTML_BUDGET_BYTES) -> str:
    """The digest HTML with each story at the richest tier that keeps it under `budget` bytes.
    Sizes are measured with the templates in use, so an override is fitted too; if the result
    still overshoots (sizes are not quite additive), plan again with the overshoot taken off."""
    env = template_environment(template_dir)
    html = _render(env, view)
    if _size(html) <= budget:
        return html
    sizes = [len(section.items) for section in view.sections]
    costs = _TierCosts(env, view)
    base = _size(_render(env, with_tiers(view, [Tier.BARE] * sum(sizes))))
    target = budget - FIT_MARGIN
    for _ in range(FIT_ATTEMPTS):
        rules = FitRules(budget=target, forced_full_max=budget // 8, link_max=budget // 40)
        tiers = plan_tiers(sizes, costs.of, base=base, omitted_note=costs.omitted_note(), rules=rules)
        html = _render(env, with_tiers(view, tiers))
        if _size(html) <= budget:
            log.info("digest HTML fitted under its size budget", size=_size(html), budget=budget,
                     **{tier.name.lower(): tiers.count(tier) for tier in Tier})
            return html
        target -= _size(html) - budget + FIT_MARGIN
    log.warning("digest HTML over its size budget (does a template override ignore section.entries?)",
                size=_size(html), budget=budget)
    return html


def _render(env: Environment, view: DigestView) -> str:
    return env.get_template("digest.html").render(digest=view)


def _size(html: str) -> int:
    """Bytes as the mail reader gets them: UTF-8, each line ending CRLF once in the message."""
    return len(html.encode("utf-8")) + html.count("\n")


class _TierCosts:
    """Bytes of each story at each tier, rendered once each with the macros the digest uses."""

    SEPARATOR = len(" · ".encode("utf-8"))

    def __init__(self, env: Environment, view: DigestView) -> None:
        self.card = env.get_template("_item.html").module.card  # type: ignore[attr-defined]
        self.small = env.get_template("_compact.html").module  # type: ignore[attr-defined]
        self.items = [item for section in view.sections for item in section.items]
        self.labels = view.labels
        self.known: dict[tuple[int, Tier], int] = {}

    def of(self, index: int, tier: Tier) -> int:
        key = (index, tier)
        if key not in self.known:
            self.known[key] = self._measure(index, tier)
        return self.known[key]

    def _measure(self, index: int, tier: Tier) -> int:
        item = self.items[index]
        if tier == Tier.FULL:
            return _size(str(self.card(item)))
        if tier == Tier.COMPACT:
            return _size(str(self.small.compact(item)))
        if tier in (Tier.BRIEF, Tier.BARE):
            return _size(str(self.small.link(link_view(item, index + 1, brief=tier == Tier.BRIEF)))) + self.SEPARATOR
        return 0

    def omitted_note(self) -> int:
        return _size(str(self.small.omitted(self.labels.other_news.format(1000), self.labels)))


def brief_headline(headline: str) -> str:
    """The first words of a headline, cut at a word boundary."""
    if len(headline) <= BRIEF_CHARS:
        return headline
    cut = headline.rfind(" ", 0, BRIEF_CHARS)
    return headline[: cut if cut > 0 else BRIEF_CHARS] + " …"


def link_view(item: ItemView, number: int, *, brief: bool) -> LinkView:
    return LinkView(number=number, text=brief_headline(item.headline) if brief else str(number), href=item.href)


def with_tiers(view: DigestView, tiers: Sequence[Tier]) -> DigestView:
    """The view with each section's entries built from the stories' tiers (display order)."""
    sections = []
    start = 0
    for section in view.sections:
        chosen = tiers[start : start + len(section.items)]
        entries = section_entries(section.items, chosen, first_number=start + 1, labels=view.labels)
        omitted = sum(1 for tier in chosen if tier == Tier.OMITTED)
        label = view.labels.other_news.format(omitted) if omitted else None
        sections.append(dataclasses.replace(section, entries=entries, omitted_label=label))
        start += len(section.items)
    return dataclasses.replace(view, sections=tuple(sections))


def section_entries(items: Sequence[ItemView], tiers: Sequence[Tier], first_number: int,
                    labels: Labels = ARABIC) -> tuple[EntryView, ...]:
    """Cards and compact lines one per story; consecutive linked stories gathered in one run."""
    entries: list[EntryView] = []
    run: list[LinkView] = []

    def close_run() -> None:
        if run:
            counted = labels.other_news if entries else labels.news
            entries.append(EntryView("links", links=tuple(run), label=counted.format(len(run))))
            run.clear()

    for offset, (item, tier) in enumerate(zip(items, tiers)):
        if tier in (Tier.BRIEF, Tier.BARE):
            run.append(link_view(item, first_number + offset, brief=tier == Tier.BRIEF))
            continue
        close_run()
        if tier in (Tier.FULL, Tier.COMPACT):
            entries.append(EntryView("full" if tier == Tier.FULL else "compact", item))
    close_run()
    return tuple(entries)
