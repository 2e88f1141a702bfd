"""Schemathesis hooks for `make contract` (scripts/contract.sh sets SCHEMATHESIS_HOOKS).

A valid Idempotency-Key is made unique to its request. Schemathesis draws keys from a small
space and re-sends the steps of a scenario while it shrinks one, so it sends the same key with
the same body again, after the resource that key created was deleted; signoff then answers the
stored 201 (`Idempotent-Replayed: true`), as the idempotency contract says, and the fuzzer reads
"created, then not found". A client sends a new key for a new request: so does this hook. Keys
that break the document's pattern are left as drawn, to be refused, and only the stateful phase
(where scenarios are re-sent) is touched: the other phases' cases stay exactly as generated.
Replays are tested in tests/api/idempotency.rs.
"""

import re
import uuid

import schemathesis

KEY = "Idempotency-Key"
PATTERN = re.compile(r"^[\t -~]*[!-~][\t -~]*$")


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = getattr(case, "meta", None) or getattr(case, "_meta", None)
    phase = getattr(getattr(meta, "phase", None), "name", None)
    if "stateful" not in str(getattr(phase, "value", phase)).lower():
        return
    headers = case.headers or {}
    key = headers.get(KEY)
    if isinstance(key, str) and len(key) <= 255 and PATTERN.match(key):
        headers[KEY] = uuid.uuid4().hex
