"""Settings, read once from the environment (prefix ``HYTRACE_``) or a ``.env`` file."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-development-only"  # allowed only when HYTRACE_ENVIRONMENT=development
MIN_SECRET_LENGTH = 32
# An estimate from the secret's own characters (below): it undercounts a truly random secret (32 hex digits,
# 128 random bits, score about 115), and scores a repeated or sequential one near zero.
MIN_SECRET_BITS = 90
MAKE_A_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


def _shannon(symbols: Sequence[object]) -> float:
    counts = Counter(symbols)
    return -sum(n / len(symbols) * math.log2(n / len(symbols)) for n in counts.values()) if symbols else 0.0


def secret_bits(secret: str) -> float:
    """A rough lower estimate of a secret's randomness, in bits.

    A secret that repeats itself counts once (``abcabcabc`` as ``abc``); then its length times the smaller of
    two per-character entropies: of its characters (``aaaa…``, ``aaaabbbb…`` score low) and of the steps
    between neighbours (``abcdef…``, ``0123…`` score low).
    """
    for period in range(1, len(secret)):
        if all(secret[i] == secret[i - period] for i in range(period, len(secret))):
            secret = secret[:period]
            break
    steps = [ord(b) - ord(a) for a, b in pairwise(secret)]
    return len(secret) * min(_shannon(secret), _shannon(steps))


def weak_secret(secret: str) -> str | None:
    """Why a secret is too weak to sign tokens with, or None when it is not."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"it has {len(secret)} characters, fewer than {MIN_SECRET_LENGTH}"
    if "changeme" in secret.lower().replace("-", "").replace("_", ""):
        return "it is a placeholder (it contains 'change me')"
    if secret_bits(secret) < MIN_SECRET_BITS:
        return "it is too regular (repeated or sequential characters) to be random"
    return None


