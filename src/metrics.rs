//! Metrics (feature `metrics`): counters and histograms of the auth decisions, the outbound
//! fetches and the caches, through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! The crate only *records*; your application picks where the figures go by installing a
//! recorder (an exporter) once at start: Prometheus with
//! [`metrics-exporter-prometheus`](https://docs.rs/metrics-exporter-prometheus), OpenTelemetry
//! (OTLP) with an OpenTelemetry bridge such as `metrics-exporter-opentelemetry`, StatsD, or your
//! own. Without a recorder every call is a check of an unset global and does nothing; without
//! the feature no metrics code or dependency is compiled at all.
//!
//! # Why the `metrics` facade, not OpenTelemetry
//!
//! A library should not choose its users' telemetry backend. `metrics` is to metrics what
//! `log` is to logging: a small facade crate (no I/O, no runtime, no background task) that
//! libraries call and applications wire to any exporter, OpenTelemetry included. Depending on
//! the OpenTelemetry SDK instead would pull its runtime, its version churn and its
//! configuration into every server that only wants a Prometheus page, and would tie the crate
//! to one backend. The names follow the Prometheus conventions (`_total` for counters, base
//! units in the name), which OpenTelemetry bridges keep.
//!
//! # The metrics
//!
//! Every name starts with `mcp_auth_`. Label values are fixed strings from the crate (never a
//! token, a subject, a URL or other request data), so the number of series stays small.
//!
//! | Name | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `mcp_auth_requests_total` | counter | `outcome` = `allowed` \| `refused`; `reason` = `ok` or the refusal's [`BearerAuthError::code`](crate::BearerAuthError::code) (`missing_auth_header`, `invalid_token`, `token_expired`, `invalid_audience`, `missing_required_scopes`, `auth_server_unavailable`, ...); `status` = the refusal's HTTP status (`400`, `401`, `403`, `500`, `503`; refusals only) | One per decision of a bearer guard. A per-tool scope refusal (step-up, [`OperationScopes`](crate::tower::OperationScopesLayer)) of a request the guard allowed is a second, `refused` decision. |
//! | `mcp_auth_jwks_fetches_total` | counter | `outcome` = `ok` \| `error` | JWKS fetches the JWT verifier made (first fetch, `kid` misses, background refreshes). `error`: unreachable, a non-2xx answer, or not a JWKS. |
//! | `mcp_auth_jwks_fetch_duration_seconds` | histogram | `outcome` | How long each JWKS fetch took, in seconds. |
//! | `mcp_auth_jwks_refresh_suppressed_total` | counter | `reason` = `cooldown` \| `backoff` | A token needed a refresh of the JWKS (unknown `kid`, stale keys) but none was made: `cooldown` after a successful fetch (`jwks_refresh_cooldown`), `backoff` after failed ones. A steady `cooldown` rate means clients send `kid`s the issuer does not publish. |
//! | `mcp_auth_discovery_fetches_total` | counter | `outcome` = `ok` \| `error` | Fetches of authorization server metadata by [`AuthServer`](crate::AuthServer) (first use and periodic refresh). `error` includes a document refused by validation or for a foreign endpoint. |
//! | `mcp_auth_discovery_fetch_duration_seconds` | histogram | `outcome` | How long each discovery fetch (with its checks) took, in seconds. |
//! | `mcp_auth_discovery_refresh_suppressed_total` | counter | `reason` = `backoff` | Callers answered from the previous document, or with the last error, while discovery backs off after failures. |
//! | `mcp_auth_cache_lookups_total` | counter | `cache` = `jwt` \| `token`; `result` = `hit` \| `miss` | Lookups in a verified-token cache: `jwt` is [`JwtVerifier`](crate::JwtVerifier)'s own, `token` is a [`TokenCache`](crate::verify::TokenCache) (the userinfo and introspection verifiers, [`CachedVerifier`](crate::verify::CachedVerifier)). A `jwt` entry whose key has left the JWKS counts as a miss. Not counted when the cache is off. |
//! | `mcp_auth_session_evictions_total` | counter | `reason` = `idle` \| `principal_cap` \| `capacity` | Session bindings forgotten before their session ended: unused for the idle timeout, the caller's oldest over its per-caller cap, or the least recently used of a full store. |
//! | `mcp_auth_session_refusals_total` | counter | `reason` = `other_owner` (403) \| `forgotten` \| `unknown` (404) | Requests the session binding refused. |
//! | `mcp_auth_session_store_errors_total` | counter | `store` = `memory` \| `redis` | Failed reads or writes of the session binding's shared [`StateStore`](crate::store::StateStore) (timeouts, Redis unreachable); each one answered its request 503. |
//! | `mcp_auth_cache_store_errors_total` | counter | `store` = `memory` \| `redis` | Failed reads or writes, or unreadable values, of a token cache's shared [`StateStore`](crate::store::StateStore); each one was taken as a miss (the authorization server was asked). |
//!
//! Call [`describe`] once after installing the recorder to give each metric its help text and
//! unit (Prometheus `# HELP` lines).
//!
//! # Per-request tracing
//!
//! Independently of this feature, each verification by a bearer guard runs in a `tracing` span
//! `mcp_auth.authenticate` (level `INFO`) with the fields `resource`, `outcome` (`allowed` or
//! `refused`) and `code` (`ok` or the refusal's code), recorded when the decision is made.
//! Header problems (no or malformed credentials) are answered before any verification and are
//! counted, but get no span.
//!
//! # Example
//!
//! A Prometheus page on axum; `examples/metrics_prometheus.rs` is the runnable version.
//!
//! ```
//! # #[cfg(feature = "metrics")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use metrics_exporter_prometheus::PrometheusBuilder;
//!
//! let prometheus = PrometheusBuilder::new().install_recorder()?;
//! mcp_auth::metrics::describe();
//! let app: axum::Router = axum::Router::new().route(
//!     "/metrics",
//!     axum::routing::get(move || std::future::ready(prometheus.render())),
//! );
//! # let _ = app;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "metrics"))]
//! # fn main() {}
//! ```

