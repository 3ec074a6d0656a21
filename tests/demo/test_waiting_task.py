"""``demo --keep`` leaves one archive request for a person to answer at /inbox, and says how."""

from __future__ import annotations

import pytest
from rich.console import Console

from demo.archive import ARCHIVE, wait_for_task
from demo.data import ARCHIVE_BIRTHS
from demo.keep_running import print_waiting_task
from demo.scenario import DemoStack

pytestmark = pytest.mark.slow


def test_the_kept_demo_leaves_a_task_and_tells_how_to_answer_it(demo_stack: DemoStack) -> None:
    console = Console(record=True, width=400)
    print_waiting_task(console, demo_stack)
    said = console.export_text()
    desk = demo_stack.node.inbox
    assert desk is not None
    location = said.split("curl -s ")[1].split()[0]
    task_id = location.rsplit("/", 1)[1]
    wait_for_task(desk, task_id)
    task = desk.task(task_id)
    assert task.service == ARCHIVE and task.request["pinfl"] == ARCHIVE_BIRTHS[0].pinfl
    assert f"{demo_stack.gateway.url}/inbox (archivist / {demo_stack.archivist})" in said
    assert ARCHIVE_BIRTHS[0].certificate in said  # what the archive's books say
