#![cfg(feature = "test-util")]
//! The bounded verified-token cache: bounds, TTL, the expiry cap, single flight, and what is
//! never cached.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::clock::unix_now;
use mcp_auth::verify::{CachedVerifier, TokenCache};
use mcp_auth::{AuthInfo, ConfigError, TokenVerifier, VerifyError};

const ISSUER: &str = "https://as.example.com";

/// A verifier that counts its calls, waits `delay`, and accepts every token with
/// `subject = "user-of-<token>"` and the given expiry.
fn counting_verifier(
    delay: Duration,
    expires_at: Option<i64>,
) -> (Arc<AtomicUsize>, impl TokenVerifier + Clone) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let verifier = move |token: String| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            let mut info =
                AuthInfo::new(token.clone(), ISSUER).with_subject(format!("user-of-{token}"));
            if let Some(exp) = expires_at {
                info = info.with_expires_at(exp);
            }
            Ok::<_, VerifyError>(info)
        }
    };
    (calls, verifier)
}

#[tokio::test]
async fn repeated_verifications_of_one_token_call_the_verifier_once() {
    let (calls, inner) = counting_verifier(Duration::ZERO, None);
    let verifier = CachedVerifier::new(inner);
    for _ in 0..5 {
        let info = verifier.verify("tok-a").await.unwrap();
        assert_eq!(info.subject.as_deref(), Some("user-of-tok-a"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    verifier.cache().run_pending_tasks().await;
    assert_eq!(verifier.entry_count(), 1);
}

#[tokio::test]
async fn each_token_gets_its_own_entry_and_its_own_answer() {
    let (calls, inner) = counting_verifier(Duration::ZERO, None);
    let verifier = CachedVerifier::new(inner);
    let a = verifier.verify("tok-a").await.unwrap();
    let b = verifier.verify("tok-b").await.unwrap();
    let a_again = verifier.verify("tok-a").await.unwrap();
    assert_eq!(a.subject.as_deref(), Some("user-of-tok-a"));
    assert_eq!(b.subject.as_deref(), Some("user-of-tok-b"));
    assert_eq!(a_again.token, "tok-a");
    assert_eq!(a_again, a);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_cache_never_holds_more_than_max_entries() {
    let (calls, inner) = counting_verifier(Duration::ZERO, None);
    let verifier = CachedVerifier::with_cache(
        inner,
        TokenCache::builder().max_entries(10).build().unwrap(),
    );
    for i in 0..200 {
        verifier.verify(&format!("token-{i}")).await.unwrap();
    }
    verifier.cache().run_pending_tasks().await;
    assert!(
        verifier.entry_count() <= 10,
        "{} entries",
        verifier.entry_count()
    );
    assert!(verifier.entry_count() > 0);
    assert_eq!(calls.load(Ordering::SeqCst), 200);
    assert_eq!(verifier.cache().max_entries(), 10);
}

#[tokio::test]
async fn defaults_are_ten_thousand_entries_and_sixty_seconds() {
    let cache = TokenCache::new();
    assert_eq!(cache.max_entries(), 10_000);
    assert_eq!(cache.ttl(), Duration::from_secs(60));
    assert!(cache.is_empty());
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let (calls, inner) = counting_verifier(Duration::ZERO, None);
    let verifier = CachedVerifier::with_cache(
        inner,
        TokenCache::builder()
            .ttl(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    verifier.verify("tok").await.unwrap();
    verifier.verify("tok").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    verifier.verify("tok").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn entries_never_outlive_the_tokens_expiry() {
    // TTL 60 s, but the token expires within the next second.
    let exp = unix_now() + 1;
    let (calls, inner) = counting_verifier(Duration::ZERO, Some(exp));
    let verifier = CachedVerifier::new(inner);
    verifier.verify("tok").await.unwrap();
    verifier.verify("tok").await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "cached while the token is valid"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(unix_now() >= exp);
    assert!(
        matches!(
            verifier.verify("tok").await,
            Err(VerifyError::InvalidToken { .. })
        ),
        "an expired success is refused, not handed back"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "re-verified once the token expired"
    );
}

#[tokio::test]
async fn an_already_expired_success_is_refused_and_not_cached() {
    let (calls, inner) = counting_verifier(Duration::ZERO, Some(unix_now() - 10));
    let verifier = CachedVerifier::new(inner);
    for _ in 0..2 {
        assert!(matches!(
            verifier.verify("old").await,
            Err(VerifyError::InvalidToken { reason }) if reason.contains("expired")
        ));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "never served from the cache"
    );
    verifier.cache().run_pending_tasks().await;
    assert_eq!(verifier.entry_count(), 0);
}

#[tokio::test]
async fn concurrent_requests_with_one_token_share_one_verification() {
    let (calls, inner) = counting_verifier(Duration::from_millis(200), None);
    let verifier = Arc::new(CachedVerifier::new(inner));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let verifier = Arc::clone(&verifier);
            tokio::spawn(async move { verifier.verify("shared-token").await })
        })
        .collect();
    for task in tasks {
        let info = task.await.unwrap().unwrap();
        assert_eq!(info.token, "shared-token");
        assert_eq!(info.subject.as_deref(), Some("user-of-shared-token"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    // Fails on the first call (AS down), succeeds afterwards.
    let inner = move |token: String| {
        let counter = Arc::clone(&counter);
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(VerifyError::unavailable("authorization server down"))
            } else {
                Ok(AuthInfo::new(token, ISSUER))
            }
        }
    };
    let verifier = CachedVerifier::new(inner);
    assert!(matches!(
        verifier.verify("tok").await,
        Err(VerifyError::Unavailable { .. })
    ));
    assert!(
        verifier.verify("tok").await.is_ok(),
        "the 503 healed on the next request"
    );
    assert!(verifier.verify("tok").await.is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn invalid_tokens_are_asked_about_every_time() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = move |_token: String| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Err::<AuthInfo, _>(VerifyError::invalid_token("revoked"))
        }
    };
    let verifier = CachedVerifier::new(inner);
    for _ in 0..3 {
        assert!(matches!(
            verifier.verify("bad").await,
            Err(VerifyError::InvalidToken { .. })
        ));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_zero_ttl_or_max_entries_is_refused_at_build() {
    for (builder, setting) in [
        (TokenCache::builder().ttl(Duration::ZERO), "ttl"),
        (TokenCache::builder().max_entries(0), "max_entries"),
    ] {
        let error = builder.build().unwrap_err();
        assert!(
            matches!(&error, ConfigError::ZeroSetting { setting: s, .. } if *s == setting),
            "{error:?}"
        );
        assert!(error.to_string().contains("cache(false)"), "{error}");
    }
}

#[tokio::test]
async fn invalidating_a_token_forces_a_new_verification() {
    let (calls, inner) = counting_verifier(Duration::ZERO, None);
    let verifier = CachedVerifier::new(inner);
    verifier.verify("tok").await.unwrap();
    verifier.cache().invalidate("tok").await;
    verifier.verify("tok").await.unwrap();
    verifier.cache().invalidate_all();
    verifier.verify("tok").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn get_or_verify_returns_the_requests_token_and_caches_by_hash() {
    let cache = TokenCache::new();
    let first = cache
        .get_or_verify("tok-1", || async {
            Ok(AuthInfo::new("tok-1", ISSUER).with_subject("s"))
        })
        .await
        .unwrap();
    assert_eq!(first.token, "tok-1");
    // Served from the cache: the closure would fail if it ran.
    let second = cache
        .get_or_verify("tok-1", || async {
            Err(VerifyError::invalid_token("must not run"))
        })
        .await
        .unwrap();
    assert_eq!(second.token, "tok-1");
    assert_eq!(second.subject.as_deref(), Some("s"));
    // The cache's Debug output does not contain the token.
    assert!(!format!("{cache:?}").contains("tok-1"));
}

#[tokio::test]
async fn concurrent_requests_share_one_failed_verification_too() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let inner = move |_token: String| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Err::<AuthInfo, _>(VerifyError::unavailable("authorization server down"))
        }
    };
    let verifier = Arc::new(CachedVerifier::new(inner));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let verifier = Arc::clone(&verifier);
            tokio::spawn(async move { verifier.verify("tok").await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap(),
            Err(VerifyError::Unavailable { .. })
        ));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one upstream call for the whole burst"
    );
    // ...and the failure was not kept.
    let _ = verifier.verify("tok").await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
