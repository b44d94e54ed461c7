"""Schemathesis against the published OpenAPI: every operation, generated inputs, no 5xx and answers as declared.

The schema is read from the running server's `/openapi.json`, so a route added anywhere is fuzzed without a
change here. Each operation gets inputs that follow the schema (positive) and inputs that break it (negative: they
must be refused with a declared 4xx, never a 5xx). Generation is derandomized (the same examples on every run)
and bounded per operation, so CI is reproducible and the run stays short; shrinking is off (the first failing
example is reported as found).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.harness import RunningMuster, running_muster

# Fewer on PostgreSQL: the run is there for what only PostgreSQL refuses (NUL characters, stricter types).
EXAMPLES_PER_OPERATION = {
    "sqlite": {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10},
    "postgresql": {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 4},
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


@dataclass(frozen=True)
class Finding:
    operation: str
    error: str

    def __str__(self) -> str:
        return f"{self.operation}:\n{self.error}"


def fuzz(muster: RunningMuster, examples_per_mode: dict[GenerationMode, int]) -> tuple[int, list[Finding]]:
    """Run every published operation; return how many there were and what failed (at most one per operation and
    kind of input)."""
    session = requests.Session()
    authorization = {"Authorization": f"Bearer {muster.admin_token}"}
    schema = schemathesis.openapi.from_url(f"{muster.base_url}/openapi.json", verify=str(muster.tls_ca_file))
    findings: list[Finding] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # a route whose published schema schemathesis cannot read
            findings.append(Finding("the published schema", str(result.err())))
            continue
        operation = result.ok()
        operations += 1
        for mode, examples in examples_per_mode.items():

            @fuzz_settings(examples)
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                response = case.call(
                    base_url=muster.base_url, session=session, headers=authorization, verify=str(muster.tls_ca_file)
                )
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except (Exception, BaseExceptionGroup) as error:  # every operation is fuzzed; all findings reported
                findings.append(Finding(f"{operation.label} ({mode.value} inputs)", str(error)))
    session.close()
    return operations, findings


async def test_every_published_operation_survives_generated_input(tmp_path: Path, database_url: str) -> None:
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    examples = EXAMPLES_PER_OPERATION[backend]
    async with running_muster(tmp_path, database_url=database_url) as muster:
        # The fuzzer is synchronous (requests); it runs in a thread while this event loop serves Muster.
        operations, findings = await asyncio.to_thread(fuzz, muster, examples)
    assert operations >= 10, "the published OpenAPI lost its admin operations"
    if findings:
        pytest.fail(f"{len(findings)} of {operations} operations failed:\n\n" + "\n\n".join(map(str, findings)))
