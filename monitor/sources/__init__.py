"""Where entries come from: fetching over HTTP, decoding the bytes, parsing feeds, sitemaps
and listing pages, and reading each article's own page.

    fetch     the shared HTTP client: concurrency, conditional GET, caps, backoff
    charset   bytes to text the way the feed declared it, a few bad bytes as U+FFFD
    parse     feed bytes to plain-text entries (feedparser the parser of record)
    fastfeed  the ElementTree fast path for plain UTF-8 RSS 2.0, equal to feedparser's output
    http10    reading a response httpx refuses for its Transfer-Encoding, over HTTP/1.0
    document  a source's URL read by its type: RSS/Atom, sitemap or listing page
    sitemap   urlset, sitemap index and Google News sitemaps to entries (lxml, no entities)
    listing   a listing page's article links (CSS selector) to entries
    urltitle  a readable title from a URL's slug
    selectors CSS selectors checked when the config loads
    robots    robots.txt per host (Protego), for everything crawled
    pages     fetching article pages politely, and which failures may pass
    extract   an article page's text, title, date and language (selector, JSON-LD, trafilatura)
    boilerplate  navigation, "most read" boxes, comments… removed before the text is taken
    pagedate  a page's facts: dates, JSON-LD, title, language

Every kind of source yields the same ParsedEntry into classify, dedup and store.
"""
