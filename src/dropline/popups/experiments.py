"""A/B tests on drop and product pages that keep the edge cache working.

How a visitor sees a variant without the page varying per visitor:

1. ``static/popups/experiments.js`` keeps a random first-party visitor id (cookie ``dl_vid``)
   and computes the visitor's bucket exactly as ``rules.bucket_of`` does (SHA-256 of the
   experiment slug and the id). Links to pages under test get ``?v=<variant>``; at the edge
   the same mapping may instead set the ``X-Dropline-Variant`` request header.
2. The page reads only the variant key (``page_variant``): ``?v=`` first, then the header,
   anything unknown falls back to the control. Its cache key is the path plus that key
   (``rules.cache_key``) and the response says ``Vary: X-Dropline-Variant``: one cached copy
   per variant, none per visitor, no cookie in the key.
3. The visitor id is issued by the shop (``POST /api/v1/experiments/visitors``, throttled
   per client IP): a random part signed with the app's secret (``rules.sign_visitor``). The
   script records an exposure once per visitor (and a conversion when the visitor adds to
   cart or buys) through ``POST /api/v1/experiments/{slug}/observations``, which takes only
   an id the shop signed and only the variant that id is assigned, so invented visitors and
   chosen variants cannot move a result; visitors are stored hashed, and each (visitor,
   kind) counts once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from dropline.events.service import record_event
from dropline.popups import rules
from dropline.popups.models import Experiment, ExperimentObservation, ExperimentStatus

VARIANT_HEADER = "X-Dropline-Variant"
PAGE_KINDS = ("product", "drop")
OBSERVATION_KINDS = ("exposure", "conversion")
CONTENT_FIELDS = ("label", "headline", "image", "layout")


def create_experiment(session: Session, *, clock: Clock, slug: str, name: str, page_kind: str,
                      target: str, variants: Sequence[dict[str, Any]]) -> Experiment:
    if page_kind not in PAGE_KINDS:
        raise InvalidInput(f"page kind must be one of {', '.join(PAGE_KINDS)}",
                           field="page_kind")
    keys = [str(v.get("key", "")) for v in variants]
    if not 2 <= len(keys) <= 4 or len(set(keys)) != len(keys) or not all(
            k.isalnum() and len(k) <= 16 for k in keys):
        raise InvalidInput("an experiment has 2 to 4 variants with distinct short alphanumeric "
                           "keys (the first is the control)", field="variants")
    if session.scalar(select(Experiment.id).where(Experiment.slug == slug)) is not None:
        raise AlreadyExists(f"experiment {slug!r} exists", field="slug")
    clean = [{"key": str(v["key"]), **{f: str(v.get(f, ""))[:300] for f in CONTENT_FIELDS}}
             for v in variants]
    experiment = Experiment(slug=slug, name=name, page_kind=page_kind, target=target,
                            variants=clean, status=ExperimentStatus.running,
                            created_at=clock.now())
    session.add(experiment)
    session.flush()
    record_event(session, clock=clock, type="experiment.started", subject_type="experiment",
                 subject_id=experiment.id, payload={"slug": slug, "variants": keys})
    return experiment


def page_key(page_kind: str) -> str:
    """The surrogate key every page of a kind carries, so that starting or stopping an
    experiment purges the cached copies rendered without (or with) it."""
    return f"experiments-{page_kind}"


def get_experiment(session: Session, slug: str) -> Experiment:
    experiment = session.scalar(select(Experiment).where(Experiment.slug == slug))
    if experiment is None:
        raise NotFound(f"experiment {slug!r} not found")
    return experiment


def stop_experiment(session: Session, *, clock: Clock, slug: str) -> Experiment:
    experiment = get_experiment(session, slug)
    experiment.status = ExperimentStatus.stopped
    record_event(session, clock=clock, type="experiment.stopped", subject_type="experiment",
                 subject_id=experiment.id, payload={"slug": slug})
    return experiment


def list_experiments(session: Session) -> list[Experiment]:
    return list(session.scalars(select(Experiment).order_by(Experiment.id.desc())))


def keys_of(experiment: Experiment) -> list[str]:
    return [v["key"] for v in experiment.variants]


@dataclass(frozen=True)
class PageVariant:
    experiment: str
    key: str
    content: dict[str, str]
    keys: tuple[str, ...]

    def cache_key(self, path: str) -> str:
        return rules.cache_key(path, self.key)


def running_for(session: Session, *, page_kind: str, slug: str) -> Experiment | None:
    """The newest running experiment on this page (a slug-specific one before an all-pages
    one)."""
    candidates = session.scalars(select(Experiment).where(
        Experiment.status == ExperimentStatus.running, Experiment.page_kind == page_kind,
        Experiment.target.in_([slug, ""])).order_by(Experiment.id.desc())).all()
    return next((e for e in candidates if e.target == slug), candidates[0] if candidates
                else None)


def requested_variant(query: str | None, header: str | None) -> str | None:
    """The variant key a request names (``?v=`` first, then ``X-Dropline-Variant`` set by an
    edge that assigns variants itself); anything else is ignored, so the page cache cannot be
    flooded with copies."""
    wanted = (query or header or "")[:16]
    return wanted if wanted.isalnum() else None


def page_variant(session: Session, *, page_kind: str, slug: str, query_variant: str | None,
                 header_variant: str | None) -> PageVariant | None:
    """What a page under test renders: chosen only from the request's variant key (``?v=``,
    then the ``X-Dropline-Variant`` header), never from who the visitor is. None when no
    experiment runs on the page."""
    experiment = running_for(session, page_kind=page_kind, slug=slug)
    if experiment is None:
        return None
    keys = keys_of(experiment)
    wanted = (query_variant or header_variant or "")[:16]
    key = wanted if wanted in keys else keys[0]
    content = next(v for v in experiment.variants if v["key"] == key)
    return PageVariant(experiment.slug, key, dict(content), tuple(keys))


def issue_visitor(*, secret: str) -> str:
    """A new visitor id, signed (``rules.sign_visitor``)."""
    return rules.sign_visitor(secret, secrets.token_hex(rules.VISITOR_ID_PART // 2))


def record_observation(session: Session, *, clock: Clock, secret: str, slug: str,
                       visitor_id: str, variant: str, kind: str) -> bool:
    """True when recorded, False when this visitor's exposure (or conversion) was already
    counted. Refused: a visitor id the shop did not sign, a variant other than the one the
    visitor is assigned, and a conversion from a visitor never exposed (each would let a
    client move a result)."""
    experiment = get_experiment(session, slug)
    if kind not in OBSERVATION_KINDS:
        raise InvalidInput("kind must be exposure or conversion", field="kind")
    if variant not in keys_of(experiment):
        raise InvalidInput(f"{variant!r} is not a variant of {slug}", field="variant")
    if not rules.visitor_is_signed(secret, visitor_id):
        raise PermissionDenied("this visitor id was not issued by the shop (ask POST "
                               "/api/v1/experiments/visitors for one)", field="visitor")
    if variant != rules.assign_variant(experiment.slug, visitor_id, keys_of(experiment)):
        raise InvalidInput(f"this visitor is not assigned {variant!r}", field="variant")
    visitor = rules.visitor_hash(visitor_id)
    if kind == "conversion" and session.scalar(select(ExperimentObservation.id).where(
            ExperimentObservation.experiment_id == experiment.id,
            ExperimentObservation.visitor == visitor,
            ExperimentObservation.kind == "exposure")) is None:
        raise InvalidInput("a conversion needs an exposure of the same visitor first",
                           field="kind")
    try:
        with session.begin_nested():
            session.add(ExperimentObservation(experiment_id=experiment.id, variant=variant,
                                              visitor=visitor, kind=kind,
                                              occurred_at=clock.now()))
            session.flush()
    except IntegrityError:
        return False
    record_event(session, clock=clock, type=f"experiment.{kind}", subject_type="experiment",
                 subject_id=experiment.id, payload={"slug": slug, "variant": variant})
    return True


@dataclass(frozen=True)
class ExperimentReport:
    slug: str
    name: str
    status: str
    page_kind: str
    target: str
    arms: list[rules.ArmResult]


def experiment_report(session: Session, *, slug: str) -> ExperimentReport:
    experiment = get_experiment(session, slug)
    counts: dict[str, dict[str, int]] = {"exposure": {}, "conversion": {}}
    for variant, kind, count in session.execute(
            select(ExperimentObservation.variant, ExperimentObservation.kind, func.count())
            .where(ExperimentObservation.experiment_id == experiment.id)
            .group_by(ExperimentObservation.variant, ExperimentObservation.kind)):
        counts[kind][variant] = count
    return ExperimentReport(experiment.slug, experiment.name, experiment.status.value,
                            experiment.page_kind, experiment.target,
                            rules.experiment_result(keys_of(experiment), counts["exposure"],
                                                    counts["conversion"]))
