"""Every word a digest or an alert shows that is not taken from a feed, in each digest language.

A digest is read in one language (`[[digests]] language`, "ar" by default, or "en"): its
title, section headings, counts, dates, badges, topic tags and the "also reported by" line
all follow it, while the articles keep their own words. The templates hold no words of
their own: they read them from the `Labels` the view carries, so one set of templates
serves both languages, and a template override gets the reader's language for free.

Counting differs by language (Arabic has six plural forms: «خبران», «3 أخبار», «11 خبرًا»),
so counts are `CountForms`, never a word pasted after a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

Language = Literal["ar", "en"]
LANGUAGES: tuple[Language, ...] = ("ar", "en")
DEFAULT_LANGUAGE: Language = "ar"


# -- counting --------------------------------------------------------------------------------


def arabic_plural_category(n: int) -> str:
    """CLDR plural rules for Arabic: 3–10 take the plural, 11–99 the accusative singular."""
    if n == 0:
        return "zero"
    if n == 1:
        return "one"
    if n == 2:
        return "two"
    if 3 <= n % 100 <= 10:
        return "few"
    if 11 <= n % 100 <= 99:
        return "many"
    return "other"


def english_plural_category(n: int) -> str:
    """English has one and other; zero gets its own words ("no new stories")."""
    return "zero" if n == 0 else "one" if n == 1 else "other"


@dataclass(frozen=True)
class CountForms:
    """The six CLDR plural forms (English uses zero, one and other); `{n}` is the number."""

    zero: str
    one: str
    two: str
    few: str
    many: str
    other: str
    language: Language = "ar"

    def format(self, n: int) -> str:
        category = arabic_plural_category(n) if self.language == "ar" else english_plural_category(n)
        return getattr(self, category).format(n=n)


def english_counts(zero: str, one: str, other: str) -> CountForms:
    return CountForms(zero=zero, one=one, two=other, few=other, many=other, other=other, language="en")


# -- dates -----------------------------------------------------------------------------------

_AR_MONTHS = ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر")
_AR_WEEKDAYS = ("الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def aware(moment: datetime) -> datetime:
    """Naive datetimes are UTC here (what SQLite hands back); never the host's local zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- the twelve topics of the default rules --------------------------------------------------

# Tags are written as one word (underscores for spaces) so they read as hashtags in both
# scripts. A topic a user adds to [topics] and not listed here shows as its id.
_TOPICS_AR = {
    "defense": "دفاع",
    "security": "أمن",
    "counter_terrorism": "مكافحة_الإرهاب",
    "cyber": "أمن_سيبراني",
    "trade_investment": "تجارة_واستثمار",
    "education": "تعليم",
    "health": "صحة",
    "consular": "شؤون_قنصلية",
    "culture": "ثقافة",
    "environment": "بيئة",
    "energy": "طاقة",
    "political": "سياسة",
}
_TOPICS_EN = {
    "defense": "defense",
    "security": "security",
    "counter_terrorism": "counter_terrorism",
    "cyber": "cybersecurity",
    "trade_investment": "trade_and_investment",
    "education": "education",
    "health": "health",
    "consular": "consular_affairs",
    "culture": "culture",
    "environment": "environment",
    "energy": "energy",
    "political": "politics",
}

_PARTNERS_AR = {"us": "الولايات المتحدة", "usa": "الولايات المتحدة", "uk": "المملكة المتحدة", "gb": "المملكة المتحدة"}
_PARTNERS_EN = {"us": "United States", "usa": "United States", "uk": "United Kingdom", "gb": "United Kingdom"}

_ORDINAL_SUFFIX = {1: "st", 2: "nd", 3: "rd"}


def english_ordinal(n: int) -> str:
    """16 -> "16th", 21 -> "21st", 12 -> "12th"."""
    suffix = "th" if 11 <= n % 100 <= 13 else _ORDINAL_SUFFIX.get(n % 10, "th")
    return f"{n}{suffix}"


