"""The OTLP/HTTP exporters read proxy and CA-bundle variables once, with requests' rules.

A ``requests`` session that trusts the environment re-reads every variable on each
POST; ours reads them when the exporter is built, for its endpoint, and then stops
trusting the environment. The outcome must be what requests would have decided.
"""

from __future__ import annotations

import pytest

from otel._internal.lean_exporter import (
    HttpMetricExporter,
    LeanHttpLogExporter,
    LeanHttpSpanExporter,
)

ENDPOINT = "http://collector.internal:4318/v1/traces"
EXPORTERS = [LeanHttpSpanExporter, LeanHttpLogExporter, HttpMetricExporter]


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize("kind", EXPORTERS)
def test_proxy_variables_are_applied_once(kind: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    session = kind(endpoint=ENDPOINT)._client._transport._session
    assert session.trust_env is False
    assert session.proxies["http"] == "http://proxy.internal:3128"


def test_no_proxy_keeps_the_endpoint_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "collector.internal")
    session = LeanHttpSpanExporter(endpoint=ENDPOINT)._client._transport._session
    assert session.trust_env is False
    assert not session.proxies.get("http")


def test_a_ca_bundle_variable_still_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/internal-ca.pem")
    session = LeanHttpSpanExporter(endpoint=ENDPOINT)._client._transport._session
    assert session.verify == "/etc/ssl/internal-ca.pem"
    explicit = LeanHttpSpanExporter(endpoint=ENDPOINT, certificate_file="/tmp/ca.pem")
    # The OTLP certificate setting wins (requests alone would let the variable override it).
    assert explicit._client._transport._session.verify == "/tmp/ca.pem"


def test_the_stock_switch_leaves_requests_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    session = LeanHttpSpanExporter(endpoint=ENDPOINT, stock=True)._client._transport._session
    assert session.trust_env is True
    assert not session.proxies
