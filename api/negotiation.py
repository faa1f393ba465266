"""HTTP content negotiation (RFC 9110 §12.5.1), shared by every route that offers several media types."""

from __future__ import annotations


def parse_accept(header: str | None) -> list[tuple[str, str, float]]:
    """``Accept`` as (type, subtype, q) ranges; malformed entries are skipped."""
    ranges = []
    for part in (header or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if "/" not in media:
            continue
        main, _, sub = media.partition("/")
        if not main or not sub:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value.strip())))
                except ValueError:
                    q = 0.0
        ranges.append((main, sub, q))
    return ranges


def negotiate(header: str | None, offers: list[str]) -> str | None:
    """The offer the client prefers: the most specific matching range gives an offer its q
    (so ``text/turtle;q=0, */*;q=0.5`` refuses Turtle and accepts the rest); q=0 is
    "not acceptable"; ties go to the server's order. No (or no readable) ``Accept`` means
    anything is acceptable; ``None`` means nothing is."""
    ranges = parse_accept(header)
    if not ranges:
        return offers[0] if offers else None
    best, best_q = None, 0.0
    for offer in offers:
        main, _, sub = offer.lower().partition("/")
        q, specificity = None, -1
        for r_main, r_sub, r_q in ranges:
            if (r_main, r_sub) == (main, sub):
                spec = 2
            elif r_main == main and r_sub == "*":
                spec = 1
            elif (r_main, r_sub) == ("*", "*"):
                spec = 0
            else:
                continue
            if spec > specificity:
                q, specificity = r_q, spec
        if q is not None and q > best_q:
            best, best_q = offer, q
    return best