# -- the label table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """The words and the writing direction of one digest language."""

    lang: Language
    dir: str  # "rtl" | "ltr"
    align: str  # the side text starts on: "right" | "left"
    end: str  # the other side: "left" | "right"
    digest_title: str
    alert_title: str
    news: CountForms  # "7 أخبار" / "7 stories"
    other_news: CountForms  # a run of linked stories after cards, and those left out
    other_outlets: CountForms
    also_reported_by: str  # the heading of the outlets line, without the colon
    list_separator: str
    and_word: str  # between the named outlets and the "N other outlets" count
    other_language_mark: str  # after an outlet that wrote in the other language, "{name}" replaced
    untitled: str
    no_news: str
    omitted_note: str  # "{label}" is e.g. "3 more stories"
    digest_footer: str  # "{time}" replaced; the templates add " (time zone)."
    alert_footer: str
    delivery_id: str
    default_round_word: str
    months: tuple[str, ...]
    weekdays: tuple[str, ...]
    partners: dict[str, str]
    topics: dict[str, str]

    def count(self, forms: str, n: int) -> str:
        return getattr(self, forms).format(n)

    def date_label(self, moment: datetime, tz: ZoneInfo) -> str:
        """The digest's day: «الأحد 22 نوفمبر 2026» / "Sunday 22 November 2026"."""
        local = aware(moment).astimezone(tz)
        weekday, month = self.weekdays[local.weekday()], self.months[local.month - 1]
        if self.lang == "ar":
            return f"{weekday} {local.day} {month} {local.year}"
        return f"{weekday}, {local.day} {month} {local.year}"

    def time_label(self, moment: datetime, tz: ZoneInfo) -> str:
        """A moment: «22 نوفمبر 2026، 07:30» / "22 November 2026, 07:30"."""
        local = aware(moment).astimezone(tz)
        comma = "،" if self.lang == "ar" else ","
        return f"{local.day} {self.months[local.month - 1]} {local.year}{comma} {local:%H:%M}"

    def topic(self, topic_id: str) -> str:
        """A topic tag's text without its "#": the language's name, else the id as a word."""
        return self.topics.get(topic_id) or "_".join(topic_id.split())

    def partner(self, watch: str) -> str | None:
        """The partner badge, from the watch id's last part ("kw-us" -> the United States)."""
        return self.partners.get(watch.rsplit("-", 1)[-1].lower())

    def round_label(self, number: int, word: str = "") -> str:
        """A round badge in the framework's own word: «الجولة 5», «الدورة 12», "Round 5",
        "Session 16"; a word holding "{n}" or "{nth}" is a pattern ("{nth} JSG" -> "16th JSG")."""
        word = word.strip() or self.default_round_word
        if "{n}" in word or "{nth}" in word:
            return word.replace("{nth}", english_ordinal(number)).replace("{n}", str(number))
        if self.lang == "en":
            word = word[:1].upper() + word[1:]
        return f"{word} {number}"

    def outlet(self, name: str, language: str | None) -> str:
        """An outlet's name, marked when its write-up is in the other language."""
        if language is None or language == self.lang:
            return name
        return self.other_language_mark.format(name=name)

    def omitted(self, label: str) -> str:
        return self.omitted_note.format(label=label)

    def digest_footer_line(self, time: str) -> str:
        return self.digest_footer.format(time=time)

    def alert_footer_line(self, time: str) -> str:
        return self.alert_footer.format(time=time)


ARABIC = Labels(
    lang="ar",
    dir="rtl",
    align="right",
    end="left",
    digest_title="موجز الحوارات الاستراتيجية",
    alert_title="تنبيه عاجل",
    news=CountForms(zero="لا أخبار جديدة", one="خبر واحد", two="خبران", few="{n} أخبار", many="{n} خبرًا", other="{n} خبر"),
    other_news=CountForms(
        zero="", one="خبر آخر", two="خبران آخران", few="{n} أخبار أخرى", many="{n} خبرًا آخر", other="{n} خبر آخر"
    ),
    other_outlets=CountForms(
        zero="", one="مصدر آخر", two="مصدران آخران", few="{n} مصادر أخرى", many="{n} مصدرًا آخر", other="{n} مصدر آخر"
    ),
    also_reported_by="أوردته أيضًا",
    list_separator="، ",
    and_word=" و",
    other_language_mark="{name} (بالإنجليزية)",
    untitled="(بلا عنوان)",
    no_news="لم تُرصد أخبار جديدة عن الحوارات منذ الموجز السابق.",
    omitted_note="تعذّر عرض {label} هنا بسبب حجم الرسالة؛ نسختها النصية تضمّ الأخبار كلها.",
    digest_footer="أُعدّ هذا الموجز آليًا بواسطة dialogue-monitor في {time}",
    alert_footer="تنبيه آلي من dialogue-monitor في {time}",
    delivery_id="معرّف الإرسال",
    default_round_word="الجولة",
    months=_AR_MONTHS,
    weekdays=_AR_WEEKDAYS,
    partners=_PARTNERS_AR,
    topics=_TOPICS_AR,
)

ENGLISH = Labels(
    lang="en",
    dir="ltr",
    align="left",
    end="right",
    digest_title="Strategic Dialogues Digest",
    alert_title="Alert",
    news=english_counts(zero="no new stories", one="1 story", other="{n} stories"),
    other_news=english_counts(zero="", one="1 more story", other="{n} more stories"),
    other_outlets=english_counts(zero="", one="1 other outlet", other="{n} other outlets"),
    also_reported_by="Also reported by",
    list_separator=", ",
    and_word=" and ",
    other_language_mark="{name} (Arabic)",
    untitled="(untitled)",
    no_news="No new stories about the dialogues since the last digest.",
    omitted_note="{label} could not be shown here because of the message's size; its plain-text part has every story.",
    digest_footer="Prepared automatically by dialogue-monitor at {time}",
    alert_footer="Automatic alert from dialogue-monitor at {time}",
    delivery_id="Delivery id",
    default_round_word="round",
    months=_EN_MONTHS,
    weekdays=_EN_WEEKDAYS,
    partners=_PARTNERS_EN,
    topics=_TOPICS_EN,
)

_LABELS: dict[str, Labels] = {"ar": ARABIC, "en": ENGLISH}


def labels_for(language: str) -> Labels:
    """The label table of a digest language (validated in config; Arabic for anything else)."""
    return _LABELS.get(language, ARABIC)


def other_language(language: str) -> Language:
    return "en" if language == "ar" else "ar"


def article_language(declared: str | None, title: str = "") -> Language:
    """"ar" or "en" for an article: what was stored for it ("en-GB" counts as "en"), else the
    script of its title. Only for choosing and marking write-ups; it decides nothing else."""
    code = (declared or "").split("-", 1)[0].split("_", 1)[0].strip().lower()
    if code in ("ar", "en"):
        return code  # type: ignore[return-value]
    if code in ("fa", "ur"):
        return "ar"  # the Arabic script reads with the Arabic digest's direction
    if code:
        return "en"
    arabic = sum(1 for char in title if "\u0600" <= char <= "\u06ff")
    latin = sum(1 for char in title if char.isascii() and char.isalpha())
    return "en" if latin > arabic else "ar"
