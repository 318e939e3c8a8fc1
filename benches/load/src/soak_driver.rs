//! The soak test: the `whoami` example under load for `DURATION` seconds (default 600) with a
//! mix of valid, expired, wrong-audience and garbage tokens, while the built-in test
//! authorization server rotates its keys and has a failure window. Run it with
//! `scripts/soak.sh` (which builds it in release mode), or:
//!
//! ```text
//! DURATION=600 CONCURRENCY=4 cargo run --release -p mcp-auth-load --bin soak_driver
//! ```
//!
//! Everything runs in this process, on loopback only: the whoami app as `examples/whoami.rs`
//! builds it (axum + rmcp, the JWT verifier with its defaults, port 0; rebuilt in-process by
//! `examples/common/apps.rs`), its built-in test authorization server, and `CONCURRENCY` client tasks (default 4), each
//! sending one MCP `tools/call whoami` after the other until `DURATION` ends. Every request
//! picks a token class at random: valid (50%), expired (15%), wrong audience (15%) or garbage
//! (20%: not a JWT, a forged signature under the real `kid`, `alg: none`, HS256 keyed with
//! the public key, truncated signature, a token of another issuer).
//!
//! The authorization server (times as fractions of `DURATION`):
//!
//! - rotates its keys at 0.2, 0.5 (inside the failure window) and 0.8, each at least 35 s
//!   after the previous JWKS fetch (the start, the previous rotation, the end of the degraded
//!   period below), and skipped when that does not fit. A rotation publishes the new keys
//!   beside the current ones, as real authorization servers do, and the clients switch to
//!   tokens signed with the new keys at once;
//! - answers 503 on its metadata and JWKS endpoints from 0.4 to 0.6: the failure window.
//!
//! Expected decisions. Valid tokens: 200, except 503 while the keys that signed them cannot
//! be fetched: from the start of the failure window until its end plus the JWKS refresh
//! cooldown (30 s) and 5 s of margin (the *degraded* period). Invalid tokens: 401, or 503 in
//! the degraded period (a key that cannot be fetched is checked before the claims). A wrong
//! decision is an invalid token answered 200, a valid token answered 401 or 403, any 500, or
//! a 503 outside the degraded period. The report gives requests, statuses per class, wrong
//! decisions, and the process's RSS (`VmRSS`) at the start (after a 5 s warm-up), its
//! maximum, and at the end. The exit code is 1 if there was any wrong decision.
//!
//! Why rotations are spaced and there are no random `kid`s among the garbage: a token with an
//! unknown `kid` makes the verifier refresh the JWKS, at most once per cooldown. A key first
//! seen less than one cooldown after the previous fetch (another rotation, or a random `kid`
//! an attacker sent) is only picked up when the cooldown ends, and valid tokens signed with it
//! get 401 until then (a first trial with rotations 25 s apart showed exactly that, for 6 s).
//! That trade-off is documented in SECURITY.md; the soak keeps it out so that its count of
//! wrong decisions means what it says.
//!
//! `DURATION` must be at least 120 s: the schedule needs the 30 s cooldown between rotations
//! and the failure window.

// The whoami examples' shared module: their settings, set-up and app.
#[path = "../../../examples/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use serde_json::json;

/// The whoami app's JWKS refresh cooldown (the verifier's default).
const COOLDOWN: Duration = Duration::from_secs(30);
const MARGIN: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(5);
const POOL: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Valid,
    Expired,
    WrongAudience,
    Garbage,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Valid => "valid",
            Class::Expired => "expired",
            Class::WrongAudience => "wrong audience",
            Class::Garbage => "garbage",
        }
    }
}

/// Tokens of each class, minted with the current keys.
struct Pools {
    valid: Vec<String>,
    expired: Vec<String>,
    wrong_audience: Vec<String>,
    garbage: Vec<String>,
}

impl Pools {
    fn mint(dev: &TestAuthServer, other: &TestAuthServer, resource: &str) -> Pools {
        let now = unix_now();
        let valid = || dev.token().audience(resource).scope("read write");
        let garbage_one = |i: usize| -> String {
            match i % 7 {
                0 => format!("garbage-{i}"),
                1 => valid().sign_with_unknown_key(),
                2 => valid().unsigned(),
                3 => valid().sign_hs256_with(dev.rsa_public_key_pem().as_bytes()),
                4 => {
                    let mut token = valid().sign();
                    token.truncate(token.len() - 4);
                    token
                }
                5 => other.token().audience(resource).scope("read write").sign(),
                _ => format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", "A".repeat(i % 50 + 1)),
            }
        };
        Pools {
            valid: (0..POOL).map(|_| valid().sign()).collect(),
            expired: (0..POOL)
                .map(|_| valid().expires_at(now - 3600).sign())
                .collect(),
            wrong_audience: (0..POOL)
                .map(|_| {
                    dev.token()
                        .audience("https://other.example/mcp")
                        .scope("read write")
                        .sign()
                })
                .collect(),
            garbage: (0..POOL).map(garbage_one).collect(),
        }
    }

