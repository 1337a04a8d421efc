"""Nothing listens to the process's writes until the composition root says so: importing every
table installs no audit listener and subscribes nothing to events; ``install_listeners`` does
both, once however often it is called."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
from sqlalchemy import event
from sqlalchemy.orm import Session

import dropline.models
import dropline.web.app
from dropline.audit import AUDITED
from dropline.audit.trail import _after_flush
from dropline.events import service as events

before = (event.contains(Session, "after_flush", _after_flush), len(events._subscribers),
          len(AUDITED))
from dropline.bootstrap import AUDITED_MODELS, install_listeners

install_listeners()
install_listeners()
after = (event.contains(Session, "after_flush", _after_flush), len(events._subscribers),
         len(AUDITED) == len(AUDITED_MODELS))
print(before, after)
"""


def test_listeners_are_installed_by_the_root_not_by_importing():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout.strip()

    # webhooks, the order mails and the drop mails (both on the one mail outbox)
    assert out == "(False, 0, 0) (True, 3, True)"
