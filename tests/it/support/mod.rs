//! What the integration tests share: one place for each fixture, so no test re-creates its own.
#![allow(dead_code)]

pub mod hostile;
pub mod logs;
pub mod mcp_client;
