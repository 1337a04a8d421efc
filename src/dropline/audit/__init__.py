"""The audit trail, below the domains: who changed what, old -> new, on the audited tables.

    actor    who is acting (a context variable: ``set_actor``, ``acting_as``)
    trail    the session listeners, ``record_bulk`` for bulk SQL, the registry ``AUDITED``
    models   the ``audit_log`` table

It imports no domain: the composition root (``dropline.bootstrap.install_listeners``) names the
audited models and their column rules and installs the listeners."""

from dropline.audit.actor import SYSTEM, acting_as, audit_now, current_actor, set_actor
from dropline.audit.trail import AUDITED, Audited, install, record_bulk

__all__ = [
    "AUDITED",
    "SYSTEM",
    "Audited",
    "acting_as",
    "audit_now",
    "current_actor",
    "install",
    "record_bulk",
    "set_actor",
]
