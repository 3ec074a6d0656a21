"""The operator fallback route: a manual service's request filed in the agency's inbox, answered
by an operator (CLI or the /inbox page), signed as the agency and delivered — across restarts."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from bus.cli.app import DEMO_MEMBERS, app, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.inbox.desk import InboxDesk
from bus.inbox.store import OperatorInbox
from bus.node.wiring import Node
from bus.records.audit import AuditLog, open_audit_store, verify
from demo.archive import ARCHIVE, poll_result
from demo.data import ARCHIVE_BIRTHS, AZIZ, UNKNOWN_PINFL, birth_certificate
from demo.scenario import verify_answer, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key
from tests.contract.test_operator_inbox import pg_inbox
from tests.live import AMQP_URL as AMQP

pytestmark = pytest.mark.slow

ARCHIVIST = ("archivist", "change-me-demo-archivist")  # the example config's demo password
RECORD = ARCHIVE_BIRTHS[0]
runner = CliRunner()


@dataclass
class Setup:
    config: Path
    token: str
    keys: Path

    def node(self) -> Any:
        return serve_in_thread(create_app(Node(load_settings(self.config))))


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def setup(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Setup:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    path = write_config(tmp_path, residence_url="http://127.0.0.1:9",
                        cadastre_db=tmp_path / "c.db", token_sha256=digest)
    if request.param == "rabbitmq":
        monkeypatch.setenv("BUS_TRANSPORT__URL", AMQP)
        monkeypatch.setenv("BUS_NODE__NAME", f"test-inbox-{uuid.uuid4().hex[:8]}")
    return Setup(path, token, tmp_path / "keys")


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10, headers={
        "Authorization": f"Bearer {token}", "X-Bus-User": "pension-officer-3",
        "X-Bus-Purpose": "pension-assignment"})


def _ask(client: httpx.Client, pinfl: str) -> tuple[str, str]:
    r = client.post(f"/v1/services/{ARCHIVE}", params={"mode": "async"}, json={"pinfl": pinfl})
    assert r.status_code == 202, r.text
    return r.headers["X-Bus-Message-Id"], r.headers["Location"]


def _inbox(config: Path, *args: str) -> Any:
    return runner.invoke(app, ["inbox", *args, "--config", str(config)])


def _wait_for_task(config: Path, task_id: str) -> None:
    give_up = time.monotonic() + 10
    while task_id not in _inbox(config, "list").output:
        assert time.monotonic() < give_up, "the request never reached the inbox"
        time.sleep(0.05)


def test_a_manual_request_answered_while_the_node_was_down_is_delivered(setup: Setup) -> None:
    with setup.node() as node, _client(node.url, setup.token) as portal:
        task_id, location = _ask(portal, RECORD.pinfl)
        _wait_for_task(setup.config, task_id)
        assert portal.get(location).status_code == 202
    # the node is down: the archivist answers from the terminal
    shown = _inbox(setup.config, "show", task_id, "--operator", "a.karimova")
    assert shown.exit_code == 0, shown.output
    assert RECORD.pinfl in shown.output and "pension-assignment" in shown.output
    answer = setup.config.parent / "answer.json"
    answer.write_text(json.dumps(birth_certificate(RECORD).model_dump(mode="json")))
    done = _inbox(setup.config, "answer", task_id, "--file", str(answer),
                  "--operator", "a.karimova")
    assert done.exit_code == 0, done.output
    assert "answered" in done.output
    with setup.node() as node, _client(node.url, setup.token) as portal:
        r = poll_result(portal, location)
        assert r.status_code == 200, r.text
        signed = r.json()
        assert signed["payload"]["number"] == RECORD.certificate
        assert verify_answer(signed, setup.keys / "state-archive.pub", "state-archive")
        assert r.headers["X-Bus-Request-Number"]
    again = _inbox(setup.config, "answer", task_id, "--file", str(answer))
    assert again.exit_code == 1 and "task-closed" in again.output
    settings = load_settings(setup.config)
    assert settings.audit.url is not None
    store = open_audit_store(settings.audit.url.get_secret_value())
    entries = [e for e in store.entries() if e.message_id == task_id]
    assert [(e.side, e.outcome) for e in entries] == [
        ("provider", "filed"), ("operator:a.karimova", "read"), ("operator:a.karimova", "ok")]
    assert verify(store.entries())[2] is None
    # the person sees the archive among those who obtained their data; an inspector sees more
    told = runner.invoke(app, ["audit", "subject", RECORD.pinfl, "-c", str(setup.config)])
    assert told.exit_code == 0, told.output
    assert "1 time(s)" in told.output and "pension-officer-3" in told.output
    everything = runner.invoke(app, ["audit", "subject", RECORD.pinfl, "--all",
                                     "-c", str(setup.config)])
    assert everything.exit_code == 0, everything.output
    assert "3 audit entries" in everything.output  # filed, read, answered
    assert "operator:a.karimova" in everything.output and "read" in everything.output


def test_an_answer_given_after_the_restart_and_a_rejection(setup: Setup) -> None:
    with setup.node() as node, _client(node.url, setup.token) as portal:
        found, found_at = _ask(portal, RECORD.pinfl)
        nobody, nobody_at = _ask(portal, UNKNOWN_PINFL)
        _wait_for_task(setup.config, nobody)
    with setup.node() as node, _client(node.url, setup.token) as portal:
        rejected = _inbox(setup.config, "reject", nobody, "--detail", "not in the 1990 books")
        assert rejected.exit_code == 0, rejected.output
        r = poll_result(portal, nobody_at)
        assert r.status_code == 404 and r.json()["code"] == "no-data"
        assert "1990 books" in r.json()["detail"]
        record = birth_certificate(RECORD).model_dump(mode="json")
        # text fields as typed, nested ones as JSON
        sets = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in record.items()]
        answered = _inbox(setup.config, "answer", found, *[a for s in sets for a in ("--set", s)])
        assert answered.exit_code == 0, answered.output
        r = poll_result(portal, found_at)
        assert r.status_code == 200 and r.json()["payload"]["child"]["pinfl"] == RECORD.pinfl


def _filed(setup: Setup) -> tuple[str, str]:
    """A request for the archive, in the inbox; the node stopped again."""
    with setup.node() as node, _client(node.url, setup.token) as portal:
        task_id, location = _ask(portal, RECORD.pinfl)
        _wait_for_task(setup.config, task_id)
    return task_id, location


def test_an_answer_stored_but_not_sent_is_sent_when_the_node_starts(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id, location = _filed(setup)
    record = birth_certificate(RECORD).model_dump(mode="json")
    answer = setup.config.parent / "answer.json"
    answer.write_text(json.dumps(record))

    def crash(*_: object) -> None:
        raise SystemExit("killed between signing and publishing")

    with monkeypatch.context() as patched:
        patched.setattr(InboxDesk, "_send", crash)
        died = _inbox(setup.config, "answer", task_id, "--file", str(answer))
    assert died.exit_code != 0
    # read the file itself: an inbox command would deliver the kept answer at once
    inbox = OperatorInbox(setup.config.parent / "inbox.db")
    task = inbox.get(task_id)
    inbox.close()
    assert task is not None and task.state == "audited"  # claimed and audited, not sent
    with setup.node() as node, _client(node.url, setup.token) as portal:
        r = poll_result(portal, location, timeout_s=5)  # the start, not the 15 s resender
        assert r.status_code == 200 and r.json()["payload"]["number"] == RECORD.certificate
    closed = _inbox(setup.config, "list", "--closed")
    assert re.search(rf"{task_id}.*answered", closed.output.replace("\n", " "))


def test_a_task_whose_reading_cannot_be_audited_is_not_shown(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id, _ = _filed(setup)

    def refuse(*_: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(AuditLog, "write", refuse)
        shown = _inbox(setup.config, "show", task_id)
    assert shown.exit_code == 1 and "audit log cannot be written" in shown.output
    assert RECORD.pinfl not in shown.output
    assert RECORD.pinfl in _inbox(setup.config, "show", task_id).output


@pytest.mark.postgres
def test_an_inbox_in_postgresql_is_the_same_for_every_node(setup: Setup) -> None:
    """Two nodes host the archive (here: one node, then the desk of a second configuration
    naming the same database); the task filed by one is answered from the other."""
    with pg_inbox() as url:
        config = yaml.safe_load(setup.config.read_text())
        for service in config["services"].values():  # every manual service, the archive's too
            if service["adapter"]["kind"] == "manual":
                service["adapter"]["inbox"] = url
        setup.config.write_text(yaml.safe_dump(config))
        other = setup.config.parent / "other-node.yaml"
        config["node"]["name"] = f"{config['node'].get('name', 'node')}-b"
        other.write_text(yaml.safe_dump(config))
        with setup.node() as node, _client(node.url, setup.token) as portal:
            task_id, location = _ask(portal, RECORD.pinfl)
            _wait_for_task(setup.config, task_id)
            assert not (setup.config.parent / "inbox.db").exists()  # not in a local file
            assert task_id in _inbox(other, "list").output  # the other node's desk sees it
            answer = setup.config.parent / "answer.json"
            answer.write_text(json.dumps(birth_certificate(RECORD).model_dump(mode="json")))
            done = _inbox(setup.config, "answer", task_id, "--file", str(answer))
            assert done.exit_code == 0, done.output
            r = poll_result(portal, location)
            assert r.status_code == 200 and r.json()["payload"]["number"] == RECORD.certificate
        again = _inbox(other, "answer", task_id, "--file", str(answer))
        assert again.exit_code == 1 and "task-closed" in again.output


def test_an_inbox_database_that_is_away_is_one_clear_error(setup: Setup) -> None:
    config = yaml.safe_load(setup.config.read_text())
    config["services"][ARCHIVE]["adapter"]["inbox"] = "postgresql://bus:pw@127.0.0.1:9/inbox"
    setup.config.write_text(yaml.safe_dump(config))
    listed = _inbox(setup.config, "list")
    assert listed.exit_code == 1, listed.output
    assert "bus-unavailable" in listed.output and "127.0.0.1:9/inbox" in listed.output
    assert ":pw@" not in listed.output  # the password is never shown


def test_an_invalid_answer_names_its_fields_and_sends_nothing(setup: Setup) -> None:
    with setup.node() as node, _client(node.url, setup.token) as portal:
        task_id, location = _ask(portal, RECORD.pinfl)
        _wait_for_task(setup.config, task_id)
        bad = _inbox(setup.config, "answer", task_id, "--set", "number=12345",
                     "--set", "registered_on=yesterday")
        assert bad.exit_code == 1
        for field in ("number", "registered_on", "child", "parents", "registry_office"):
            assert field in bad.output
        assert task_id in _inbox(setup.config, "list").output  # still open
        assert portal.get(location).status_code == 202


def test_a_manual_service_is_asked_only_asynchronously(setup: Setup) -> None:
    with setup.node() as node, _client(node.url, setup.token) as portal:
        r = portal.post(f"/v1/services/{ARCHIVE}", json={"pinfl": RECORD.pinfl})
        assert r.status_code == 400
        assert r.json()["code"] == "async-required" and "mode=async" in r.json()["detail"]


# -- the /inbox page (embedded only: the page is the same whatever the transport) --------------


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client, Setup]]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    path = write_config(tmp_path, residence_url="http://127.0.0.1:9",
                        cadastre_db=tmp_path / "c.db", token_sha256=digest)
    setup = Setup(path, token, tmp_path / "keys")
    with setup.node() as node, _client(node.url, token) as portal, \
            httpx.Client(base_url=node.url, auth=ARCHIVIST, timeout=10) as operator:
        yield portal, operator, setup


def _csrf(html: str) -> str:
    """The answer form's token (the header's sign-out form has one of its own)."""
    found = re.search(
        r"labelledby='answer'><input type='hidden' name='csrf' value='([0-9a-f]+)'", html)
    assert found, html
    return found.group(1)


def test_the_inbox_page_asks_operators_to_sign_in(
    page: tuple[httpx.Client, httpx.Client, Setup],
) -> None:
    portal, _, _ = page
    for auth in (None, ("archivist", "wrong"), ("nobody", "change-me-demo-archivist")):
        r = httpx.get(str(portal.base_url.join("/inbox")), auth=auth, timeout=5)
        assert r.status_code == 401
        assert "id='password'" in r.text  # the page's sign-in form, not a browser dialog
        assert "WWW-Authenticate" not in r.headers
    # the portal's API token is no operator password
    r = httpx.get(str(portal.base_url.join("/inbox")), timeout=5, headers={
        "Authorization": "Basic " + base64.b64encode(b"portal:" + portal.headers[
            "Authorization"].split()[1].encode()).decode()})
    assert r.status_code == 401
    # the sign-in form: a session cookie; guessing is slowed after five wrong passwords
    with httpx.Client(base_url=str(portal.base_url), timeout=5,
                      follow_redirects=True) as browser:
        signed = browser.post("/inbox/sign-in", data={"name": ARCHIVIST[0],
                                                      "password": ARCHIVIST[1]})
        assert signed.status_code == 200 and "Signed in as" in signed.text  # after the 303
        assert "httponly" in signed.history[0].headers["set-cookie"].lower()
        for _ in range(4):  # the wrong Basic password above was the first of five
            assert browser.post("/inbox/sign-in", data={"name": "archivist",
                                                        "password": "guess"}).status_code == 401
        late = browser.post("/inbox/sign-in", data={"name": ARCHIVIST[0],
                                                     "password": ARCHIVIST[1]})
        assert late.status_code == 429 and "Too many wrong passwords" in late.text


def test_an_operator_answers_on_the_page(
    page: tuple[httpx.Client, httpx.Client, Setup],
) -> None:
    portal, operator, setup = page
    task_id, location = _ask(portal, RECORD.pinfl)
    give_up = time.monotonic() + 10
    while task_id not in operator.get("/inbox").text:
        assert time.monotonic() < give_up
        time.sleep(0.05)
    metrics = portal.get("/metrics").text
    assert f'bus_inbox_open_tasks{{service="{ARCHIVE}"}} 1.0' in metrics
    left = re.search(rf'bus_inbox_time_left_seconds{{service="{ARCHIVE}"}} ([0-9.e+]+)', metrics)
    assert left and 259000 < float(left.group(1)) <= 259200  # 3 days, minus a moment
    shown = operator.get(f"/inbox/{task_id}")
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert RECORD.pinfl in shown.text and "registered_on" in shown.text
    token = _csrf(shown.text)
    record = birth_certificate(RECORD).model_dump(mode="json")
    form = {"csrf": token, "number": record["number"], "registered_on": "not a date",
            "registry_office": record["registry_office"],
            **{f"child.{k}": v for k, v in record["child"].items()},
            **{f"parents.{i}.{k}": v or "" for i, p in enumerate(record["parents"])
               for k, v in p.items()}}
    # no form token, or another site's form: refused, nothing sent
    assert operator.post(f"/inbox/{task_id}/answer",
                         data={**form, "csrf": "0" * 64}).status_code == 403
    assert operator.post(f"/inbox/{task_id}/answer", data=form,
                         headers={"Origin": "https://evil.example"}).status_code == 403
    bad = operator.post(f"/inbox/{task_id}/answer", data=form)
    assert bad.status_code == 422 and "registered_on" in bad.text
    assert "not a date" in bad.text  # what was typed is kept
    assert portal.get(location).status_code == 202
    ok = operator.post(f"/inbox/{task_id}/answer",
                       data={**form, "registered_on": record["registered_on"]},
                       follow_redirects=False)
    assert ok.status_code == 303, ok.text
    r = poll_result(portal, location)
    assert r.status_code == 200 and r.json()["payload"]["number"] == RECORD.certificate
    closed = operator.get(f"/inbox/{task_id}")
    assert "answered" in closed.text and "Sign and send" not in closed.text
    assert "bus_inbox_open_tasks{" not in portal.get("/metrics").text
    settings = load_settings(setup.config)  # each showing of the task is in the audit log
    assert settings.audit.url is not None
    store = open_audit_store(settings.audit.url.get_secret_value())
    assert [(e.side, e.outcome) for e in store.entries() if e.message_id == task_id] == [
        ("provider", "filed"), ("operator:archivist", "read"), ("operator:archivist", "ok"),
        ("operator:archivist", "read")]
    store.close()


def test_what_a_client_sent_is_shown_as_text_not_markup(
    page: tuple[httpx.Client, httpx.Client, Setup],
) -> None:
    portal, operator, _ = page
    script = "<script>alert('x')</script>"
    r = portal.post(f"/v1/services/{ARCHIVE}", params={"mode": "async"},
                    json={"pinfl": RECORD.pinfl}, headers={"X-Bus-User": script})
    assert r.status_code == 202
    task_id = r.headers["X-Bus-Message-Id"]
    give_up = time.monotonic() + 10
    while task_id not in operator.get("/inbox").text:
        assert time.monotonic() < give_up
        time.sleep(0.05)
    shown = operator.get(f"/inbox/{task_id}")
    assert script not in shown.text and "&lt;script&gt;" in shown.text
    assert "default-src 'none'" in shown.headers["Content-Security-Policy"]
    assert operator.get("/inbox/no-such-task").status_code == 404


def _another_persons_record() -> dict[str, Any]:
    """The task's record with another person's PINFL as the child's: an operator's slip."""
    record = birth_certificate(RECORD).model_dump(mode="json")
    record["child"]["pinfl"] = AZIZ.pinfl
    assert AZIZ.pinfl != RECORD.pinfl
    return record


def test_an_answer_about_another_person_is_refused_at_the_desk(setup: Setup) -> None:
    record = _another_persons_record()
    with setup.node() as node, _client(node.url, setup.token) as portal:
        task_id, location = _ask(portal, RECORD.pinfl)
        _wait_for_task(setup.config, task_id)
        refused = _inbox(setup.config, "answer", task_id, "--set", f"number={record['number']}",
                         "--set", f"registered_on={record['registered_on']}",
                         "--set", f"registry_office={record['registry_office']}",
                         "--set", f"child={json.dumps(record['child'])}",
                         "--set", f"parents={json.dumps(record['parents'])}")
        assert refused.exit_code == 1
        assert "child.pinfl" in refused.output and "another person" in refused.output
        assert record["child"]["pinfl"] not in refused.output  # the field, never its value
        assert task_id in _inbox(setup.config, "list").output  # still open
        assert portal.get(location).status_code == 202  # nothing was sent


def test_an_answer_about_another_person_is_refused_on_the_page(
    page: tuple[httpx.Client, httpx.Client, Setup],
) -> None:
    portal, operator, _ = page
    task_id, location = _ask(portal, RECORD.pinfl)
    give_up = time.monotonic() + 10
    while task_id not in operator.get("/inbox").text:
        assert time.monotonic() < give_up
        time.sleep(0.05)
    token = _csrf(operator.get(f"/inbox/{task_id}").text)
    record = _another_persons_record()
    form = {"csrf": token, "number": record["number"], "registered_on": record["registered_on"],
            "registry_office": record["registry_office"],
            **{f"child.{k}": v for k, v in record["child"].items()},
            **{f"parents.{i}.{k}": v or "" for i, p in enumerate(record["parents"])
               for k, v in p.items()}}
    refused = operator.post(f"/inbox/{task_id}/answer", data=form, follow_redirects=False)
    assert refused.status_code == 422 and "the person this task is about" in refused.text
    assert portal.get(location).status_code == 202  # nothing was sent
    form["child.pinfl"] = RECORD.pinfl
    ok = operator.post(f"/inbox/{task_id}/answer", data=form, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    assert poll_result(portal, location).json()["payload"]["child"]["pinfl"] == RECORD.pinfl


def test_the_inbox_pages_in_the_operator_s_language(
    page: tuple[httpx.Client, httpx.Client, Setup],
) -> None:
    portal, operator, _ = page
    signing_in = httpx.get(str(portal.base_url.join("/inbox")), timeout=5,
                           headers={"Accept-Language": "ru"})
    assert signing_in.status_code == 401 and signing_in.headers["content-language"] == "ru"
    assert "Вход во входящие оператора" in signing_in.text and ">Войти</button>" in signing_in.text
    task_id, location = _ask(portal, RECORD.pinfl)
    give_up = time.monotonic() + 10
    while task_id not in operator.get("/inbox").text:
        assert time.monotonic() < give_up
        time.sleep(0.05)
    listing = operator.get("/inbox", headers={"Accept-Language": "uz"})
    assert '<html lang="uz">' in listing.text and "Sizni kutayotgan topshiriqlar" in listing.text
    assert "2 kun 23 soat qoldi" in listing.text and "Chiqish</button>" in listing.text
    shown = operator.get(f"/inbox/{task_id}?lang=ru", headers={"Accept-Language": "uz"})
    assert "Подписать и отправить отказ" in shown.text and "Что запрашивают" in shown.text
    assert f"action='/inbox/{task_id}/reject?lang=ru'" in shown.text  # the language is kept
    assert "href='/inbox?lang=ru'" in shown.text
    token = _csrf(shown.text)
    blank = operator.post(f"/inbox/{task_id}/reject?lang=ru", follow_redirects=False,
                          data={"csrf": token, "code": "provider-rejected", "detail": "  "})
    assert blank.status_code == 422  # a refusal tells the asker why: nothing sent without it
    assert "Напишите причину, которую прочтёт запросивший; ничего не отправлено." in blank.text
    assert "<option value='provider-rejected' selected>" in blank.text
    assert portal.get(location).status_code == 202
    rejected = operator.post(f"/inbox/{task_id}/reject?lang=ru", follow_redirects=False,
                             data={"csrf": token, "code": "no-data", "detail": "не найдено"})
    assert rejected.status_code == 303 and rejected.headers["location"].endswith("&lang=ru")
    done = operator.get(rejected.headers["location"])
    assert f"Задача {task_id[:8]}… закрыта" in done.text
    again = operator.post(f"/inbox/{task_id}/answer", data={"csrf": token},
                          headers={"Accept-Language": "ru"})
    assert again.status_code == 409
    assert "Вы уже отклонили эту задачу; заполненное вами не отправлено." in again.text
    assert poll_result(portal, location).json()["code"] == "no-data"
    refused = operator.post(f"/inbox/{task_id}/answer", data={"csrf": "0" * 64},
                            headers={"Accept-Language": "uz"})
    assert refused.status_code == 403 and "<h1>Kirish taqiqlangan</h1>" in refused.text
