"""Schemathesis hooks for the Fever contract run of `make fuzz` (scripts/fuzz.sh loads them
through SCHEMATHESIS_HOOKS for that run only).

The published document (testkit/tests/fixtures/fever/swagger.yaml, kept verbatim) declares
`start_time` and `end_time` as `format: time`, which requires an offset ("22:38:19Z"), while
its own examples ("22:38:19", "14:45:15") carry none. `/search` answers in the examples' form,
the one documented deviation (README: GET /search). Exactly that is taken out, in memory as
the document is loaded: those two properties lose `format: time` and are held to the
examples' form instead (a pattern), so the time is still checked. Every other keyword, format
and check of the document applies unchanged.
"""

import schemathesis

EXAMPLES_FORM = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    properties = raw_schema["components"]["schemas"]["EventSummary"]["properties"]
    for name in ("start_time", "end_time"):
        # Fails loudly if the document changes and the deviation no longer applies.
        if properties[name].pop("format", None) != "time":
            raise ValueError(f"EventSummary.{name} is no longer `format: time`")
        properties[name]["pattern"] = EXAMPLES_FORM
