//! Metadata documents: what an authorization server publishes (RFC 8414 / OpenID Connect
//! discovery) and what a protected resource publishes (RFC 9728).

mod authorization_server;
mod protected_resource;
mod served;

pub use authorization_server::AuthorizationServerMetadata;
pub(crate) use protected_resource::protected_resource_metadata_path;
pub use protected_resource::{
    ProtectedResourceMetadata, ProtectedResourceMetadataBuilder, protected_resource_metadata_url,
};
pub(crate) use served::ServedDocument;
