"""An article's language from its own letters.

Feeds declare one language for all their items, but a KUNA or embassy feed can carry both,
and the digest picks a headline by language and dedup joins write-ups across languages: so
the text decides when it is clearly written in one script, and the feed's word otherwise.
"""

from __future__ import annotations

import string

# Enough of the text to tell the script; a title alone usually is. Every stored article
# passes here, so letters are counted with bytes methods (C loops), not per character in
# Python: the UTF-8 lead bytes 0xD8-0xD9 encode U+0600-U+067F (the Arabic letters) and
# 0xDB U+06C0-U+06FF (the Persian and Urdu forms feeds mix in: ی ک ھ).
_SAMPLE_CHARS = 400
_ARABIC_LEAD_BYTES = (b"\xd8", b"\xd9", b"\xdb")
_NOT_ASCII_LETTERS = bytes(byte for byte in range(128) if chr(byte) not in string.ascii_letters)
# A Latin-script text quoting an Arabic name stays English, and the other way round.
_DOMINANT_SHARE = 0.6
_ARABIC_SCRIPT = frozenset({"ar", "fa", "ur"})


def text_language(title: str, body: str, declared: str | None = None) -> str | None:
    """The feed's `declared` language unless the letters contradict it: a text mostly in
    Arabic script is "ar" (or the declared "fa"/"ur"), one mostly in Latin script is "en"
    (or the declared Latin-script language); a mixed or letterless text keeps `declared`."""
    sample = f"{title}\n{body}"[:_SAMPLE_CHARS]
    encoded = sample.encode("utf-8", "surrogatepass")
    arabic = sum(encoded.count(lead) for lead in _ARABIC_LEAD_BYTES)
    latin = len(sample.encode("ascii", "ignore").translate(None, _NOT_ASCII_LETTERS))
    letters = arabic + latin
    if letters < 8:
        return declared
    if arabic / letters >= _DOMINANT_SHARE:
        return declared if declared in _ARABIC_SCRIPT else "ar"
    if latin / letters >= _DOMINANT_SHARE:
        return declared if declared and declared not in _ARABIC_SCRIPT else "en"
    return declared
