"""Which happening of a round an article reports: a preview, an arrival, a preparatory
meeting, the session itself, a working group, a postponement or a later follow-up.

One round is many happenings, often hours apart: the ambassador's preview the day before,
the delegation's arrival, a working group's meeting, the ministerial session, a ministry's
statement on its outcome. Their write-ups share the round, the watch and most names, so
time and keywords cannot tell them apart and they merged into one story (on a held-out set,
every wrong story pair was of this kind). What tells them apart is how the text frames the
happening, mostly in the headline: tense and cue words (غداً، المرتقب، يصل، التحضيري،
"ahead of", "arrives", "will hold", "preparatory"). A narrower time window would not do: a
preview can come minutes before the session's first report.

The kind is read from the headline first; the lead sentence is read only when the headline
names no kind (a section label such as «محليات», a quote), and then only for the kinds a
lead names as its own news: leads recount the background too ("two months after its
postponement"), so postponements, arrivals and follow-ups count in headlines only. Cues are
tried in a fixed order, most specific first, so that "delegation arrives for the preparatory
meeting" is an arrival and "working group meets ahead of the session" a working group. An article with no cue has
no kind (None): it may join a story of any kind, but never bridges two (StoryExtent).

Pure: text in, a kind out; the patterns are written on monitor.arabic.normalize's output
(ة→ه, ى→ي, أ/إ/آ→ا, no diacritics, lower case), which folds the spellings feeds use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

from monitor.arabic import normalize

EventKind = Literal["postponement", "arrival", "preparatory", "working_group", "preview", "follow_up", "session"]

# Arabic words take proclitics: و ف ب ل ك and the article ال; \b works on Arabic letters.
_PRE = r"\b(?:[وفبلك]|وب|ول|وال|بال|لل|ال)?"


def _arabic(*stems: str) -> str:
    """Stems as written (يترأس، تأجيل), matched in their normalised spelling."""
    return _PRE + "(?:" + "|".join(re.escape(normalize(stem)) for stem in stems) + r")"


def _english(*phrases: str) -> str:
    return r"\b(?:" + "|".join(phrases) + r")\b"


# The dialogue's meetings themselves, for "next session" and "the session opens tomorrow".
_MEETING_AR = r"(?:الجوله|جولته|جولتها|الدوره|دورتها|دورته|الاجتماع|اجتماع|اجتماعات|اجتماعها|الحوار|مجموعه التوجيه|لجنه التوجيه)"

_CUES: tuple[tuple[EventKind, re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (kind, re.compile(arabic), re.compile(english, re.IGNORECASE))
    for kind, arabic, english in (
        (
            "postponement",
            _arabic("تاجيل", "تاجل", "تؤجل", "يؤجل", "ارجاء", "ارجئ", "ارجات", "ارجا", "الغاء", "الغيت"),
            _english("postpone[sd]?", "postponement", "delay(?:s|ed)?", "put off", "call(?:s|ed)? off", "cancel(?:s|led|ed)?", "rescheduled?"),
        ),
        (
            "arrival",
            _arabic("يصل", "تصل", "وصل", "وصلت", "يصلان", "وصول", "يحل ضيفا", "يبدا زياره", "تبدا زياره", "يستقبل وفد"),
            _english("arrives?", "arrived", "arrival", "lands? in", "landed in", "begins? (?:a |an )?(?:\\w+ )?visit"),
        ),
        (
            "preparatory",
            _arabic("تحضيري", "تحضيريه", "التحضير", "تحضيرات", "التحضيرات", "الترتيبات", "الاعداد ل", "تمهيدا ل", "استعدادا ل", "تمهيدي"),
            _english("preparatory", "preparations?", "prepar(?:e|es|ing) for", "pre-meeting", "planning meeting"),
        ),
        (
            "working_group",
            # «مجموعة التوجيه» is the Joint Steering Group itself; any other «مجموعة …» of the
            # framework is one of its working groups or sub-groups.
            # A «group of» (مجموعة من) or the G20 (مجموعة العشرين) is no working group.
            _PRE + r"(?:مجموعه|مجموعات|فريق|فرق) (?:ال)?عمل\b|" + _PRE + r"مجموعه (?!التوجيه|العشرين|الدول|السبع)ال\w+"
            + "|" + _arabic("لجنه فرعيه", "اللجنه الفرعيه", "اللجان الفرعيه"),
            _english("working[- ]groups?", "sub-?groups?", "sub-?committees?", "technical committee", "wg"),
        ),
        (
            "preview",
            _arabic("غدا", "بعد غد", "المرتقب", "المرتقبه", "المزمع", "المزمعه", "المقرر", "المقرره", "سيعقد", "ستعقد",
                    "ستنطلق", "سينطلق", "ستبدا", "سيبدا", "يستعد", "تستعد", "الاسبوع المقبل", "الشهر المقبل",
                    "نهايه الشهر", "مطلع الشهر")
            + "|" + _MEETING_AR + r" (?:\w+ )?(?:المقبل|المقبله|القادم|القادمه)",
            _english("will (?:hold|host|open|begin|start|convene|meet|launch|focus|discuss|address|take place)", "ahead of",
                     "upcoming", "tomorrow", "next week", "next month", "set to", "due to (?:hold|open|begin|start|meet)",
                     "to (?:hold|host|open|begin|start|convene|launch|focus|prioriti[sz]e|discuss|address)",
                     "next (?:round|session|meeting|jsg|joint steering|strategic dialogue)"),
        ),
        (
            "follow_up",
            _arabic("نتائج", "مخرجات", "اعقاب", "بعد اختتام", "يشيد ب", "تشيد ب", "اشاد ب", "اشادت ب", "يثمن", "تثمن", "يرحب ب", "ترحب ب"),
            _english("outcomes?", "results? of", "follow(?:s|ed)?[- ]up", "welcom(?:e|es|ed) (?:the )?(?:outcome|results)"),
        ),
        (
            "session",
            _arabic("يختتم", "تختتم", "يختتمان", "تختتمان", "اختتام", "ختام", "بختام", "اختتمت", "اختتم", "انطلاق", "انطلقت", "انطلق",
                    "يترأس", "تترأس", "يترأسان", "ترأس", "ترأسا", "تراس", "يراس", "يراسان", "تعقد", "يعقد", "يعقدان", "عقد", "عقدت", "عقدا",
                    "بيان مشترك", "البيان المشترك", "البيان الختامي", "توقيع", "يوقع", "يوقعان", "توقعان", "وقعت", "وقعا",
                    "الاجتماع الوزاري", "تفتتح", "يفتتح", "افتتاح", "استضافت", "تستضيف", "توجت"),
            _english("joint statement", "holds?", "held", "opens?", "opened", "conclude[sd]?", "closes?", "closed", "co-chair(?:s|ed)?",
                     "chair(?:s|ed)?", "signs?", "signed", "hosts?", "hosted", "launch(?:es|ed)?", "convene[sd]?", "wraps? up", "meet", "met"),
        ),
    )
)

# The opening of the lead: a report names its happening as the lead's subject ("the
# security working group met...", «اختتمت أعمال...»); further on the lead recounts the
# framework ("...and its working groups on defence"), which names no happening.
_LEAD_WORDS = 16
_DATELINE = re.compile(r"^.{0,60}?(?:--|—|–)\s*|^[^:\n]{0,30}:\s*")
_LEAD_CHARS = 300
_SENTENCE_END = re.compile(r"(?<![A-Z])\.(?=\s|$)|[!?؟]")  # "U.S. and Kuwait" goes on

_LEAD_KINDS = frozenset({"preparatory", "working_group", "preview", "session"})


def event_kind(title: str, body: str = "") -> EventKind | None:
    """The kind of happening the article reports, from its headline or else its lead."""
    opening = " ".join(lead_sentence(body or "").split()[:_LEAD_WORDS])
    return _kind_of(normalize(title or "")) or _kind_of(normalize(opening), _LEAD_KINDS)


def _kind_of(text: str, kinds: frozenset[str] | None = None) -> EventKind | None:
    if not text.strip():
        return None
    for kind, arabic, english in _CUES:
        if (kinds is None or kind in kinds) and (arabic.search(text) or english.search(text)):
            return kind
    return None


def lead_sentence(body: str) -> str:
    """The body's first sentence, after a dateline such as «لندن - 28 - 11 (كونا) --» or
    "KUWAIT, Nov 18 (KUNA) --": where a report says what happened. Its topics are the
    happening's subject (see dedup.decide's working groups)."""
    head = _DATELINE.sub("", " ".join(body[: 2 * _LEAD_CHARS].split()), count=1)[:_LEAD_CHARS]
    end = _SENTENCE_END.search(head)
    return head[: end.start()] if end else head


def happening_subject(classify: Callable[[str, str], Any], title: str, body: str) -> Iterable[str]:
    """The topics of the headline and lead (`classify` is RuleSet.classify): what this
    happening was about, where the whole text's topics also list the background."""
    return getattr(classify(title or "", lead_sentence(body or "")), "topics", ())  # a classifier may find none