#[cfg(feature = "metrics")]
use std::time::Duration;

/// `mcp_auth_requests_total`: decisions of the bearer guards.
#[cfg(feature = "metrics")]
pub const REQUESTS_TOTAL: &str = "mcp_auth_requests_total";
/// `mcp_auth_jwks_fetches_total`: JWKS fetches by outcome.
#[cfg(feature = "metrics")]
pub const JWKS_FETCHES_TOTAL: &str = "mcp_auth_jwks_fetches_total";
/// `mcp_auth_jwks_fetch_duration_seconds`: JWKS fetch latency.
#[cfg(feature = "metrics")]
pub const JWKS_FETCH_DURATION_SECONDS: &str = "mcp_auth_jwks_fetch_duration_seconds";
/// `mcp_auth_jwks_refresh_suppressed_total`: JWKS refreshes skipped for the cooldown or backoff.
#[cfg(feature = "metrics")]
pub const JWKS_REFRESH_SUPPRESSED_TOTAL: &str = "mcp_auth_jwks_refresh_suppressed_total";
/// `mcp_auth_discovery_fetches_total`: metadata fetches by outcome.
#[cfg(feature = "metrics")]
pub const DISCOVERY_FETCHES_TOTAL: &str = "mcp_auth_discovery_fetches_total";
/// `mcp_auth_discovery_fetch_duration_seconds`: metadata fetch latency.
#[cfg(feature = "metrics")]
pub const DISCOVERY_FETCH_DURATION_SECONDS: &str = "mcp_auth_discovery_fetch_duration_seconds";
/// `mcp_auth_discovery_refresh_suppressed_total`: metadata fetches skipped for the backoff.
#[cfg(feature = "metrics")]
pub const DISCOVERY_REFRESH_SUPPRESSED_TOTAL: &str = "mcp_auth_discovery_refresh_suppressed_total";
/// `mcp_auth_cache_lookups_total`: verified-token cache hits and misses.
#[cfg(feature = "metrics")]
pub const CACHE_LOOKUPS_TOTAL: &str = "mcp_auth_cache_lookups_total";
/// `mcp_auth_session_evictions_total`: session bindings forgotten before their session ended.
#[cfg(feature = "metrics")]
pub const SESSION_EVICTIONS_TOTAL: &str = "mcp_auth_session_evictions_total";
/// `mcp_auth_session_refusals_total`: requests refused by the session binding.
#[cfg(feature = "metrics")]
pub const SESSION_REFUSALS_TOTAL: &str = "mcp_auth_session_refusals_total";
/// `mcp_auth_session_store_errors_total`: failed operations of the session binding's shared
/// store (each answered 503).
#[cfg(feature = "metrics")]
pub const SESSION_STORE_ERRORS_TOTAL: &str = "mcp_auth_session_store_errors_total";
/// `mcp_auth_cache_store_errors_total`: failed operations or unreadable values of a token
/// cache's shared store (each taken as a miss).
#[cfg(feature = "metrics")]
pub const CACHE_STORE_ERRORS_TOTAL: &str = "mcp_auth_cache_store_errors_total";

