"""Schemathesis hooks for `make fuzz` (loaded through SCHEMATHESIS_HOOKS by scripts/fuzz.sh).

The schema says a cursor is a string and a time is a string, so schemathesis alone draws
text that is refused as unparseable and never reaches the database. These hooks replace,
in about half the generated queries, the time and cursor parameters with what a client can
forge and the parsers accept: cursors in the api's own layout holding any instant (year
200000, 5000 BC) or garbage bytes, and dates at and past the edges of the years the Eye
keeps (1..=9999 in UTC), with signs, offsets and extra digits. Every answer must still be
a 4xx or a 2xx: before these checks existed, such values answered 500 and 503.
"""

import base64
import struct

import schemathesis
from hypothesis import strategies as st

# Query parameters that carry a time or a cursor, by path.
TIMES = {
    "/events": ("from", "to"),
    "/sessions/{session_id}/events": ("from", "to"),
    "/errors": ("from", "to"),
    "/search": ("starts_at", "ends_at"),
}
CURSORS = ("/events", "/sessions/{session_id}/events", "/errors")

# Microseconds since 1970 at the edges of the years 1..=9999, and chrono's own limits.
YEAR_1 = -62_135_596_800_000_000
YEAR_10000 = 253_402_300_800_000_000
I64 = (-(2**63), 2**63 - 1)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_at(micros: int, uuid: bytes) -> str:
    return b64(struct.pack(">q", micros) + uuid)


micros = st.one_of(
    st.integers(*I64),
    st.integers(YEAR_1 - 10**6, YEAR_1 + 10**6),
    st.integers(YEAR_10000 - 10**6, YEAR_10000 + 10**6),
    st.sampled_from([I64[0], I64[1], 0, -1, YEAR_1 - 1, YEAR_10000]),
)
cursors = st.one_of(
    st.builds(cursor_at, micros, st.binary(min_size=16, max_size=16)),
    st.binary(max_size=48).map(b64),
)

years = st.one_of(
    st.integers(-300_000, 300_000),
    st.sampled_from([-5000, -1, 0, 1, 9999, 10000, 99999, 262143, 262144]),
)


def year_text(year: int) -> str:
    # chrono reads `-5000` and `+10000`; RFC 3339 only four digits.
    if 0 <= year <= 9999:
        return f"{year:04}"
    return f"{year:+05}"


def date_text(year: int, month: int, day: int, time: str, offset: str) -> str:
    # An offset only after a time: a bare date takes none.
    return f"{year_text(year)}-{month:02}-{day:02}{time}{offset if time else ''}"


dates = st.builds(
    date_text,
    years,
    st.integers(1, 12),
    st.integers(1, 28),
    st.sampled_from(["", "T00:00:00", "T23:59:59.999999", " 12:00:00", "T00:00:00.5"]),
    st.sampled_from(["", "Z", "+00:01", "-00:01", "+23:59", "-23:59"]),
)


@schemathesis.hook
def flatmap_query(ctx, query):
    path = ctx.operation.path if ctx.operation is not None else None
    if path not in TIMES or (query is not None and not isinstance(query, dict)):
        return st.just(query)
    forged = {name: dates for name in TIMES[path]}
    if path in CURSORS:
        forged["cursor"] = cursors
    # One forged parameter or several, over what was generated (or nothing).
    return st.one_of(
        st.just(query),
        st.fixed_dictionaries({}, optional=forged).map(lambda extra: {**(query or {}), **extra}),
    )
