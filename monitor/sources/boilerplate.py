"""Boilerplate removal on an article page's DOM, before any text is taken from it.

A "most read" box (الأكثر قراءة) carries ten other headlines, and their keywords would flag
the article for stories it does not tell. So navigation, asides, footers, share bars,
comments, related lists, any box that is mostly links or sits under such a heading, and
«اقرأ أيضاً» links between the article's lines are removed. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborNode

_CHROME = frozenset("nav aside footer header button select textarea input label menu dialog h1".split())
_BOX_TAGS = frozenset("div section ul ol dl table tbody menu figure span td".split())
_HEADING_TAGS = frozenset("h2 h3 h4 h5 h6 div span strong b p header dt th li".split())
_NEVER_BOILERPLATE = frozenset({"html", "body", "main", "article"})
_PARAGRAPH_WORDS = 25  # a run of text this long outside links is article, not a box's item
_SENTENCE_WORDS = 12
_HINT = re.compile(
    r"most[-_]?(?:read|viewed|popular)|popular|trending|related|share|sharing|social|comment|"
    r"breadcrumb|newsletter|subscribe|sidebar|widget|advert|(?:^|[-_\s])ads?(?:$|[-_\s])|"
    r"(?:^|[-_\s])tags?(?:$|[-_\s])|promo|outbrain|taboola|read-?more|more-?news|footer|menu",
    re.IGNORECASE,
)
# The heading of a box that is another part of the page: other stories, or the comments.
_SECTION_HEADING = re.compile(
    r"\s*(?:(?:الأكثر|الاكثر)\s*(?:قراءة|قراءه|مشاهدة|مشاهده|تداولا|تداولاً|تعليقا|تعليقاً|شعبية)"
    r"|(?:إقرأ|اقرأ|اقرا|إقرا)\s*(?:أيضا|أيضاً|ايضا|ايضاً|المزيد)"
    r"|(?:مقالات|أخبار|اخبار|مواضيع|موضوعات)\s*(?:ذات صلة|متعلقة|مشابهة|أخرى)|ذات صلة"
    r"|most (?:read|popular|viewed)|related(?: \w+)?|read (?:more|also|next)|trending(?: now)?"
    r"|you may also like|more from [\w ]+)"
    r"\s*[:：]?\s*",
    re.IGNORECASE,
)
_COMMENTS_HEADING = re.compile(
    r"\s*(?:التعليقات|تعليقات|تعليقات القراء|أضف تعليق|اضف تعليق|أضف تعليقك|comments?|leave a (?:comment|reply))"
    r"\s*[:：]?\s*(?:\(\d+\))?\s*",
    re.IGNORECASE,
)
# A label of page chrome, or a section title that may head the article's own column
# ("آخر الأخبار" above the story): it goes, the box around it is judged by other signs.
_LABEL = re.compile(
    r"\s*(?:شارك|شارك الخبر|تابعونا|share(?: this)?|follow us|(?:آخر|اخر|أحدث|احدث)\s*(?:الأخبار|الاخبار|الأنباء)"
    r"|latest(?: news)?)\s*[:：]?\s*",
    re.IGNORECASE,
)
_READ_ALSO = re.compile(r"\s*(?:(?:إقرأ|اقرأ|اقرا|إقرا)\s*(?:أيضا|أيضاً|ايضا|ايضاً)|read (?:also|more))\s*[:：]?\s*", re.IGNORECASE)
_LINE_TAGS = frozenset({"p", "li", "div", "h3", "h4", "h5", "h6"})
_CUE_WORDS = 3


@dataclass
class _Box:
    """An element being judged, with counts of what is left inside it (in words)."""

    node: LexborNode
    tag: str
    words: int = 0
    link_words: int = 0
    links: int = 0
    longest: int = 0  # words of its longest run of text outside links
    sentences: int = 0  # runs of text outside links of `_SENTENCE_WORDS` words or more
    headings: list[LexborNode] = field(default_factory=list)
    led_by: re.Pattern[str] | None = None  # a section or comments heading before any text

    def holds_article_text(self) -> bool:
        """A paragraph of 25 words, or three sentences of 12, outside links: the article's
        own container may carry a class such as "social-share" and must stay."""
        if self.link_words >= 0.3 * self.words:
            return False
        return self.longest >= _PARAGRAPH_WORDS or self.sentences >= 3

    def add(self, child: _Box) -> None:
        self.words += child.words
        self.link_words += child.link_words
        self.links += child.links + (child.tag == "a")
        self.longest = max(self.longest, child.longest)
        self.sentences += child.sentences


def remove_boilerplate(root: LexborNode) -> None:
    """Remove from `root` (never `root` itself) what is not the article: page chrome by tag,
    boxes mostly of links, boxes under a "most read" / "related" / "comments" heading and
    boxes whose class or id says so. One walk, children judged before their parent, so a box
    is judged on what is left in it; the removals happen after the walk, inner ones first."""
    total = len(root.text(deep=True, strip=False).split()) or 1
    doomed: list[LexborNode] = []
    stack = [_Box(root, root.tag or "")]
    in_link = 0
    node = root.child
    while stack:
        if node is not None:
            if node.is_element_node:
                tag = node.tag or ""
                if tag in _CHROME:
                    doomed.append(node)
                    node = node.next
                    continue
                stack.append(_Box(node, tag))
                in_link += tag == "a"
                node = node.child
                continue
            if node.is_text_node:
                _count_text(stack[-1], node.text_content or "", in_link > 0)
            node = node.next
            continue
        box = stack.pop()
        in_link -= box.tag == "a"
        if not stack:
            doomed.extend(box.headings)  # the root stays; boilerplate headings in it go
            break
        _judge(box, stack[-1], total, doomed)
        node = box.node.next
    for node in doomed:
        node.decompose()


def _count_text(box: _Box, text: str, in_link: bool) -> None:
    words = len(text.split())
    box.words += words
    if in_link:
        box.link_words += words
    else:
        box.longest = max(box.longest, words)
        box.sentences += words >= _SENTENCE_WORDS


def _judge(box: _Box, parent: _Box, total: int, doomed: list[LexborNode]) -> None:
    """Doom `box` or count it into its parent."""
    if box.tag not in _NEVER_BOILERPLATE:
        link_dense = box.links >= 3 and box.link_words >= 0.5 * box.words
        # A box holding the article's text is never removed as a whole: only its
        # boilerplate headings go, and the link lists under them by their density.
        small = box.words < 0.5 * total
        removable = small and not box.holds_article_text()
        # A box that opens with a comments heading is comments however long they are, one
        # that opens with "most read" is no article unless it is most of the page; an
        # "اقرأ أيضاً" after the article's paragraphs does not take them with it.
        if box.led_by is _COMMENTS_HEADING or small and box.led_by or box.headings and removable:
            doomed.append(box.node)
            return
        if link_dense and box.tag in _BOX_TAGS:
            doomed.append(box.node)
            return
        if removable and _link_line(box):
            doomed.append(box.node)
            return
        if removable and _hinted(box.node):
            doomed.append(box.node)
            return
    if box.headings:
        doomed.extend(box.headings)
        box.headings = []
    if (kind := _heading_kind(box)) is not None:
        parent.headings.append(box.node)
        if kind is not _LABEL and parent.words < _SENTENCE_WORDS:
            parent.led_by = kind
    parent.add(box)


def drop_read_also(root: LexborNode) -> None:
    """Remove «اقرأ أيضاً: <a>another story</a>» inserted inline in the article's text (no
    paragraph of its own, e.g. between <br>s): the cue and the link after it."""
    doomed = []
    for cue in root.css("strong, b, span, em"):
        if not _READ_ALSO.fullmatch(cue.text(deep=True) or ""):
            continue
        doomed.append(cue)
        following = cue.next
        while following is not None and following.is_text_node and not (following.text_content or "").strip():
            following = following.next
        if following is not None and following.tag == "a":
            doomed.append(following)
    for node in doomed:
        node.decompose()


def _link_line(box: _Box) -> bool:
    """A paragraph that is another story's headline: a link and at most a cue before it
    («اقرأ أيضاً:», "Read more:"), as dailies insert between an article's paragraphs."""
    return (
        box.tag in _LINE_TAGS
        and box.links >= 1
        and box.link_words >= 0.6 * box.words
        and box.words - box.link_words <= _CUE_WORDS
    )


def _hinted(node: LexborNode) -> bool:
    attributes = node.attributes
    hint = f"{attributes.get('class') or ''} {attributes.get('id') or ''}"
    return len(hint) > 1 and _HINT.search(hint) is not None


def _heading_kind(box: _Box) -> re.Pattern[str] | None:
    """The heading pattern the box is, if any."""
    if box.tag not in _HEADING_TAGS or not 0 < box.words <= 6:
        return None
    text = box.node.text(deep=True)
    for kind in (_SECTION_HEADING, _COMMENTS_HEADING, _LABEL):
        if kind.fullmatch(text):
            return kind
    return None
