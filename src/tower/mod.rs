//! Tower integration: the bearer guard as middleware ([`BearerAuthLayer`]) and the well-known
//! metadata endpoints as a service ([`MetadataService`]).
//!
//! Both work with anything built on tower: axum (`Router::layer`, `route_service`,
//! `fallback_service`), hyper (through `hyper_util::service::TowerToHyperService`) and rmcp's
//! `StreamableHttpService`.

mod bearer;
mod metadata;

pub use bearer::{BearerAuthLayer, BearerAuthService, ResponseFuture};
pub use metadata::{AUTHORIZATION_SERVER_METADATA_PATH, DEFAULT_METADATA_MAX_AGE, MetadataService};
