"""Settings: one ``Settings`` object in sections, read once from the environment (and a ``.env``
file) by the composition root, or built by tests.

Every field has one environment variable, named by its section's prefix and the field
(``DROPLINE_DATABASE_URL`` is ``settings.database.url``) unless the field names its own
(``env=``: the variables kept from before the sections, such as ``DROPLINE_CURRENCY`` for
``settings.shop.currency``). ``docs/settings.md`` is the table of them all (``settings_table``).

Tests pass sections as keywords, as models or as dicts: ``Settings(database={"url": url})``;
what they leave out still comes from the environment, as for a process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "DatabaseSettings", "DropsSettings", "EdgeSettings", "FulfilmentSettings", "IdempotencySettings", "MailSettings", "MediaSettings",
    "MembershipSettings", "PaymentSettings", "RedisSettings", "Section", "Settings",
    "ShopSettings", "TestingSettings", "ThemeSettings", "ThrottleSettings", "WebSettings", "WebhookSettings",
    "contrast_ratio", "get_settings", "settings_table",
]

DEFAULT_DATA_DIR = Path("var")
LOCAL_URL = "http://localhost:8000"  # `dropline serve`'s default address


def setting(default: Any, meaning: str, *, env: str | None = None, **constraints: Any) -> Any:
    """A settings field: its default, what it means (the docs table's text) and, if its
    environment variable is not the section's prefix + its name, that variable."""
    extra = {"env": env} if env else None
    return Field(default=default, description=meaning, json_schema_extra=extra, **constraints)


class Section(BaseModel):
    """One group of settings; ``env_prefix`` names its environment variables."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    env_prefix: ClassVar[str] = "DROPLINE_"

    @classmethod
    def env_name(cls, name: str, field: FieldInfo) -> str:
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("env"):
            return str(extra["env"])
        return f"{cls.env_prefix}{name}".upper()


class DatabaseSettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_DATABASE_"

    url: str = setting(
        f"sqlite:///{DEFAULT_DATA_DIR / 'dropline.db'}",
        "SQLAlchemy URL. SQLite file by default; postgresql+psycopg://... in production.")

    max_connections: int | None = setting(
        None, "Connections the database server allows this deployment (PostgreSQL's "
        "max_connections); each process's pool takes its share (see db.pool_options).", ge=2)
    pool_timeout: float = setting(
        30.0, "Seconds a request waits for a pooled connection before it is answered 503.",
        gt=0, le=120)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class RedisSettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_REDIS_"

    url: str | None = setting(
        None, "Redis for hot drop state (the gate, PostgreSQL only); unset: the database only.")


class WebSettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_WEB_"

    secret_key: str = setting(
        "dev-insecure-change-me",
        "Signs session and admission tokens. Set a long random value in production.",
        env="DROPLINE_SECRET_KEY")
    session_cookie_name: str = setting("dl_session", "Name of the session cookie.",
                                       env="DROPLINE_SESSION_COOKIE_NAME")
    session_days: int = setting(30, "Days a sign-in session lasts.",
                                env="DROPLINE_SESSION_DAYS")
    session_idle_days: int = setting(
        14, "A shopper's session ends after this many days unused (sliding expiry).", ge=1)
    console_idle_minutes: int = setting(
        30, "A console session ends after this many minutes unused (sliding expiry).", ge=1,
        le=24 * 60)
    sign_up_link_minutes: int = setting(
        24 * 60, "Minutes the link that confirms a sign-up (and creates the account) stays "
                 "usable.", ge=5, le=7 * 24 * 60)
    password_reset_minutes: int = setting(
        60, "Minutes a password-reset link stays usable.", ge=5, le=24 * 60)
    cookie_secure: bool = setting(False, "Send cookies over HTTPS only (set behind TLS).",
                                  env="DROPLINE_COOKIE_SECURE")
    public_url: str | None = setting(
        None, "The shop's public address (https://shop.example): absolute links on publicly "
        "cached pages and in every mail (password reset, orders, drops, unsubscribe) use it; "
        "unset, pages use the address the request named (pages vary by Host) and mail sent "
        "by the worker uses http://localhost:8000. Set it in production, so a forged Host "
        "header cannot point a reset link elsewhere.",
        env="DROPLINE_PUBLIC_URL", pattern=r"^https?://[^/\s?#]+$")
    threads: int = setting(
        32, "Threads for synchronous endpoints; the database pool is sized above it.",
        ge=4, le=200)
    workers: int = setting(
        1, "Processes sharing the database (every server's workers); pools are sized so "
        "that together they stay within the database's max_connections.", ge=1, le=512)
    run_scheduler: bool = setting(
        True, "Run background jobs (webhook delivery, renewals) inside `serve`.",
        env="DROPLINE_RUN_SCHEDULER")
    metrics_token: str | None = setting(
        None, "Bearer token a Prometheus scraper sends for /metrics from another machine; "
        "unset: only scrapes from the machine itself.", env="DROPLINE_METRICS_TOKEN",
        min_length=16)
    log_format: Literal["json", "text"] = setting(
        "text", "Log lines of `serve` and `worker`: `json` (one object a line with time, level, "
        "logger, message, request_id and extras; for production) or `text` (the dev shell).",
        env="DROPLINE_LOG_FORMAT")

    def mail_base_url(self) -> str:
        """The address links in worker-sent mail start with (orders, drops, unsubscribe):
        ``public_url``, or the local development server's when it is unset (a worker has no
        request whose address it could use)."""
        return self.public_url or LOCAL_URL


class EdgeSettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_EDGE_"

    purge_url: str | None = setting(
        None, "Varnish in front of the shop (deploy/varnish/dropline.vcl): after each commit "
        "that changes a public page, its surrogate keys are purged here with an xkey PURGE "
        "(http://127.0.0.1:6081/). Unset: only the in-process page cache is purged.",
        pattern=r"^https?://[^\s?#]+$")
    purge_timeout: float = setting(2.0, "Seconds a purge request may take.", gt=0, le=30)


class ShopSettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_SHOP_"

    name: str = setting("Dropline shop", "The shop's name on pages, mails and the API "
                        "(`./run shop` sets the demo brand's, Ember & Fig).")
    currency: str = setting("GBP", "ISO 4217 currency of the shop's prices.",
                            env="DROPLINE_CURRENCY", min_length=3, max_length=3)
    # Flat shipping until the fulfilment module decides per order (minor units, shop currency).
    flat_shipping_amount: int = setting(
        395, "Flat shipping per order, in minor units, below the free threshold.",
        env="DROPLINE_FLAT_SHIPPING_AMOUNT")
    free_shipping_threshold: int = setting(
        5000, "Order subtotal (minor units) from which shipping is free.",
        env="DROPLINE_FREE_SHIPPING_THRESHOLD")
    default_location_code: str = setting(
        "central", "Stock location orders take from unless fulfilment decides otherwise.",
        env="DROPLINE_DEFAULT_LOCATION_CODE")
    prices_include_tax: bool = setting(
        True, "Prices are entered with VAT included (UK/EU style); false: tax is added at "
              "checkout (US style).")
    country: str = setting("GB", "The shop's country (ISO 3166 alpha-2): where it is VAT "
                                 "registered, for reverse charge.", pattern=r"^[A-Z]{2}$")
    vat_number: str = setting("", "The shop's VAT number, printed on invoices.",
                              max_length=20)
    vat_checker: Literal["offline", "vies"] = setting(
        "offline", "How buyers' VAT numbers are checked: offline (format and check digits) or "
                   "vies (then asks the EU's VIES whether an EU number is registered).")


HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"
FONT_STACKS = {
    "system": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    "serif": 'Charter, "Bitstream Charter", "Sitka Text", Cambria, Georgia, serif',
    "humanist": 'Seravek, "Gill Sans Nova", Ubuntu, Calibri, "DejaVu Sans", sans-serif',
    "mono": 'ui-monospace, "Cascadia Code", Menlo, Consolas, "DejaVu Sans Mono", monospace',
}


class ThemeSettings(Section):
    """The storefront's look, in one place: logo, colours and type. Fonts are system stacks
    (nothing downloaded, so no layout shift or extra request); colours are checked for
    readable contrast when the settings are read (``dropline.web.theme``)."""

    env_prefix: ClassVar[str] = "DROPLINE_THEME_"

    logo_url: str = setting(
        "", "The logo in the header (a /media/... URL from `dropline media add` or any "
            "image URL the CSP allows); empty: the shop's name in type.", max_length=500)
    logo_width: int = setting(160, "The logo's width in CSS pixels (its box is reserved, "
                                   "so it causes no layout shift).", ge=16, le=600)
    logo_height: int = setting(40, "The logo's height in CSS pixels.", ge=16, le=200)
    accent: str = setting("#8a4b2e", "Links, prices and buttons (white text sits on it).",
                          pattern=HEX_COLOUR)
    ink: str = setting("#1d1b19", "Body text.", pattern=HEX_COLOUR)
    muted: str = setting("#6d665f", "Secondary text (families, notes, the footer).",
                         pattern=HEX_COLOUR)
    paper: str = setting("#fbf8f4", "The page background.", pattern=HEX_COLOUR)
    body_font: Literal["system", "serif", "humanist", "mono"] = setting(
        "system", "Type of the text: one of system, serif, humanist, mono (system font "
                  "stacks).")
    heading_font: Literal["system", "serif", "humanist", "mono"] = setting(
        "serif", "Type of the headings and the shop's name.")

    @model_validator(mode="after")
    def _readable(self) -> ThemeSettings:
        # WCAG AA for normal text (4.5:1), on the page and on the white of cards and forms.
        pairs = [("ink", self.ink, self.paper), ("ink", self.ink, "#ffffff"),
                 ("muted", self.muted, self.paper), ("muted", self.muted, "#ffffff"),
                 ("accent", self.accent, self.paper), ("accent", self.accent, "#ffffff")]
        for name, fore, back in pairs:
            ratio = contrast_ratio(fore, back)
            if ratio < 4.5:
                raise ValueError(f"theme colour {name} {fore} on {back} has contrast "
                                 f"{ratio:.2f}:1; text needs at least 4.5:1")
        return self

    def css(self) -> str:
        """The custom properties the storefront's stylesheet reads."""
        return (f":root{{--accent:{self.accent};--ink:{self.ink};--muted:{self.muted};"
                f"--paper:{self.paper};--body-font:{FONT_STACKS[self.body_font]};"
                f"--heading-font:{FONT_STACKS[self.heading_font]}}}")


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


class IdempotencySettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_IDEMPOTENCY_"

    lease_seconds: int = setting(
        30, "An in-flight idempotent request older than this is presumed crashed and may be "
            "resumed.")
    retention_hours: int = setting(24, "Hours a stored idempotent response is kept.")


class WebhookSettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_WEBHOOK_"

    max_attempts: int = setting(8, "Delivery attempts of a webhook before it is given up.")
    timeout_seconds: float = setting(5.0, "Timeout of one webhook delivery, in seconds.")
    lease_seconds: int = setting(
        60, "A delivery claimed by a worker that has not finished it within this many seconds "
        "(the worker died) is claimed again: keep it above the timeout.")
    allow_http: bool = setting(
        False, "Development only: accept plain-http webhook targets.")
    allow_private_targets: bool = setting(
        False, "Development only: accept webhook targets on loopback or private networks (a "
        "local receiver); otherwise they are refused as SSRF.")


class PaymentSettings(Section):
    """Which card provider takes the money (``dropline.bootstrap`` builds it) and its keys. The
    local provider needs nothing and takes only its test cards; see "Going live with Stripe"."""

    env_prefix: ClassVar[str] = "DROPLINE_PAYMENTS_"

    provider: Literal["local", "stripe"] = setting(
        "local", "`local` (the built-in test provider, offline) or `stripe`.",
        env="DROPLINE_PAYMENTS")
    stripe_secret_key: str = setting(
        "", "Stripe secret key (`sk_test_...` in test mode, `sk_live_...` live); server only.")
    stripe_publishable_key: str = setting(
        "", "Stripe publishable key (`pk_...`), handed to Stripe.js in the pages.")
    stripe_webhook_secret: str = setting(
        "", "Signing secret of the Stripe webhook endpoint (`whsec_...`); events whose "
            "`Stripe-Signature` does not verify with it are refused.")
    stripe_api_base: str = setting(
        "", "Address of Stripe's API if not https://api.stripe.com (a local Stripe server such "
            "as localstripe in tests).")
    stripe_timeout_seconds: float = setting(
        20.0, "Timeout of one request to Stripe, in seconds.", gt=0, le=120)
    stripe_batch_concurrency: int = setting(
        8, "Charges of one drop batch sent to Stripe at once (one PaymentIntent each; Stripe "
           "has no batch API).", ge=1, le=64)
    stripe_js_url: str = setting(
        "https://js.stripe.com/v3/", "Where the pages load Stripe.js from (localstripe serves "
        "a stand-in at `<its address>/js.stripe.com/v3/`); the pages' Content-Security-Policy "
        "allows this origin and no other.", pattern=r"^https?://[^/\s]+/\S*$")


