"""Schemathesis hooks for `make fuzz` (loaded through SCHEMATHESIS_HOOKS by scripts/fuzz.sh).

The schema says a cursor is a string and a time is a string, so schemathesis alone draws
text the parsers refuse, and never a value that parses yet lies beyond what PostgreSQL can
compare against. In about half the generated queries of the read endpoints and /search,
these hooks send instead one forged parameter over an otherwise valid query: a cursor in the
api's own layout holding an instant outside the years the Eye keeps (1..=9999 in UTC), such
as 5000 BC, or garbage bytes; or a date past those years (`-5000-01-01`, `+10000-...`,
`0001-01-01T00:00:00+00:01`). Each must answer 400; before these checks existed, such values
answered 500 (`/events`, `/errors`) and 503 (`/search`).

Every forged value is out of range, so the answer must be a 4xx whether schemathesis drew
the case as positive or negative (a negative case answered 2xx would be a false finding).
"""

import base64
import struct

import schemathesis
from hypothesis import strategies as st

# Query parameters that carry a time, and whether a cursor is taken too, by GET path.
TIMES = {
    "/events": ("from", "to"),
    "/sessions/{session_id}/events": ("from", "to"),
    "/errors": ("from", "to"),
    "/search": ("starts_at", "ends_at"),
}
CURSORS = ("/events", "/sessions/{session_id}/events", "/errors")

# Microseconds since 1970: the first instant of year 1 and of year 10000.
YEAR_1 = -62_135_596_800_000_000
YEAR_10000 = 253_402_300_800_000_000
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def in_years(raw: bytes) -> bool:
    """Whether bytes are a cursor the api would accept: 8 bytes of time, 16 of id."""
    return len(raw) == 24 and YEAR_1 <= struct.unpack(">q", raw[:8])[0] < YEAR_10000


# Instants outside the years: before year 1 down to PostgreSQL's limit (4713 BC) and past
# it, after year 9999 (PostgreSQL holds up to 294276, chrono up to 262143), the extremes.
BC_5000 = -220_000_000_000_000_000
out_of_years = st.one_of(
    st.integers(-8_000_000_000_000_000_000, BC_5000),
    st.sampled_from([BC_5000, I64_MIN, I64_MAX, YEAR_1 - 1, YEAR_10000]),
    st.integers(YEAR_1 - 10**6, YEAR_1 - 1),
    st.integers(I64_MIN, YEAR_1 - 1),
    st.integers(YEAR_10000, I64_MAX),
)
cursors = st.one_of(
    st.builds(lambda t, uuid: b64(struct.pack(">q", t) + uuid), out_of_years, st.binary(min_size=16, max_size=16)),
    st.binary(max_size=48).filter(lambda raw: not in_years(raw)).map(b64),
)


def year_text(year: int) -> str:
    # chrono reads a signed year of any width (`-5000`, `+10000`); RFC 3339 four digits.
    return f"{year:04}" if 0 <= year <= 9999 else f"{year:+05}"


def date_text(year: int, month: int, day: int, time: str, offset: str) -> str:
    # An offset only after a time: a bare date takes none.
    return f"{year_text(year)}-{month:02}-{day:02}{time}{offset if time else ''}"


far_dates = st.builds(
    date_text,
    st.one_of(
        st.integers(-300_000, 0),
        st.integers(10_000, 300_000),
        st.sampled_from([-5000, -4714, -1, 0, 10000, 294277]),
    ),
    st.integers(1, 12),
    st.integers(1, 28),
    st.sampled_from(["", "T00:00:00", "T23:59:59.999999", " 12:00:00", "T00:00:00.5"]),
    st.sampled_from(["", "Z", "+00:01", "-00:01", "+23:59", "-23:59"]),
)
# Within the years as written, outside them once in UTC.
edge_dates = st.sampled_from(
    [
        "0001-01-01T00:00:00+00:01",
        "0001-01-01 00:00:00+23:59",
        "9999-12-31T23:59:59-00:01",
        "9999-12-31 23:59:59.999999-23:59",
    ]
)
dates = st.one_of(far_dates, edge_dates)
valid_dates = st.sampled_from(["2020-01-01", "2021-07-31T20:00:00", "2024-01-01T00:00:00Z"])


def forged(path: str) -> st.SearchStrategy:
    """A clean query with exactly one forged parameter (for /search, whose bounds are both
    optional: a forged bound alone, or beside a valid or forged other bound)."""
    if path == "/search":
        start, end = TIMES[path]
        return st.one_of(
            st.fixed_dictionaries({start: dates, end: st.one_of(valid_dates, dates)}),
            st.fixed_dictionaries({start: valid_dates, end: dates}),
            st.fixed_dictionaries({start: dates}),
            st.fixed_dictionaries({end: dates}),
        )
    names = [*TIMES[path], "cursor"] if path in CURSORS else list(TIMES[path])
    return st.sampled_from(names).flatmap(
        lambda name: st.fixed_dictionaries(
            {name: cursors if name == "cursor" else dates},
            optional={"limit": st.integers(1, 1000)},
        )
    )


@schemathesis.hook
def flatmap_query(ctx, query):
    operation = ctx.operation
    if operation is None or operation.method.upper() != "GET" or operation.path not in TIMES:
        return st.just(query)
    return st.one_of(st.just(query), forged(operation.path))


def probe(base: str, token: str) -> int:
    """The forged values that once answered 5xx, each sent once (schemathesis draws its own at
    random): every one must answer 400. Returns the number of wrong answers."""
    import urllib.error
    import urllib.parse
    import urllib.request

    times = [*edge_dates.elements, "-5000-01-01", "+10000-01-01T00:00:00", "0000-12-31"]
    forged_cursors = [b64(struct.pack(">q", t) + bytes(16)) for t in (BC_5000, -(6 * 10**18), YEAR_1 - 1, YEAR_10000, 8 * 10**18)]
    forged_cursors += [b64(b"\xff" * 23), b64(b"\xff" * 25), "not-a-cursor!"]
    queries = []
    for path in ("/events", "/sessions/e2085be5-9137-4e4e-80b5-f1ffddc25423/events", "/errors"):
        queries += [(path, {"cursor": c}) for c in forged_cursors]
        queries += [(path, {name: t}) for name in ("from", "to") for t in times]
    queries += [("/search", {"starts_at": t, "ends_at": "2020-01-01"}) for t in times]
    queries += [("/search", {"starts_at": "2020-01-01", "ends_at": t}) for t in times]
    queries += [("/search", {name: t}) for name in ("starts_at", "ends_at") for t in times]
    wrong = 0
    for path, query in queries:
        url = f"{base}{path}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as e:
            status = e.code
        if status != 400:
            wrong += 1
            print(f"forged query answered {status}, not 400: GET {url}")
    print(f"forged queries: {len(queries)} sent, {len(queries) - wrong} answered 400")
    return wrong


if __name__ == "__main__":
    import sys

    sys.exit(1 if probe(sys.argv[1], sys.argv[2]) else 0)
