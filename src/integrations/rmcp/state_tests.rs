use std::error::Error as _;
use std::time::Duration;

use super::*;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const ISSUER: &str = "https://auth.example.com";

fn handles() -> CallerBoundState {
    CallerBoundState::new(RequestStateCodec::try_new(KEY.to_vec()).expect("key"))
}

fn user(subject: &str) -> AuthInfo {
    AuthInfo::new("t", ISSUER)
        .with_subject(subject)
        .with_client_id("app")
}

fn refused(result: Result<Vec<u8>, StateHandleError>) -> RefusalReason {
    match result {
        Err(StateHandleError::Refused { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_handle_opens_for_its_principal_only() {
    let handles = handles();
    let handle = handles.seal(&user("alice"), b"cart=42").unwrap();
    assert_eq!(handles.open(&user("alice"), &handle).unwrap(), b"cart=42");
    // Another token of the same principal (the token itself is not part of the binding).
    let mut renewed = user("alice");
    renewed.token = "a-refreshed-token".into();
    assert_eq!(handles.open(&renewed, &handle).unwrap(), b"cart=42");

    assert!(matches!(
        refused(handles.open(&user("bob"), &handle)),
        RefusalReason::Codec(RequestStateError::IntegrityCheckFailed)
    ));
}

#[test]
fn issuer_subject_client_and_credential_kind_each_bind() {
    let handles = handles();
    let alice = user("alice");
    let handle = handles.seal(&alice, b"x").unwrap();
    let other_issuer = AuthInfo::new("t", "https://other.example.com")
        .with_subject("alice")
        .with_client_id("app");
    let other_client = AuthInfo::new("t", ISSUER)
        .with_subject("alice")
        .with_client_id("another-app");
    let no_client = AuthInfo::new("t", ISSUER).with_subject("alice");
    let mut api_key = user("alice");
    api_key.credential = CredentialKind::api_key("alice");
    for stranger in [other_issuer, other_client, no_client, api_key] {
        assert!(
            handles.open(&stranger, &handle).is_err(),
            "{stranger:?} opened Alice's handle"
        );
    }
}

#[test]
fn the_encoding_is_unambiguous() {
    let context = |issuer: &str, subject: Option<&str>, client: Option<&str>| {
        let mut info = AuthInfo::new("t", issuer);
        info.subject = subject.map(str::to_owned);
        info.client_id = client.map(str::to_owned);
        principal_context(&info).unwrap()
    };
    // Moving bytes between parts changes the encoding.
    assert_ne!(
        context("ab", Some("c"), None),
        context("a", Some("bc"), None)
    );
    assert_ne!(
        context("i", Some("ab"), Some("c")),
        context("i", Some("a"), Some("bc"))
    );
    // An absent part is not an empty one, and subject and client are not interchangeable.
    assert_ne!(
        context("i", Some(""), Some("c")),
        context("i", None, Some("c"))
    );
    assert_ne!(context("i", Some("x"), None), context("i", None, Some("x")));
    // The same principal encodes the same way.
    assert_eq!(
        context("i", Some("s"), Some("c")),
        context("i", Some("s"), Some("c"))
    );
}

#[test]
fn a_caller_without_subject_or_client_cannot_seal_or_open() {
    let handles = handles();
    let nobody = AuthInfo::new("t", ISSUER);
    assert!(matches!(
        handles.seal(&nobody, b"x"),
        Err(StateHandleError::NoPrincipal)
    ));
    let handle = handles.seal(&user("alice"), b"x").unwrap();
    assert!(matches!(
        handles.open(&nobody, &handle),
        Err(StateHandleError::NoPrincipal)
    ));
    // A machine token (client only) is a principal of its own.
    let machine = AuthInfo::new("t", ISSUER).with_client_id("batch-job");
    let handle = handles.seal(&machine, b"job=7").unwrap();
    assert_eq!(handles.open(&machine, &handle).unwrap(), b"job=7");
}

#[test]
fn the_purpose_binds_too() {
    let handles = handles();
    let alice = user("alice");
    let handle = handles.seal_for(&alice, b"checkout", b"cart=1").unwrap();
    assert_eq!(
        handles.open_for(&alice, b"checkout", &handle).unwrap(),
        b"cart=1"
    );
    assert!(handles.open_for(&alice, b"refund", &handle).is_err());
    assert!(handles.open(&alice, &handle).is_err());
    // The purpose is length-prefixed after the principal: no shifting bytes across.
    let bare = handles.seal(&alice, b"x").unwrap();
    assert!(handles.open_for(&alice, b"", &bare).is_ok());
    assert!(handles.open_for(&alice, b"\0", &bare).is_err());
}

#[test]
fn altered_forged_and_foreign_key_handles_are_refused() {
    let handles = handles();
    let alice = user("alice");
    let handle = handles.seal(&alice, b"cart=42").unwrap();
    let mut altered = handle.clone().into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let foreign = CallerBoundState::new(
        RequestStateCodec::try_new(b"another-key-another-key-another-key".to_vec()).unwrap(),
    )
    .seal(&alice, b"cart=42")
    .unwrap();
    for bad in [
        altered.as_str(),
        foreign.as_str(),
        "",
        "rs1",
        "rs1..",
        "not a handle",
        "💥",
    ] {
        assert!(handles.open(&alice, bad).is_err(), "{bad:?} opened");
    }
}

#[test]
fn an_oversized_handle_is_refused_before_decoding() {
    let handles = handles();
    let huge = format!("rs1.{}.x", "A".repeat(MAX_HANDLE_BYTES));
    assert!(matches!(
        refused(handles.open(&user("alice"), &huge)),
        RefusalReason::TooLong { .. }
    ));
}

#[test]
fn handles_expire() {
    // The codec stamps milliseconds; a 1 ms lifetime is over after a short sleep.
    let handles = handles().ttl(Duration::from_millis(1)).unwrap();
    let alice = user("alice");
    let handle = handles.seal(&alice, b"x").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(matches!(
        refused(handles.open(&alice, &handle)),
        RefusalReason::Codec(RequestStateError::Expired)
    ));
}

#[test]
fn a_zero_ttl_is_a_config_error_and_the_default_is_fifteen_minutes() {
    assert_eq!(handles().handle_ttl(), Duration::from_secs(900));
    assert!(matches!(
        handles().ttl(Duration::ZERO),
        Err(ConfigError::ZeroSetting { setting: "ttl", .. })
    ));
}

#[test]
fn json_round_trips_and_a_wrong_shape_is_refused() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Cart {
        id: u32,
    }
    let handles = handles();
    let alice = user("alice");
    let handle = handles.seal_json(&alice, &Cart { id: 9 }).unwrap();
    assert_eq!(
        handles.open_json::<Cart>(&alice, &handle).unwrap(),
        Cart { id: 9 }
    );
    let other = handles.seal_json(&alice, &"a string").unwrap();
    match handles.open_json::<Cart>(&alice, &other) {
        Err(StateHandleError::Refused {
            reason: RefusalReason::Payload(_),
        }) => {}
        other => panic!("expected a payload refusal, got {other:?}"),
    }
}

#[test]
fn every_refusal_says_the_same_to_the_client_and_the_reason_to_logs() {
    let handles = handles();
    let handle = handles.seal(&user("alice"), b"x").unwrap();
    let wrong_user = handles.open(&user("bob"), &handle).unwrap_err();
    let malformed = handles.open(&user("alice"), "garbage").unwrap_err();
    assert_eq!(wrong_user.to_string(), malformed.to_string());
    assert_ne!(
        wrong_user.source().unwrap().to_string(),
        malformed.source().unwrap().to_string()
    );

    let data: rmcp::ErrorData = wrong_user.into();
    assert_eq!(data.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert_eq!(data.message, REFUSED);
    let data: rmcp::ErrorData = StateHandleError::NoPrincipal.into();
    assert_eq!(data.code, rmcp::model::ErrorCode::INTERNAL_ERROR);
}

#[test]
fn debug_shows_no_key() {
    let rendered = format!("{:?}", handles());
    assert!(!rendered.contains("0123456789abcdef"), "{rendered}");
}