class Settings(BaseSettings):
    """Every setting hytrace reads; README's configuration table lists the same."""

    # hide_input_in_errors: a refusal must not print the secret it refuses (nor the database password).
    model_config = SettingsConfigDict(env_prefix="HYTRACE_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./data/hytrace.db"
    database_read_url: str = ""  # a read replica for the public pages (empty: the database above)
    redis_url: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    public_host_aliases: str = ""  # comma-separated hosts whose label paths are ours too
    secret_key: str = DEFAULT_SECRET
    admin_email: str = "admin@hytrace.local"
    admin_password: str = ""
    token_ttl_minutes: int = 8 * 60
    timezone: str = "Asia/Ho_Chi_Minh"
    future_tolerance_seconds: int = 300
    gtin_company_prefix: str = "9521234"
    db_pool_size: int = 20
    threadpool_size: int = 20
    rate_limit_public_per_minute: int = 600
    rate_limit_redis_prefix: str = "hytrace:ratelimit:"  # the limits' keys in Redis (shared by every API process)
    rate_limit_login_per_minute: int = 20
    rate_limit_authenticated_per_minute: int = 6000  # per user or API key whose credential verifies; 0 = off
    # A wrong password for one account this many times in a row pauses its sign-in for a while, whatever
    # address the attempts come from (the per-address limit above cannot see guesses spread over many).
    sign_in_failures_allowed: int = 10
    sign_in_pause_minutes: int = 15
    celery_queue: str = "celery"  # the queue workers consume and tasks go to (one per instance on a shared Redis)
    print_lease_seconds: int = 120
    print_progress_every: int = 250
    # How often each worker looks for leased jobs (print runs, reports) whose worker died or whose message
    # was lost (e.g. asked for while the broker was down): such a job starts about this soon after.
    job_sweep_seconds: int = Field(default=10, ge=1)
    # Scans of the public page: buffered, written in bulk; a unit code scanned from too many networks
    # (or places first shared from a new network) is flagged on the page and in the inspector's verdict.
    # How often a code is scanned is no signal: one network can re-scan it at will.
    scan_flush_seconds: float = 0.25  # short rounds: a round holds the GIL for a few ms at thousands of scans a second
    scan_warn_networks: int = 5  # distinct network prefixes (hashed) scanning one unit code
    scan_warn_places: int = 3  # distinct coarse places visitors chose to share
    # Each API process caches public pages; a write anywhere is seen within change_poll_seconds,
    # and nothing is kept longer than public_cache_seconds without being rebuilt.
    public_cache_seconds: float = 300
    change_poll_seconds: float = 0.25
    epcis_max_body_bytes: int = (
        16 * 1024 * 1024
    )  # largest EPCIS document POST /epcis/capture takes (413 beyond; ~30,000 events)
    # Every other API body (413 beyond): room for the longest list a request may carry (100,000 label codes).
    json_max_body_bytes: int = 4 * 1024 * 1024
    json_max_depth: int = 100  # arrays and objects nested deeper in a JSON body: 422 json_too_deep (EPCIS needs ~12)
    # National portal export: rows recorded in the last portal_settle_seconds wait for the next pull
    # (a transaction that began earlier may still commit rows with an earlier record time).
    portal_settle_seconds: int = 60
    # Partner webhooks (trace/webhooks.py): attempts before a delivery fails, the timeout of one
    # attempt, how often a worker looks for new events, and plain http to 127.0.0.1/localhost (tests).
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 10
    webhook_dispatch_seconds: float = 15
    webhook_allow_http_localhost: bool = False
    # The public transparency log (trace/transparency): its checkpoints are signed with this signed-note key
    # (PRIVATE+KEY+<name>+<hash>+<key>; `python -m trace.cli tlog-keygen` makes one). Production refuses to start
    # without it; development and tests make one and keep it in tlog_key_file.
    tlog_signing_key: str = ""
    tlog_key_file: str = "./data/tlog-signing.key"
    tlog_origin: str = ""  # the checkpoints' origin line; default "<public host>/log"
    tlog_sequence_seconds: float = Field(default=2.0, gt=0)  # how often a worker appends and signs
    statistics_seconds: float = Field(default=60.0, gt=0)  # how often a worker refreshes the planner's statistics
    # Rotating the key: set the new key above and the outgoing one here for a while. Checkpoints are then
    # signed by both and announce the new key (verifiers pinned to the old key move to the new one); after,
    # move the outgoing key's verifier key to tlog_previous_keys, so its checkpoints stay valid.
    tlog_previous_signing_key: str = ""
    # Earlier verifier keys (comma-separated) whose checkpoints stay valid after a rotation.
    tlog_previous_keys: str = ""
    # Witnesses whose cosignatures the log accepts and shows: their verifier keys (type 0x04), comma-separated.
    tlog_witness_keys: str = ""

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        # The built-in secret is public (it is in the source): outside development anyone could mint tokens.
        # Not even HYTRACE_ENVIRONMENT=test takes it, so that setting cannot be a way round; the test suite
        # sets a secret of its own.
        if self.secret_key == DEFAULT_SECRET:
            if self.environment != "development":
                raise ValueError(
                    f"HYTRACE_SECRET_KEY must be set when HYTRACE_ENVIRONMENT={self.environment} (the built-in "
                    f"secret is for development only): make one with {MAKE_A_SECRET}"
                )
            return self
        reason = weak_secret(self.secret_key)
        if reason is not None:
            raise ValueError(f"HYTRACE_SECRET_KEY is too weak: {reason}; make a random one with {MAKE_A_SECRET}")
        return self

    @model_validator(mode="after")
    def _require_log_key(self) -> Settings:
        # A development key is made on the fly; a production log signed with one nobody pinned proves nothing.
        if self.environment == "production" and not self.tlog_signing_key:
            raise ValueError(
                "HYTRACE_TLOG_SIGNING_KEY must be set when HYTRACE_ENVIRONMENT=production: make one with "
                "`python -m trace.cli tlog-keygen` and publish its verifier key"
            )
        return self

    @property
    def log_origin(self) -> str:
        """The origin line of the log's checkpoints."""
        return self.tlog_origin or f"{urlsplit(self.public_base_url).netloc.lower()}/log"

    @property
    def public_hosts(self) -> list[str]:
        """Hosts a printed label may name: the public base URL's and the configured aliases."""
        return [urlsplit(self.public_base_url).netloc.lower()] + [
            h.strip().lower() for h in self.public_host_aliases.split(",") if h.strip()
        ]

    @property
    def is_sqlite(self) -> bool:
        """True when the embedded SQLite database is in use."""
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache to change them)."""
    return Settings()