/// Registers the help text and unit of every metric above with the installed recorder (for
/// Prometheus `# HELP` lines). Call it once, after installing the recorder; without one it
/// does nothing.
#[cfg(feature = "metrics")]
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Bearer guard decisions, by outcome (allowed, refused), reason code and HTTP status."
    );
    describe_counter!(
        JWKS_FETCHES_TOTAL,
        Unit::Count,
        "JWKS fetches, by outcome (ok, error)."
    );
    describe_histogram!(
        JWKS_FETCH_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of JWKS fetches, by outcome."
    );
    describe_counter!(
        JWKS_REFRESH_SUPPRESSED_TOTAL,
        Unit::Count,
        "JWKS refreshes a token needed but the cooldown or the failure backoff held back."
    );
    describe_counter!(
        DISCOVERY_FETCHES_TOTAL,
        Unit::Count,
        "Authorization server metadata fetches, by outcome (ok, error)."
    );
    describe_histogram!(
        DISCOVERY_FETCH_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of authorization server metadata fetches, by outcome."
    );
    describe_counter!(
        DISCOVERY_REFRESH_SUPPRESSED_TOTAL,
        Unit::Count,
        "Metadata lookups answered without a fetch while discovery backs off after failures."
    );
    describe_counter!(
        CACHE_LOOKUPS_TOTAL,
        Unit::Count,
        "Verified-token cache lookups, by cache (jwt, token) and result (hit, miss)."
    );
    describe_counter!(
        SESSION_EVICTIONS_TOTAL,
        Unit::Count,
        "MCP session bindings forgotten before their session ended, by reason."
    );
    describe_counter!(
        SESSION_REFUSALS_TOTAL,
        Unit::Count,
        "Requests refused by the MCP session binding, by reason."
    );
    describe_counter!(
        SESSION_STORE_ERRORS_TOTAL,
        Unit::Count,
        "Failed operations of the session binding's shared state store (each answered 503)."
    );
    describe_counter!(
        CACHE_STORE_ERRORS_TOTAL,
        Unit::Count,
        "Failed operations or unreadable values of a token cache's shared state store (each taken as a miss)."
    );
}

/// Which verified-token cache a lookup went to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cache {
    /// `JwtVerifier`'s own cache.
    Jwt,
    /// A `TokenCache`.
    Token,
}

/// Measures a fetch; zero-sized and free without the feature.
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl Timer {
    /// Starts measuring now.
    #[inline(always)]
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }

    #[cfg(feature = "metrics")]
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(feature = "metrics")]
fn outcome(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}