class DropsSettings(Section):
    """Requests allowed per minute on the drop endpoints, per signed-in identity and per IP."""

    env_prefix: ClassVar[str] = "DROPLINE_DROPS_"

    identity_per_minute: int = setting(120, "Drop requests per minute per signed-in identity.")
    ip_per_minute: int = setting(600, "Drop requests per minute per client IP.")
    redis_url: str | None = setting(
        None, "Redis shared by the rate limiter across workers; unset: counted in process.")
    lease_seconds: int = setting(
        30, "Seconds the units a purchase takes through the Redis gate stay reserved for it "
            "until its order is written; a purchase that died first gives them, and its "
            "admission, back once this lapses, and its retry with the same key starts afresh.",
        ge=1)


class TestingSettings(Section):
    """Hooks for the crash tests; empty in production."""

    env_prefix: ClassVar[str] = "DROPLINE_TESTING_"

    failpoint: str | None = setting(
        None, "Tests only: the named point (``dropline.failpoints``) where the process stops "
              "for good, so a test can kill it there; unset: none.")


class MembershipSettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_MEMBERS_"

    dunning_retries: int = setting(4, "Retries of a failed renewal charge.")
    dunning_retry_spacing_hours: int = setting(12, "Hours between renewal retries.")
    dunning_grace_hours: int = setting(48, "Hours a membership stays active after a failed "
                                           "renewal before it lapses.")
    charge_lease_seconds: int = setting(
        30, "A claimed charge attempt older than this is presumed crashed and may be resumed "
            "(same key).")


