"""Settings: every DROPLINE_* variable in use before the sections still sets the same value, the
sections read their own variables, tests' keywords win over the environment, and
docs/settings.md lists every field with its variable."""

# rename_settings: skip (this file names the old flat settings on purpose)
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from dropline.adapters.email import FolderSender, SmtpSender, sender_for
from dropline.config import Settings, settings_table
from dropline.memberships.config import membership_config

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"

# (variable, value as set, where it lands, value read): the names kept from the flat settings,
# DropLimitSettings (DROPLINE_DROPS_*), MembersEnv (DROPLINE_MEMBERS_*) and the mailer's
# variables.
KEPT = [
    ("DROPLINE_DATABASE_URL", "sqlite:///elsewhere.db", "database.url", "sqlite:///elsewhere.db"),
    ("DROPLINE_DATABASE_MAX_CONNECTIONS", "100", "database.max_connections", 100),
    ("DROPLINE_DATABASE_POOL_TIMEOUT", "2.5", "database.pool_timeout", 2.5),
    ("DROPLINE_REDIS_URL", "redis://h:6379/5", "redis.url", "redis://h:6379/5"),
    ("DROPLINE_SECRET_KEY", "s3cret", "web.secret_key", "s3cret"),
    ("DROPLINE_SESSION_COOKIE_NAME", "sid", "web.session_cookie_name", "sid"),
    ("DROPLINE_SESSION_DAYS", "7", "web.session_days", 7),
    ("DROPLINE_COOKIE_SECURE", "true", "web.cookie_secure", True),
    ("DROPLINE_PUBLIC_URL", "https://shop.example", "web.public_url", "https://shop.example"),
    ("DROPLINE_WEB_THREADS", "8", "web.threads", 8),
    ("DROPLINE_WEB_WORKERS", "4", "web.workers", 4),
    ("DROPLINE_RUN_SCHEDULER", "false", "web.run_scheduler", False),
    ("DROPLINE_MAIL_LEASE_SECONDS", "30", "mail.lease_seconds", 30),
    ("DROPLINE_METRICS_TOKEN", "scrape-secret-0123456789", "web.metrics_token",
     "scrape-secret-0123456789"),
    ("DROPLINE_LOG_FORMAT", "json", "web.log_format", "json"),
    ("DROPLINE_EDGE_PURGE_URL", "http://127.0.0.1:6081/", "edge.purge_url",
     "http://127.0.0.1:6081/"),
    ("DROPLINE_EDGE_PURGE_TIMEOUT", "1.5", "edge.purge_timeout", 1.5),
    ("DROPLINE_SHOP_NAME", "Ember & Fig", "shop.name", "Ember & Fig"),
    ("DROPLINE_CURRENCY", "EUR", "shop.currency", "EUR"),
    ("DROPLINE_FLAT_SHIPPING_AMOUNT", "450", "shop.flat_shipping_amount", 450),
    ("DROPLINE_FREE_SHIPPING_THRESHOLD", "9000", "shop.free_shipping_threshold", 9000),
    ("DROPLINE_DEFAULT_LOCATION_CODE", "north", "shop.default_location_code", "north"),
    ("DROPLINE_SHOP_PRICES_INCLUDE_TAX", "false", "shop.prices_include_tax", False),
    ("DROPLINE_SHOP_COUNTRY", "DE", "shop.country", "DE"),
    ("DROPLINE_SHOP_VAT_NUMBER", "DE136695976", "shop.vat_number", "DE136695976"),
    ("DROPLINE_SHOP_VAT_CHECKER", "vies", "shop.vat_checker", "vies"),
    ("DROPLINE_IDEMPOTENCY_LEASE_SECONDS", "5", "idempotency.lease_seconds", 5),
    ("DROPLINE_IDEMPOTENCY_RETENTION_HOURS", "48", "idempotency.retention_hours", 48),
    ("DROPLINE_WEBHOOK_MAX_ATTEMPTS", "3", "webhooks.max_attempts", 3),
    ("DROPLINE_WEBHOOK_TIMEOUT_SECONDS", "1.5", "webhooks.timeout_seconds", 1.5),
    ("DROPLINE_WEBHOOK_LEASE_SECONDS", "3", "webhooks.lease_seconds", 3),
    ("DROPLINE_WEBHOOK_ALLOW_HTTP", "true", "webhooks.allow_http", True),
    ("DROPLINE_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true", "webhooks.allow_private_targets", True),
    ("DROPLINE_PAYMENTS", "stripe", "payments.provider", "stripe"),
    ("DROPLINE_PAYMENTS_STRIPE_SECRET_KEY", "sk_test_x", "payments.stripe_secret_key",
     "sk_test_x"),
    ("DROPLINE_PAYMENTS_STRIPE_PUBLISHABLE_KEY", "pk_test_x", "payments.stripe_publishable_key",
     "pk_test_x"),
    ("DROPLINE_PAYMENTS_STRIPE_WEBHOOK_SECRET", "whsec_x", "payments.stripe_webhook_secret",
     "whsec_x"),
    ("DROPLINE_PAYMENTS_STRIPE_API_BASE", "http://127.0.0.1:8420",
     "payments.stripe_api_base", "http://127.0.0.1:8420"),
    ("DROPLINE_PAYMENTS_STRIPE_TIMEOUT_SECONDS", "5", "payments.stripe_timeout_seconds", 5.0),
    ("DROPLINE_PAYMENTS_STRIPE_BATCH_CONCURRENCY", "4", "payments.stripe_batch_concurrency", 4),
    ("DROPLINE_PAYMENTS_STRIPE_JS_URL", "http://127.0.0.1:8420/js.stripe.com/v3/",
     "payments.stripe_js_url", "http://127.0.0.1:8420/js.stripe.com/v3/"),
    ("DROPLINE_DROPS_IDENTITY_PER_MINUTE", "11", "drops.identity_per_minute", 11),
    ("DROPLINE_DROPS_IP_PER_MINUTE", "22", "drops.ip_per_minute", 22),
    ("DROPLINE_DROPS_REDIS_URL", "redis://h:6379/6", "drops.redis_url", "redis://h:6379/6"),
    ("DROPLINE_DROPS_LEASE_SECONDS", "45", "drops.lease_seconds", 45),
    ("DROPLINE_TESTING_FAILPOINT", "drops.after_take", "testing.failpoint", "drops.after_take"),
    ("DROPLINE_MEMBERS_DUNNING_RETRIES", "2", "memberships.dunning_retries", 2),
    ("DROPLINE_MEMBERS_DUNNING_RETRY_SPACING_HOURS", "6",
     "memberships.dunning_retry_spacing_hours", 6),
    ("DROPLINE_MEMBERS_DUNNING_GRACE_HOURS", "24", "memberships.dunning_grace_hours", 24),
    ("DROPLINE_MEMBERS_CHARGE_LEASE_SECONDS", "9", "memberships.charge_lease_seconds", 9),
    ("DROPLINE_EMAIL_FROM", "Shop <shop@x.example>", "mail.sender", "Shop <shop@x.example>"),
    ("DROPLINE_SMTP_URL", "smtp://u:p@mail:587", "mail.smtp_url", "smtp://u:p@mail:587"),
    ("DROPLINE_EMAIL_DIR", "/tmp/out", "mail.outbox_dir", "/tmp/out"),
    ("DROPLINE_MAIL_MAX_ATTEMPTS", "3", "mail.max_attempts", 3),
    ("DROPLINE_THROTTLE_SIGN_IN_PER_ACCOUNT_PER_MINUTE", "7",
     "throttle.sign_in_per_account_per_minute", 7),
    ("DROPLINE_THROTTLE_SIGN_IN_PER_IP_PER_MINUTE", "70", "throttle.sign_in_per_ip_per_minute", 70),
    ("DROPLINE_THROTTLE_SIGN_UP_PER_IP_PER_MINUTE", "12", "throttle.sign_up_per_ip_per_minute", 12),
    ("DROPLINE_THROTTLE_EXPERIMENT_VISITORS_PER_IP_PER_HOUR", "6",
     "throttle.experiment_visitors_per_ip_per_hour", 6),
    ("DROPLINE_THROTTLE_CHECKOUT_PER_CUSTOMER_PER_MINUTE", "3",
     "throttle.checkout_per_customer_per_minute", 3),
    ("DROPLINE_THROTTLE_CHECKOUT_PER_IP_PER_MINUTE", "33", "throttle.checkout_per_ip_per_minute",
     33),
    ("DROPLINE_THROTTLE_DECLINES_PER_CUSTOMER", "2", "throttle.declines_per_customer", 2),
    ("DROPLINE_THROTTLE_DECLINES_PER_IP", "9", "throttle.declines_per_ip", 9),
    ("DROPLINE_THROTTLE_DECLINES_PER_CARD", "4", "throttle.declines_per_card", 4),
    ("DROPLINE_THROTTLE_CARD_TOKENS_PER_IP_PER_MINUTE", "7",
     "throttle.card_tokens_per_ip_per_minute", 7),
    ("DROPLINE_THROTTLE_DECLINE_WINDOW_SECONDS", "60", "throttle.decline_window_seconds", 60),
    ("DROPLINE_WEB_SESSION_IDLE_DAYS", "3", "web.session_idle_days", 3),
    ("DROPLINE_WEB_CONSOLE_IDLE_MINUTES", "15", "web.console_idle_minutes", 15),
    ("DROPLINE_WEB_PASSWORD_RESET_MINUTES", "20", "web.password_reset_minutes", 20),
    ("DROPLINE_WEB_SIGN_UP_LINK_MINUTES", "90", "web.sign_up_link_minutes", 90),
    ("DROPLINE_THROTTLE_PASSWORD_RESET_PER_ACCOUNT_PER_HOUR", "2",
     "throttle.password_reset_per_account_per_hour", 2),
    ("DROPLINE_THROTTLE_PASSWORD_RESET_PER_IP_PER_HOUR", "8",
     "throttle.password_reset_per_ip_per_hour", 8),
    ("DROPLINE_THROTTLE_SECOND_FACTOR_PER_ACCOUNT", "4", "throttle.second_factor_per_account", 4),
    ("DROPLINE_THROTTLE_SECOND_FACTOR_WINDOW_SECONDS", "120",
     "throttle.second_factor_window_seconds", 120),
    ("DROPLINE_MEDIA_DIR", "/srv/media", "media.dir", "/srv/media"),
    ("DROPLINE_MEDIA_S3_BUCKET", "shop-media", "media.s3_bucket", "shop-media"),
    ("DROPLINE_MEDIA_S3_ENDPOINT_URL", "http://s3:9000", "media.s3_endpoint_url",
     "http://s3:9000"),
    ("DROPLINE_MEDIA_S3_REGION", "eu-west-2", "media.s3_region", "eu-west-2"),
    ("DROPLINE_MEDIA_S3_PREFIX", "img/", "media.s3_prefix", "img/"),
    ("DROPLINE_MEDIA_PUBLIC_URL", "https://cdn.example/m", "media.public_url",
     "https://cdn.example/m"),
    ("DROPLINE_MEDIA_MAX_BYTES", "1000", "media.max_bytes", 1000),
    ("DROPLINE_MEDIA_MAX_SIDE", "4000", "media.max_side", 4000),
    ("DROPLINE_MEDIA_MIN_SIDE", "100", "media.min_side", 100),
    ("DROPLINE_FULFILMENT_POSTCODE_FILE", "/srv/onspd.csv", "fulfilment.postcode_file",
     "/srv/onspd.csv"),
    ("DROPLINE_FULFILMENT_NOMINATIM_URL", "https://geo.example", "fulfilment.nominatim_url",
     "https://geo.example"),
    ("DROPLINE_FULFILMENT_NOMINATIM_USER_AGENT", "shop (ops@shop.example)",
     "fulfilment.nominatim_user_agent", "shop (ops@shop.example)"),
    ("DROPLINE_FULFILMENT_STEERING", "false", "fulfilment.steering", False),
    ("DROPLINE_THEME_LOGO_URL", "/media/logo.png", "theme.logo_url", "/media/logo.png"),
    ("DROPLINE_THEME_LOGO_WIDTH", "120", "theme.logo_width", 120),
    ("DROPLINE_THEME_LOGO_HEIGHT", "30", "theme.logo_height", 30),
    ("DROPLINE_THEME_ACCENT", "#1f4e5f", "theme.accent", "#1f4e5f"),
    ("DROPLINE_THEME_INK", "#000000", "theme.ink", "#000000"),
    ("DROPLINE_THEME_MUTED", "#595959", "theme.muted", "#595959"),
    ("DROPLINE_THEME_PAPER", "#ffffff", "theme.paper", "#ffffff"),
    ("DROPLINE_THEME_BODY_FONT", "serif", "theme.body_font", "serif"),
    ("DROPLINE_THEME_HEADING_FONT", "mono", "theme.heading_font", "mono"),
]