/// A request the guard let through.
#[inline(always)]
pub(crate) fn request_allowed() {
    #[cfg(feature = "metrics")]
    metrics::counter!(REQUESTS_TOTAL, "outcome" => "allowed", "reason" => "ok").increment(1);
}

/// A request the guard refused with `reason` (a `BearerAuthError` code) and `status`.
#[inline(always)]
pub(crate) fn request_refused(reason: &'static str, status: http::StatusCode) {
    #[cfg(feature = "metrics")]
    {
        let status: metrics::SharedString = match status.as_u16() {
            400 => "400".into(),
            401 => "401".into(),
            403 => "403".into(),
            500 => "500".into(),
            503 => "503".into(),
            other => other.to_string().into(),
        };
        metrics::counter!(
            REQUESTS_TOTAL,
            "outcome" => "refused",
            "reason" => reason,
            "status" => status
        )
        .increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (reason, status);
}

/// A JWKS fetch that took since `timer` started and succeeded (`ok`) or not.
#[inline(always)]
pub(crate) fn jwks_fetch(timer: &Timer, ok: bool) {
    #[cfg(feature = "metrics")]
    {
        let outcome = outcome(ok);
        metrics::counter!(JWKS_FETCHES_TOTAL, "outcome" => outcome).increment(1);
        metrics::histogram!(JWKS_FETCH_DURATION_SECONDS, "outcome" => outcome)
            .record(timer.elapsed().as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (timer, ok);
}

/// A JWKS refresh held back: by the backoff after failures (`backoff`), else by the cooldown.
#[inline(always)]
pub(crate) fn jwks_refresh_suppressed(backoff: bool) {
    #[cfg(feature = "metrics")]
    {
        let reason = if backoff { "backoff" } else { "cooldown" };
        metrics::counter!(JWKS_REFRESH_SUPPRESSED_TOTAL, "reason" => reason).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = backoff;
}

/// A discovery fetch (with its checks) that took since `timer` started.
#[inline(always)]
pub(crate) fn discovery_fetch(timer: &Timer, ok: bool) {
    #[cfg(feature = "metrics")]
    {
        let outcome = outcome(ok);
        metrics::counter!(DISCOVERY_FETCHES_TOTAL, "outcome" => outcome).increment(1);
        metrics::histogram!(DISCOVERY_FETCH_DURATION_SECONDS, "outcome" => outcome)
            .record(timer.elapsed().as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (timer, ok);
}

/// A metadata lookup answered without a fetch because discovery backs off.
#[inline(always)]
pub(crate) fn discovery_refresh_suppressed() {
    #[cfg(feature = "metrics")]
    metrics::counter!(DISCOVERY_REFRESH_SUPPRESSED_TOTAL, "reason" => "backoff").increment(1);
}

/// A lookup in a verified-token cache.
#[inline(always)]
pub(crate) fn cache_lookup(cache: Cache, hit: bool) {
    #[cfg(feature = "metrics")]
    {
        let cache = match cache {
            Cache::Jwt => "jwt",
            Cache::Token => "token",
        };
        let result = if hit { "hit" } else { "miss" };
        metrics::counter!(CACHE_LOOKUPS_TOTAL, "cache" => cache, "result" => result).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (cache, hit);
}

/// A session binding forgotten before its session ended (`idle`, `principal_cap`, `capacity`).
#[inline(always)]
pub(crate) fn session_evicted(reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(SESSION_EVICTIONS_TOTAL, "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// A request the session binding refused (`other_owner`, `forgotten`, `unknown`).
#[inline(always)]
pub(crate) fn session_refused(reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(SESSION_REFUSALS_TOTAL, "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// A failed operation of the session binding's shared store (`store` = its name).
#[inline(always)]
pub(crate) fn session_store_error(store: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(SESSION_STORE_ERRORS_TOTAL, "store" => store).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = store;
}

/// A failed operation, or an unreadable value, of a token cache's shared store.
#[inline(always)]
pub(crate) fn cache_store_error(store: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(CACHE_STORE_ERRORS_TOTAL, "store" => store).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = store;
}
