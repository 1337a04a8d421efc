"""Mails from their templates (``notifications/templates``: ``<name>.txt`` and
``<name>.html``, Jinja2; HTML escaped, text not). Pure: a context in, a subject and two
bodies out, so previews render exactly what is sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from dropline.notifications.rules import SUBJECTS

__all__ = ["TEMPLATES", "RenderedMail", "render_mail"]

TEMPLATES = tuple(SUBJECTS)
_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                   trim_blocks=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render_mail(template: str, context: Mapping[str, Any]) -> RenderedMail:
    subject = SUBJECTS[template].format(**context)
    return RenderedMail(
        subject=subject,
        text=_env.get_template(f"{template}.txt").render(**context),
        html=_env.get_template(f"{template}.html").render({**context, "subject": subject}))
