"""Schemathesis hooks for the Fever contract run of `make fuzz` (scripts/fuzz.sh loads them
through SCHEMATHESIS_HOOKS for that run only).

The published document (testkit/tests/fixtures/fever/swagger.yaml, kept verbatim) declares
`start_time` and `end_time` as `format: time`, which requires an offset ("22:38:19Z"), while
its own examples ("22:38:19", "14:45:15") carry none. `/search` answers in the examples' form,
the one documented deviation (README: GET /search). Exactly that is taken out, in memory as
the document is loaded: those two properties lose `format: time` and are held to the
examples' form instead (a pattern), so the time is still checked. Every other keyword, format
and check of the document applies unchanged.

Two answers of `/search` are 400 by design although the document cannot express them (it has
no keyword relating two parameters or bounding a year): a reversed range (`starts_at` after
`ends_at`), and a bound outside the years 1 to 9999 once in UTC (`0000-01-01T00:00:00Z`,
`0001-01-01T00:00:00+00:01`). schemathesis draws both as valid data and its
`positive_data_acceptance` check would call the 400 a rejection of valid input, so those
queries are not drawn (`filter_query`); the integration tests and the forged-query probe of
scripts/fuzz_hooks.py check that they answer 400.
"""

from datetime import datetime, timezone

import schemathesis

OUT_OF_YEARS = object()

EXAMPLES_FORM = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    properties = raw_schema["components"]["schemas"]["EventSummary"]["properties"]
    for name in ("start_time", "end_time"):
        # Fails loudly if the document changes and the deviation no longer applies.
        if properties[name].pop("format", None) != "time":
            raise ValueError(f"EventSummary.{name} is no longer `format: time`")
        properties[name]["pattern"] = EXAMPLES_FORM


def bound(value):
    """The UTC instant a bound names, OUT_OF_YEARS, or None (absent, or not a date-time)."""
    if not isinstance(value, str):
        return None
    if value.strip()[:4] == "0000":
        return OUT_OF_YEARS  # a year Python cannot hold either
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    try:
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:
        return OUT_OF_YEARS
    return parsed


@schemathesis.hook
def filter_query(ctx, query):
    if not isinstance(query, dict):
        return True
    starts, ends = bound(query.get("starts_at")), bound(query.get("ends_at"))
    if OUT_OF_YEARS in (starts, ends):
        return False
    return not (isinstance(starts, datetime) and isinstance(ends, datetime) and starts > ends)
