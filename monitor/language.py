"""An article's language from its own letters.

Feeds declare one language for all their items, but a KUNA or embassy feed can carry both,
and the digest picks a headline by language and dedup joins write-ups across languages: so
the text decides when it is clearly written in one script, and the feed's word otherwise.
"""

from __future__ import annotations

# Enough of the text to tell the script; a title alone usually is.
_SAMPLE_CHARS = 2000
# A Latin-script text quoting an Arabic name stays English, and the other way round.
_DOMINANT_SHARE = 0.6
_ARABIC_SCRIPT = frozenset({"ar", "fa", "ur"})


def text_language(title: str, body: str, declared: str | None = None) -> str | None:
    """The feed's `declared` language unless the letters contradict it: a text mostly in
    Arabic script is "ar" (or the declared "fa"/"ur"), one mostly in Latin script is "en"
    (or the declared Latin-script language); a mixed or letterless text keeps `declared`."""
    sample = f"{title}\n{body}"[:_SAMPLE_CHARS]
    arabic = latin = 0
    for char in sample:
        if "\u0600" <= char <= "\u06ff" or "\u0750" <= char <= "\u077f" or "\ufb50" <= char <= "\ufeff":
            arabic += 1
        elif ("a" <= char <= "z") or ("A" <= char <= "Z"):
            latin += 1
    letters = arabic + latin
    if letters < 8:
        return declared
    if arabic / letters >= _DOMINANT_SHARE:
        return declared if declared in _ARABIC_SCRIPT else "ar"
    if latin / letters >= _DOMINANT_SHARE:
        return declared if declared and declared not in _ARABIC_SCRIPT else "en"
    return declared
