"""schemathesis hooks for .ci/conformance.sh (SCHEMATHESIS_HOOKS=st_hooks).

schemathesis's own `not_a_server_error` also fails on any GraphQL `errors` entry whose code it does not know as a
client error (ST113): every field-level denial (`UNAUTHORIZED_FIELD_OR_TYPE`, `NOT_A_USER_TOKEN`, ...) would count
as a server failure, although the gateway answers them by design. The fuzzing run asks one thing: that no input makes
the gateway answer 5xx.
"""

import schemathesis


@schemathesis.check
def http_not_5xx(ctx, response, case):
    """Fails on an HTTP status of 500 or more, and on nothing else."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:300]}")