    fn pick(&self, class: Class, n: usize) -> String {
        let pool = match class {
            Class::Valid => &self.valid,
            Class::Expired => &self.expired,
            Class::WrongAudience => &self.wrong_audience,
            Class::Garbage => &self.garbage,
        };
        pool[n % pool.len()].clone()
    }
}

#[derive(Default)]
struct Tally {
    /// (class, status) → count; status 0 is a transport error.
    statuses: BTreeMap<(Class, u16), u64>,
    /// Wrong decision → (count, first seen, last seen, the first answer's body).
    wrong: BTreeMap<String, (u64, Duration, Duration, String)>,
    requests: u64,
}

impl Tally {
    fn wrong(&mut self, what: &str, at: Duration, body: &str) {
        let entry = self
            .wrong
            .entry(what.to_owned())
            .or_insert_with(|| (0, at, at, body.chars().take(300).collect()));
        entry.0 += 1;
        entry.2 = at;
    }
}

struct Schedule {
    rotations: Vec<Duration>,
    failure: (Duration, Duration),
    degraded: (Duration, Duration),
}

impl Schedule {
    fn new(duration: Duration) -> Schedule {
        let at = |fraction: f64| duration.mul_f64(fraction);
        let failure = (at(0.4), at(0.6));
        let degraded = (failure.0, failure.1 + COOLDOWN + MARGIN);
        // Rotations at least one cooldown (and a margin) after any JWKS fetch: the start,
        // the previous rotation, the end of the failure window.
        let spacing = COOLDOWN + MARGIN;
        let first = at(0.2).max(spacing);
        let second = at(0.5).max(first + spacing);
        let third = at(0.8).max(degraded.1 + spacing);
        let mut rotations = vec![first];
        if second < failure.1 {
            rotations.push(second);
        }
        if third + MARGIN < duration {
            rotations.push(third);
        }
        Schedule {
            rotations,
            failure,
            degraded,
        }
    }

