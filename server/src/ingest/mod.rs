//! Pure hot-path functions used by the ingestion routes.

pub(crate) mod chunk_scan;
pub mod decompress;
pub(crate) mod fingerprint;
pub(crate) mod inflight;
pub mod records;
pub mod replay_chunk;
pub(crate) mod uap_rules;
pub mod user_agent;
