"""Whether every response openapi.json documents was produced by a test of
tests/psp_server/api/test_openapi.py, judged once the whole run is over.

The module's tests may run on any pytest-xdist worker, in any order (work
stealing splits files), so no test of it can see all the others. Each test
reports the responses it produced as a user property of its report; the
module's last test reports what the document lists and the module's test
names. Reports reach the process that runs the session (the xdist
controller, or pytest itself without workers), where this plugin gathers
them and, when every test of the module ran, fails the run for a
documented response no test produced.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

PRODUCED = "openapi_produced"
DOCUMENTED = "openapi_documented"
TESTS = "openapi_tests"
MODULE = "tests/psp_server/api/test_openapi.py::"

Response = tuple[str, str, str]  # path template, method, status


class DocumentedResponses:
    def __init__(self) -> None:
        self.produced: set[Response] = set()
        self.documented: set[Response] | None = None
        self.tests: set[str] | None = None
        self.ran: set[str] = set()

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.startswith(MODULE):
            return
        if report.when == "call":
            self.ran.add(report.nodeid.removeprefix(MODULE).split("[")[0])
        for key, value in report.user_properties:
            if key == PRODUCED:
                self.produced.update(_responses(value))
            elif key == DOCUMENTED:
                self.documented = set(_responses(value))
            elif key == TESTS:
                self.tests = {str(name) for name in value}  # type: ignore[attr-defined]  # a list sent as JSON

    def never_produced(self) -> set[Response] | None:
        """What no test produced, or None when the run cannot tell (the
        module did not run whole, as with -k)."""
        if self.documented is None or self.tests is None or not self.tests <= self.ran:
            return None
        return self.documented - self.produced

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # a worker: its reports go to the controller, which judges
        missing = self.never_produced()
        if not missing:
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"  {method.upper()} {path} {status}" for path, method, status in sorted(missing)]
        message = "openapi.json documents responses no test produced:\n" + "\n".join(lines)
        if reporter is not None:
            reporter.write_sep("=", "documented but never produced", red=True)
            reporter.write_line(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _responses(value: object) -> Iterable[Response]:
    for path, method, status in value:  # type: ignore[attr-defined]  # a list sent as JSON
        yield (str(path), str(method), str(status))


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(DocumentedResponses(), "documented_responses")
