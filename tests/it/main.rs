//! The integration tests, in one binary: every module drives the crate from outside, over real
//! HTTP on loopback where the network matters (the test authorization server, the examples'
//! apps, raw TCP clients), and shares its fixtures through [`support`].
//!
//! One binary links the crate and its adapters once, instead of once per test file.

// The examples' shared code (configuration, set-up, apps), which the example tests drive.
#[path = "../../examples/common/mod.rs"]
mod common;
mod support;

mod actix_adapter;
mod api_keys;
mod as_faults;
mod axum_adapter;
mod bearer;
mod bearer_auth_jwt;
mod cold_start;
mod discovery;
mod dpop;
mod hostile_documents;
mod hostile_headers;
mod hostile_tokens;
mod hyper_adapter;
mod introspection_verifier;
mod jwks_recovery;
mod jwt_verifier;
mod mcp_auth_config;
mod mcp_headers;
mod metadata_endpoints;
mod metrics;
mod mtls;
mod operation_scopes;
mod per_principal;
mod properties;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "redis")]
mod replicas;
mod rmcp_client;
mod rmcp_integration;
mod session_binding;
mod state_handles;
mod test_auth_server;
mod token_binding;
mod token_cache;
mod token_exchange;
mod trust;
mod userinfo_verifier;
mod whoami_example;