def _read(settings: Settings, dotted: str) -> object:
    section, name = dotted.split(".")
    return getattr(getattr(settings, section), name)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No DROPLINE_* variable and no .env file from the machine running the tests."""
    monkeypatch.chdir(tmp_path)
    for _, _, variable, _, _ in settings_table():
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize(("variable", "raw", "field", "expected"), KEPT,
                         ids=[row[0] for row in KEPT])
def test_each_environment_variable_sets_its_field(monkeypatch, variable, raw, field, expected):
    monkeypatch.setenv(variable, raw)

    assert _read(Settings(), field) == expected


def test_every_field_has_a_kept_variable_and_no_variable_is_claimed_twice():
    table = {(f"{section}.{name}", variable) for section, name, variable, _, _ in
             settings_table()}

    assert table == {(field, variable) for variable, _, field, _ in KEPT}
    assert len({variable for _, variable in table}) == len(table)


def test_a_dotenv_file_is_read_and_the_environment_wins_over_it(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("DROPLINE_SHOP_NAME=From file\nDROPLINE_CURRENCY=USD\n")
    monkeypatch.setenv("DROPLINE_CURRENCY", "EUR")

    settings = Settings()

    assert (settings.shop.name, settings.shop.currency) == ("From file", "EUR")


def test_keywords_win_and_the_rest_of_a_section_still_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DROPLINE_SHOP_NAME", "From env")
    monkeypatch.setenv("DROPLINE_CURRENCY", "EUR")

    settings = Settings(shop={"currency": "GBP"}, database={"url": "sqlite://"})

    assert (settings.shop.name, settings.shop.currency) == ("From env", "GBP")
    assert settings.database.url == "sqlite://" and settings.database.is_sqlite


def test_an_unknown_or_flat_keyword_is_refused():
    with pytest.raises(ValidationError):
        Settings(database_url="sqlite://")
    with pytest.raises(ValidationError):
        Settings(shop={"nme": "typo"})


def test_a_bad_value_is_refused_with_its_field(monkeypatch):
    monkeypatch.setenv("DROPLINE_WEB_THREADS", "2")

    with pytest.raises(ValidationError, match="threads"):
        Settings()


def test_the_mail_section_chooses_the_sender(tmp_path):
    folder = sender_for(Settings(mail={"outbox_dir": str(tmp_path)}).mail)
    smtp = sender_for(Settings(mail={"smtp_url": "smtps://u:p%40ss@mail.example"}).mail)

    assert isinstance(folder, FolderSender)
    assert isinstance(smtp, SmtpSender)
    assert (smtp.host, smtp.port, smtp.password, smtp.implicit_tls) == (
        "mail.example", 465, "p@ss", True)


def test_membership_config_comes_from_the_memberships_and_shop_sections():
    config = membership_config(Settings(memberships={"dunning_retries": 2,
                                                     "charge_lease_seconds": 9},
                                        shop={"default_location_code": "north"}))

    assert (config.dunning.retries, config.charge_lease_seconds, config.location_code) == (
        2, 9, "north")


def test_docs_settings_lists_every_field_with_its_variable_and_default():
    rows = {line.split("|")[1].strip(" `"): line for line in DOCS.read_text().splitlines()
            if line.startswith("| `")}

    for section, name, variable, default, _ in settings_table():
        row = rows.get(f"{section}.{name}")
        assert row is not None, f"{section}.{name} is missing from docs/settings.md"
        assert f"`{variable}`" in row
        assert ("(unset)" if default is None else f"`{default}`") in row
