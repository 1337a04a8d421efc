"""Settings, read once from the environment (``DROPLINE_*``) or passed in by tests."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DROPLINE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR / 'dropline.db'}",
        description="SQLAlchemy URL. SQLite file by default; postgresql+psycopg://... in production.",
    )
    secret_key: str = Field(
        default="dev-insecure-change-me",
        description="Signs session and admission tokens. Set a long random value in production.",
    )
    shop_name: str = "Dropline demo shop"
    currency: str = Field(default="GBP", min_length=3, max_length=3)
    # Flat shipping until the fulfilment module decides per order (minor units, shop currency).
    flat_shipping_amount: int = 395
    free_shipping_threshold: int = 5000
    default_location_code: str = "central"
    session_cookie_name: str = "dl_session"
    session_days: int = 30
    cookie_secure: bool = False
    # An in-flight idempotent request older than this is presumed crashed and may be resumed.
    idempotency_lease_seconds: int = 30
    idempotency_retention_hours: int = 24
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 5.0
    web_threads: int = Field(
        default=32, ge=4, le=200,
        description="Threads for synchronous endpoints; the database pool is sized above it.",
    )
    redis_url: str | None = None  # hot drop state (drops.gate); unset: the database only
    run_scheduler: bool = Field(
        default=True, description="Run background jobs (webhook delivery) inside `serve`."
    )
    webhook_allow_http: bool = Field(
        default=False, description="Development only: accept plain-http webhook targets.")
    webhook_allow_private_targets: bool = Field(
        default=False, description=(
            "Development only: accept webhook targets on loopback or private networks "
            "(a local receiver); otherwise they are refused as SSRF."))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings() -> Settings:
    return Settings()
