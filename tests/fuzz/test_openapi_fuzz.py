"""Schemathesis over every operation of /openapi.json, as each role of one tenant: no 5xx,
and every answer (status, content type, body) is one the document declares.

Bounded in `make test` (UNIFOCUS_FUZZ_EXAMPLES, default 15 per operation, role and mode,
derandomized so a run is reproducible); `make fuzz` raises it."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.conftest import FuzzEnv
from tests.security import spec

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("UNIFOCUS_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ("admin", "manager", "employee")
OPERATIONS = [(m, p) for m, p, _ in spec.operations()]
# Negative data needs something to break: a parameter or a body.
NEGATABLE = {(m, p) for m, p, op in spec.operations() if op.get("parameters") or op.get("requestBody")}


def test_every_documented_operation_is_fuzzed(fuzz_env: FuzzEnv) -> None:
    served = {(op.method.upper(), op.path) for op in (r.ok() for r in fuzz_env.schema.get_all_operations())}
    assert served == set(OPERATIONS)


CASES = [
    pytest.param(m, p, role, mode, id=f"{spec.label(m, p)}-{role}-{mode}")
    for m, p in OPERATIONS
    for role in ROLES
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or (m, p) in NEGATABLE
]


@pytest.mark.parametrize(("method", "path", "role", "mode"), CASES)
def test_fuzz(fuzz_env: FuzzEnv, method: str, path: str, role: str, mode: GenerationMode) -> None:
    operation = fuzz_env.schema[path][method]
    names = spec.PATH_PARAM.findall(path)
    generated = operation.as_strategy(generation_mode=mode)
    strategies = [generated]
    if names and all(n in fuzz_env.ids for n in names) and mode is GenerationMode.POSITIVE:
        # Half the cases name the tenant's real rows, so 2xx answers are checked too.
        strategies.append(operation.as_strategy(
            generation_mode=mode, path_parameters={n: fuzz_env.ids[n] for n in names}))
    headers = {"Authorization": f"Bearer {fuzz_env.tokens()[role]}"}

    @settings(max_examples=EXAMPLES if mode is GenerationMode.POSITIVE else max(EXAMPLES // 2, 1),
              derandomize=True, deadline=None, database=None, print_blob=True,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def run(case: Any) -> None:
        case.call_and_validate(session=fuzz_env.client, headers=headers, checks=CHECKS)

    run()
