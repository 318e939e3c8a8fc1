//! What the integration tests share: one place for each fixture, so no test re-creates its own.
#![allow(dead_code)]

pub mod clock;
pub mod fixtures;
pub mod hostile;
pub mod logs;
pub mod mcp_client;
pub mod mcp_server;
#[cfg(feature = "redis")]
pub mod redis;
