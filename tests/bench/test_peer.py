"""The bench's peer cell (``bench.peer``): FastAPI in front of an aio-pika RPC, on the live broker.

The cell's figures mean something only if its exchange is the floors' exchange: the request
signed by the portal and verified by the provider, the answer signed by the provider and
verified by the API before it is returned. Each test runs the app (and its responder) on the
run's own virtual host.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest

from bench.floor import Crypto
from bench.peer import PeerResponder, peer_app
from bench.workload import CLIENT, PINFL, PROVIDER, echo_answer, request_body
from demo.servers import serve_in_thread
from signing import generate_member_key
from tests.live import AMQP_URL

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(scope="module")
def crypto(tmp_path_factory: pytest.TempPathFactory) -> Crypto:
    keys = tmp_path_factory.mktemp("keys")
    for member in (CLIENT, PROVIDER):
        generate_member_key(keys, member)
    return Crypto.load(keys)


@contextmanager
def client(
    app_crypto: Crypto, responder: PeerResponder, timeout_s: float = 10.0
) -> Iterator[httpx.Client]:
    """The peer app served on loopback (its lifespan connects to the broker), and a client."""
    app = peer_app(app_crypto, AMQP_URL, responder=responder, timeout_s=timeout_s)
    with serve_in_thread(app) as server, httpx.Client(base_url=server.url, timeout=15) as api:
        yield api


@pytest.fixture
def answered(crypto: Crypto) -> Iterator[httpx.Client]:
    with client(crypto, PeerResponder(crypto)) as api:
        yield api


def test_the_answer_is_the_providers_signed_envelope_for_this_request(
    answered: httpx.Client, crypto: Crypto
) -> None:
    response = answered.post("/peer", json=request_body())
    assert response.status_code == 200
    answer = crypto.open(response.content, PROVIDER)  # raises unless the provider signed it
    assert answer["kind"] == "response"
    assert answer["payload"] == echo_answer(PINFL)
    assert answer["correlation"] != answer["id"]  # it answers a request with another id
    second = crypto.open(answered.post("/peer", json=request_body()).content, PROVIDER)
    assert second["correlation"] != answer["correlation"]  # each call is a request of its own


def test_an_answer_not_signed_by_the_provider_is_refused(crypto: Crypto) -> None:
    forger = Crypto(crypto.client, crypto.client, crypto.verifier)  # answers signed as the portal
    with client(crypto, PeerResponder(forger)) as api:
        response = api.post("/peer", json=request_body())
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert orjson.loads(response.content)["status"] == 502


def test_a_request_not_signed_by_the_portal_is_rejected_unanswered(crypto: Crypto) -> None:
    impostor = Crypto(crypto.provider, crypto.provider, crypto.verifier)  # asks as the provider
    responder = PeerResponder(crypto)
    with client(impostor, responder, timeout_s=1.0) as api:
        response = api.post("/peer", json=request_body())
    assert response.status_code == 504
    assert responder.rejected == 1
