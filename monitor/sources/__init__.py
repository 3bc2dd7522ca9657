"""Where entries come from: fetching over HTTP, decoding the bytes, parsing feeds.

    fetch     the shared HTTP client: concurrency, conditional GET, caps, backoff
    charset   bytes to text the way the feed declared it, a few bad bytes as U+FFFD
    parse     feed bytes to plain-text entries (feedparser the parser of record)
    fastfeed  the ElementTree fast path for plain UTF-8 RSS 2.0, equal to feedparser's output

Every kind of source yields the same ParsedEntry into classify, dedup and store.
"""