class MailSettings(Section):
    env_prefix: ClassVar[str] = "DROPLINE_MAIL_"

    sender: str = setting("Dropline <no-reply@dropline.example>", "From address of outgoing mail.",
                          env="DROPLINE_EMAIL_FROM")
    smtp_url: str | None = setting(
        None, "smtp://user:pass@host:587 (smtps:// for implicit TLS; ?starttls=off for a "
              "local relay without TLS) sends by SMTP; unset: mail is written to the outbox "
              "folder.", env="DROPLINE_SMTP_URL")
    outbox_dir: str = setting("var/outbox", "Folder the outbox writes .eml files to.",
                              env="DROPLINE_EMAIL_DIR")
    max_attempts: int = setting(8, "Sending attempts of a mail before it is given up.",
                                ge=1)
    lease_seconds: int = setting(
        300, "Seconds a worker holds a mail it is sending; a mail whose worker died is sent "
        "again after this (same Message-ID).", ge=5, le=3600)


class ThrottleSettings(Section):
    """Brute force and card testing (``dropline.web.throttle``), counted by the app's one rate
    limiter (``dropline.ratelimit``: in process, or in Redis when ``drops.redis_url`` is set)."""

    env_prefix: ClassVar[str] = "DROPLINE_THROTTLE_"

    sign_in_per_account_per_minute: int = setting(
        50, "Sign-in attempts per minute per account (email), on every sign-in form and the "
            "session API.", ge=1)
    sign_in_per_ip_per_minute: int = setting(300, "Sign-in attempts per minute per client IP.",
                                             ge=1)
    sign_up_per_ip_per_minute: int = setting(120, "Sign-ups per minute per client IP.", ge=1)
    password_reset_per_account_per_hour: int = setting(
        5, "Password-reset emails asked for per hour per account (email).", ge=1)
    password_reset_per_ip_per_hour: int = setting(
        30, "Password-reset emails asked for per hour per client IP.", ge=1)
    second_factor_per_account: int = setting(
        5, "Console sign-in codes (TOTP or recovery) tried per account within the code window.",
        ge=1)
    second_factor_window_seconds: int = setting(
        300, "The window console codes are counted in, in seconds.", ge=30)
    checkout_per_customer_per_minute: int = setting(
        30, "Checkout attempts per minute per customer.", ge=1)
    checkout_per_ip_per_minute: int = setting(300, "Checkout attempts per minute per client IP.",
                                              ge=1)
    declines_per_customer: int = setting(
        5, "Declined checkouts per customer within the decline window; then checkout cools "
           "down until the window ends (card testing).", ge=1)
    declines_per_ip: int = setting(
        20, "Declined checkouts per client IP within the decline window; then a cool-down.",
        ge=1)
    declines_per_card: int = setting(
        5, "Declined checkouts per card (the provider's card fingerprint) within the decline "
           "window, whichever account or address uses it; then a cool-down.", ge=1)
    decline_window_seconds: int = setting(
        900, "The window declines are counted in, and so the longest cool-down, in seconds.",
        ge=1)
    card_tokens_per_ip_per_minute: int = setting(
        20, "Cards tokenised per minute per client IP: the local provider's "
            "``/pay/local/tokens`` (card numbers tried there answer which ones are valid) and "
            "Stripe's ``/pay/stripe/setup-intents`` (a SetupIntent per card tried).",
        ge=1)
    experiment_visitors_per_ip_per_hour: int = setting(
        60, "Experiment visitor ids issued per hour per client IP (each browser takes one; "
            "a cap on invented visitors).", ge=1)


