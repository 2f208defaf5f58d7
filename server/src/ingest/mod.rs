//! Pure hot-path functions used by the ingestion routes.

pub mod chunk_scan;
pub mod decompress;
pub mod fingerprint;
pub mod inflight;
pub mod records;
pub mod replay_chunk;
pub mod uap_rules;
pub mod user_agent;