    fn is_degraded(&self, since_start: Duration) -> bool {
        (self.degraded.0..=self.degraded.1).contains(&since_start)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn env_secs(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not {text:?}")),
        Err(_) => Ok(default),
    }
}

/// Publishes fresh keys beside the current ones, then signs with the fresh ones.
fn rotate(dev: &TestAuthServer) {
    let current = dev.public_jwks();
    // Keep serving exactly the current keys while the fresh ones are generated.
    dev.set_jwks_override(Some(current.clone()));
    dev.rotate_keys();
    let mut keys = dev.public_jwks()["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    keys.extend(current["keys"].as_array().cloned().unwrap_or_default());
    dev.set_jwks_override(Some(json!({ "keys": keys })));
}

fn whoami_call(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id % 1_000_000, "method": "tools/call",
           "params": {"name": "whoami", "arguments": {}}})
    .to_string()
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, String> {
    let duration = Duration::from_secs(env_secs("DURATION", 600)?);
    if duration < Duration::from_secs(120) {
        return Err("DURATION must be at least 120 seconds (see the driver's docs)".into());
    }
    let concurrency = env_secs("CONCURRENCY", 4)?.clamp(1, 64) as usize;

    // The whoami app, as examples/whoami.rs builds it, on a free loopback port.
    let config = common::config::Config::new(0);
    let listener = common::setup::bind(&config)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let setup = common::setup::Setup::new(config, addr)
        .await
        .map_err(|e| e.to_string())?;
    let dev = setup
        .dev_server
        .clone()
        .ok_or("the whoami set-up did not start its test authorization server")?;
    let other = TestAuthServer::start().await.map_err(|e| e.to_string())?;
    let app = common::apps::axum_app(&setup);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = setup.mcp_url.clone();
    let resource = setup.resource.clone();

    let schedule = Arc::new(Schedule::new(duration));
    let pools = Arc::new(RwLock::new(Pools::mint(&dev, &other, &resource)));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    println!(
        "soak: {}s, {concurrency} clients, {url}; rotations at {:?}, failure window {:?}..{:?}, \
         degraded until {:?}",
        duration.as_secs(),
        schedule.rotations,
        schedule.failure.0,
        schedule.failure.1,
        schedule.degraded.1
    );

    let mut clients = Vec::new();
    for worker in 0..concurrency {
        let (url, pools, tally, stop, schedule) = (
            url.clone(),
            Arc::clone(&pools),
            Arc::clone(&tally),
            Arc::clone(&stop),
            Arc::clone(&schedule),
        );
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a reqwest client");
            let mut n: u64 = worker as u64;
            while !stop.load(Ordering::Relaxed) {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let class = match (n >> 33) % 100 {
                    0..50 => Class::Valid,
                    50..65 => Class::Expired,
                    65..80 => Class::WrongAudience,
                    _ => Class::Garbage,
                };
                let token = pools.read().expect("pools").pick(class, (n >> 40) as usize);
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-06-18")
                    .bearer_auth(&token)
                    .body(whoami_call(n))
                    .send()
                    .await;
                let at = started.elapsed();
                let (status, body) = match response {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.bytes().await.unwrap_or_default();
                        (status, String::from_utf8_lossy(&body).into_owned())
                    }
                    Err(error) => (0, error.to_string()),
                };
                let degraded = schedule.is_degraded(at);
                let wrong = match (class, status) {
                    (Class::Valid, 200) if !body.contains("\"alice\"") => {
                        Some("valid token: 200 without the identity")
                    }
                    (_, 500..=599) if status != 503 => Some("server error"),
                    (_, 0) => Some("transport error"),
                    (Class::Valid, 200) => None,
                    (Class::Valid, 401 | 403) => Some("valid token refused (401/403)"),
                    (_, 503) if degraded => None,
                    (_, 503) => Some("503 outside the degraded period"),
                    (Class::Valid, _) => Some("valid token: unexpected status"),
                    (_, 200) => Some("INVALID TOKEN ACCEPTED (200)"),
                    (_, 401) => None,
                    (_, _) => Some("invalid token: unexpected status"),
                };
                let mut tally = tally.lock().expect("tally");
                tally.requests += 1;
                *tally.statuses.entry((class, status)).or_default() += 1;
                if let Some(wrong) = wrong {
                    tally.wrong(wrong, at, &body);
                }
            }
        }));
    }

    // The authorization server's script, and RSS samples every 10 s.
    let mut rss_start = 0;
    let mut rss_max = 0;
    let mut rotations = schedule.rotations.iter().peekable();
    let mut failing = false;
    let mut healed = false;
    let mut next_sample = WARM_UP;
    while started.elapsed() < duration {
        let now = started.elapsed();
        if let Some(at) = rotations.peek()
            && now >= **at
        {
            rotations.next();
            rotate(&dev);
            let fresh = Pools::mint(&dev, &other, &resource);
            *pools.write().expect("pools") = fresh;
            println!("[{:>4}s] keys rotated", now.as_secs());
        }
        if !failing && now >= schedule.failure.0 {
            failing = true;
            for endpoint in [
                Endpoint::OidcMetadata,
                Endpoint::OAuthMetadata,
                Endpoint::Jwks,
            ] {
                dev.fail(endpoint, Fault::Status(503));
            }
            println!(
                "[{:>4}s] failure window: metadata and JWKS answer 503",
                now.as_secs()
            );
        }
        if failing && !healed && now >= schedule.failure.1 {
            healed = true;
            dev.heal_all();
            println!("[{:>4}s] authorization server healed", now.as_secs());
        }
        if now >= next_sample {
            let rss = rss_kib();
            if rss_start == 0 {
                rss_start = rss;
            }
            rss_max = rss_max.max(rss);
            let requests = tally.lock().expect("tally").requests;
            println!("[{:>4}s] requests {requests}, RSS {rss} KiB", now.as_secs());
            next_sample += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    let rss_end = rss_kib();
    server.abort();

    let tally = tally.lock().expect("tally");
    let elapsed = started.elapsed();
    println!("\n== soak report ==");
    println!(
        "duration {:.0}s, requests {}, {:.0}/s",
        elapsed.as_secs_f64(),
        tally.requests,
        tally.requests as f64 / elapsed.as_secs_f64()
    );
    println!("statuses by token class (0 = transport error):");
    for ((class, status), count) in &tally.statuses {
        println!("  {:<15} {status:>3}  {count}", class.name());
    }
    let wrong_total: u64 = tally.wrong.values().map(|(count, ..)| count).sum();
    println!("wrong decisions: {wrong_total}");
    for (what, (count, first, last, body)) in &tally.wrong {
        println!(
            "  {what}: {count}, from {}s to {}s; first answer: {body}",
            first.as_secs(),
            last.as_secs()
        );
    }
    println!(
        "RSS: start {rss_start} KiB (after {}s), max {rss_max} KiB, end {rss_end} KiB",
        WARM_UP.as_secs()
    );
    println!(
        "JWKS requests served by the authorization server: {}",
        dev.request_count(Endpoint::Jwks)
    );
    Ok(wrong_total == 0)
}