class MediaSettings(Section):
    """Product, variant, drop and tier images (``dropline.media``): where they are stored and
    what an upload may be."""

    env_prefix: ClassVar[str] = "DROPLINE_MEDIA_"

    dir: str = setting("var/media", "Folder images are stored in when no S3 bucket is set.")
    s3_bucket: str | None = setting(
        None, "S3 bucket for images (any S3-compatible store); unset: the local folder. "
              "Credentials come from the usual AWS_* variables.")
    s3_endpoint_url: str | None = setting(
        None, "Endpoint of an S3-compatible store (MinIO, R2 ...); unset: AWS S3.")
    s3_region: str = setting("us-east-1", "Region of the S3 bucket.")
    s3_prefix: str = setting("media/", "Key prefix of the images in the bucket.")
    public_url: str = setting(
        "/media", "Where pages link images from: the app serves /media from the store; a CDN "
                  "or bucket URL in front of the same names works as well.")
    max_bytes: int = setting(15_000_000, "Largest upload accepted, in bytes.", ge=1)
    max_side: int = setting(8000, "Longest side (pixels) an uploaded image may have.", ge=16)
    min_side: int = setting(200, "Shortest side (pixels) an uploaded image must have.", ge=1)


class _FlatEnvironment(PydanticBaseSettingsSource):
    """Reads each section's fields from their environment variables (then ``.env``)."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: str | None) -> None:
        super().__init__(settings_cls)
        self._env_file = env_file

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the sections whole

    def __call__(self) -> dict[str, Any]:
        found: dict[str, str] = {}
        if self._env_file and Path(self._env_file).is_file():
            found.update({k.upper(): v for k, v in dotenv_values(self._env_file).items()
                          if v is not None})  # a bare "KEY" line sets nothing
        found.update({k.upper(): v for k, v in os.environ.items()})
        values: dict[str, Any] = {}
        for section_name, section_cls in _sections(self.settings_cls):
            section = {name: found[env] for name, field in section_cls.model_fields.items()
                       if (env := section_cls.env_name(name, field)) in found}
            if section:
                values[section_name] = section
        return values


def _sections(settings_cls: type[BaseModel]) -> Iterator[tuple[str, type[Section]]]:
    for name, field in settings_cls.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
            yield name, field.annotation


class FulfilmentSettings(Section):
    """Where addresses are placed and how windows are offered (``dropline.fulfilment``)."""

    env_prefix: ClassVar[str] = "DROPLINE_FULFILMENT_"

    postcode_file: str | None = setting(
        None, "A postcode dataset to geocode with, after the built-in London districts: the "
              "GeoNames postal-code TSV or the ONS Postcode Directory CSV; unset: London only.")
    nominatim_url: str | None = setting(
        None, "A Nominatim-compatible geocoder, tried last (https://nominatim.example.org); "
              "unset: none.", pattern=r"^https?://[^\s?#]+$")
    nominatim_user_agent: str = setting(
        "dropline", "User-Agent sent to the Nominatim service (the public one requires a real "
                    "one naming your shop).")
    steering: bool = setting(
        True, "Slot steering at checkout: windows priced, green or hidden from their marginal "
               "cost to the routes forming, the demand map taken from the last four weeks' "
               "bookings (on by default; `false` offers every window at its flat price).")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="forbid")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    shop: ShopSettings = Field(default_factory=ShopSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    drops: DropsSettings = Field(default_factory=DropsSettings)
    memberships: MembershipSettings = Field(default_factory=MembershipSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)
    payments: PaymentSettings = Field(default_factory=PaymentSettings)
    testing: TestingSettings = Field(default_factory=TestingSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    fulfilment: FulfilmentSettings = Field(default_factory=FulfilmentSettings)
    theme: ThemeSettings = Field(default_factory=ThemeSettings)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keywords first, then the flat variables; pydantic-settings merges them per field.
        env_file = settings_cls.model_config.get("env_file")
        return init_settings, _FlatEnvironment(settings_cls, env_file if isinstance(
            env_file, str) else None)


def settings_table() -> Iterator[tuple[str, str, str, Any, str]]:
    """(section, field, environment variable, default, meaning) for every setting."""
    for section_name, section_cls in _sections(Settings):
        for name, field in section_cls.model_fields.items():
            yield (section_name, name, section_cls.env_name(name, field), field.default,
                   field.description or "")


def get_settings() -> Settings:
    return Settings()
