"""What every platform connector shares: HTTP, retries, rate limiting, paging hygiene.

Plain Python (no Dagster), so the assets and the CLI run the very same code.

- Transient failures (5xx, timeouts, dropped connections, 429) are retried with
  exponential backoff and jitter (tenacity); a 429's `Retry-After` is honoured and pauses
  every thread of the client, not just the one that was told.
- A page that is not the JSON it should be (an HTML error page, truncated JSON) is
  retried too; if it stays broken it is handed back as a `BrokenPage` for quarantine and
  the listing stops there, so the run finishes and the loss is on record.
- A rejected key fails at once with an error naming the platform.
- Cursors already requested and records already seen are detected, so a server that
  repeats a page or never advances its cursor cannot make a sync loop or double-count.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from infra.settings import Settings

if TYPE_CHECKING:  # httpx loads in ~0.3 s: every pipeline step process would pay it
    import httpx


class SourceError(Exception):
    """A platform call failed for good; the message starts with the platform's name."""

    def __init__(self, source: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.status = status


class AuthError(SourceError):
    """The platform rejected the key or token: retrying cannot help."""


class _TransientError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _MalformedError(Exception):
    def __init__(self, reason: str, text: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text
        self.status = status


@dataclass(frozen=True)
class ClientOptions:
    """The knobs of one platform client; `from_settings` builders fill them from Settings."""

    base_url: str
    requests_per_minute: int = 200
    concurrency: int = 5
    page_size: int = 100
    timeout_seconds: float = 30.0
    max_attempts: int = 5
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    max_pages: int = 100_000

    @classmethod
    def from_settings(
        cls, settings: Settings, base_url: str, requests_per_minute: int
    ) -> ClientOptions:
        """The platform's address and rate with the sync settings every platform shares."""
        return cls(
            base_url=base_url,
            requests_per_minute=requests_per_minute,
            concurrency=settings.sync_concurrency,
            page_size=settings.sync_page_size,
            timeout_seconds=settings.sync_timeout_seconds,
            max_attempts=settings.sync_max_attempts,
            backoff_seconds=settings.sync_backoff_seconds,
            backoff_max_seconds=settings.sync_backoff_max_seconds,
            max_retry_after_seconds=settings.sync_max_retry_after_seconds,
        )


@dataclass
class Page:
    """One response as received: the raw text is kept for landing, the JSON for parsing."""

    url: str
    params: dict[str, Any]
    text: str
    data: dict[str, Any]
    status: int
    origin: str = ""  # where the raw text was landed (set by the sink)


@dataclass
class BrokenPage:
    """A page that stayed unreadable after retries: quarantined with its text and reason."""

    url: str
    params: dict[str, Any]
    text: str
    reason: str
    origin: str = ""


@dataclass
class FetchStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    pages: int = 0
    broken_pages: int = 0
    duplicate_records: int = 0
    repeated_pages: int = 0
    cursor_loops: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict[str, int]:
        return {
            k: getattr(self, k)
            for k in (
                "requests",
                "retries",
                "throttled",
                "pages",
                "broken_pages",
                "duplicate_records",
                "repeated_pages",
                "cursor_loops",
            )
        }


@dataclass
class Listing:
    """Everything one paged listing returned: records grouped by the page that held them."""

    pages: list[tuple[Page, list[dict[str, Any]]]] = field(default_factory=list)
    broken: list[BrokenPage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r for _, recs in self.pages for r in recs]


# Called with (label, page text) for every page received; returns where it was stored.
PageSink = Callable[[str, str], str]


class RateLimiter:
    """Token bucket shared by a client's threads; a 429 pauses everyone until Retry-After."""

    def __init__(self, per_minute: int) -> None:
        self.rate = max(per_minute, 1) / 60.0
        self.capacity = max(1.0, per_minute / 10.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                if now < self.paused_until:
                    wait = self.paused_until - now
                else:
                    self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                    self.updated = now
                    if self.tokens >= 1.0:
                        self.tokens -= 1.0
                        return
                    wait = (1.0 - self.tokens) / self.rate
            time.sleep(wait)

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.paused_until = max(self.paused_until, time.monotonic() + seconds)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; fall back to backoff


class ApiClient:
    """An HTTP client for one platform; subclasses add the platform's paths and paging."""

    source = "api"
    credential = "API key"

    def __init__(
        self,
        options: ClientOptions,
        headers: dict[str, str],
        sink: PageSink | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.options = options
        self.sink = sink
        self.stats = FetchStats()
        self.limiter = RateLimiter(options.requests_per_minute)
        self.http = httpx.Client(
            base_url=options.base_url.rstrip("/") + "/",
            headers={"accept": "application/json", **headers},
            timeout=options.timeout_seconds,
            limits=httpx.Limits(max_connections=max(options.concurrency * 2, 10)),
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- errors -------------------------------------------------------------------------

    def error_detail(self, resp: httpx.Response) -> str:
        """The platform's own words about an error, when its body says anything."""
        try:
            body = resp.json()
        except ValueError:
            return resp.text[:200].strip()
        if isinstance(body, dict):
            for key in ("error_description", "message", "error"):
                if body.get(key):
                    return str(body[key])
        return resp.text[:200].strip()

    def auth_hint(self) -> str:
        return "check the API key setting"

    # --- one request --------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.options.max_retry_after_seconds)
        base = self.options.backoff_seconds * (2 ** (state.attempt_number - 1))
        return float(min(self.options.backoff_max_seconds, base) + random.uniform(0, base / 2))

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add(retries=1)

    def _once(self, path: str, params: dict[str, Any]) -> Page:
        import httpx

        self.limiter.acquire()
        self.stats.add(requests=1)
        try:
            resp = self.http.get(path.lstrip("/"), params=params)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise _TransientError(f"{type(exc).__name__}: {exc}") from exc
        status = resp.status_code
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("retry-after"))
            self.stats.add(throttled=1)
            if retry_after is not None:
                self.limiter.pause(min(retry_after, self.options.max_retry_after_seconds))
            raise _TransientError("throttled (429)", retry_after)
        if status >= 500:
            raise _TransientError(f"server error {status}")
        if status in (401, 403) or (status == 400 and self._is_auth_error(resp)):
            raise AuthError(
                self.source,
                f"{self.credential} rejected ({status}): {self.error_detail(resp).rstrip('.')}; "
                f"{self.auth_hint()}",
                status,
            )
        if status >= 400:
            raise SourceError(
                self.source, f"request {path} failed ({status}): {self.error_detail(resp)}", status
            )
        text = resp.text
        ctype = resp.headers.get("content-type", "")
        if "json" not in ctype:
            raise _MalformedError(f"expected JSON, got {ctype or 'no content type'}", text, status)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _MalformedError(f"invalid JSON: {exc}", text, status) from exc
        if not isinstance(data, dict):
            raise _MalformedError("JSON body is not an object", text, status)
        return Page(str(resp.request.url), dict(params), text, data, status)

    def _is_auth_error(self, resp: httpx.Response) -> bool:
        return False

    def get(self, path: str, params: dict[str, Any] | None = None) -> Page | BrokenPage:
        """GET with retries; a page that stays malformed comes back as a `BrokenPage`."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        retrying = Retrying(
            stop=stop_after_attempt(self.options.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((_TransientError, _MalformedError)),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._once, path, params)
        except _MalformedError as exc:
            self.stats.add(broken_pages=1)
            url = f"{self.options.base_url.rstrip('/')}/{path.lstrip('/')}"
            return BrokenPage(url, params, exc.text, f"malformed page: {exc.reason}")
        except _TransientError as exc:
            raise SourceError(
                self.source,
                f"{path} still failing after {self.options.max_attempts} attempts: {exc.reason}",
            ) from exc

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """For single objects (no paging): a broken body is an error here."""
        page = self.get(path, params)
        if isinstance(page, BrokenPage):
            raise SourceError(self.source, f"{path}: {page.reason}")
        return page.data

    # --- listings -----------------------------------------------------------------------

    def paginate(
        self,
        path: str,
        params: dict[str, Any],
        *,
        label: str,
        items: Callable[[dict[str, Any]], list[dict[str, Any]]],
        next_params: Callable[[dict[str, Any]], dict[str, Any] | None],
        record_id: Callable[[dict[str, Any]], str | None],
    ) -> Listing:
        """Follows a listing to its end, landing each page, dropping repeats and loops."""
        listing = Listing()
        seen_ids: set[str] = set()
        requested: set[str] = set()
        extra: dict[str, Any] = {}
        number = 0
        stale_pages = 0
        while True:
            number += 1
            if number > self.options.max_pages:
                listing.notes.append(f"stopped after {self.options.max_pages} pages")
                break
            key = json.dumps(extra, sort_keys=True)
            requested.add(key)
            page = self.get(path, {**params, **extra})
            page_label = f"{label}-p{number:04d}"
            text = page.text
            origin = self.sink(page_label, text) if self.sink else page_label
            page.origin = origin
            if isinstance(page, BrokenPage):
                listing.broken.append(page)
                listing.notes.append(f"{page_label}: {page.reason}; later pages not reachable")
                break
            self.stats.add(pages=1)
            try:
                recs = items(page.data)
            except (KeyError, TypeError) as exc:
                broken = BrokenPage(page.url, page.params, text, f"unexpected page shape: {exc}")
                broken.origin = origin
                self.stats.add(broken_pages=1)
                listing.broken.append(broken)
                break
            fresh = []
            for rec in recs:
                rid = record_id(rec)
                if rid is not None and rid in seen_ids:
                    self.stats.add(duplicate_records=1)
                    continue
                if rid is not None:
                    seen_ids.add(rid)
                fresh.append(rec)
            if recs and not fresh:
                self.stats.add(repeated_pages=1)
                stale_pages += 1
            else:
                stale_pages = 0
            listing.pages.append((page, fresh))
            nxt = next_params(page.data)
            if nxt is None:
                break
            if json.dumps(nxt, sort_keys=True) in requested:
                self.stats.add(cursor_loops=1)
                listing.notes.append(f"{page_label}: cursor repeats an earlier one; stopped")
                break
            if stale_pages >= 3:
                listing.notes.append(f"{page_label}: three pages of repeats in a row; stopped")
                break
            extra = nxt
        return listing
