//! Wire types of what browsers send, and their validation.

mod analytics_event;
mod bad_fields;
mod batch;
mod error_report;
mod ids;
mod parse_pool;
mod problems;
mod query_params;
mod replay_query;
mod rrweb;
mod web_vital;

pub(crate) use analytics_event::AnalyticsEvent;
pub use batch::parse_batch;
pub use error_report::ErrorReport;
pub use ids::{ID_RULE, SessionId, is_valid_id};
pub(crate) use parse_pool::ParsePool;
pub use problems::MAX_DETAILS;
pub(crate) use query_params::QueryParams;
pub(crate) use replay_query::ReplayChunkQuery;
pub(crate) use rrweb::validate_chunk_reader;
pub use rrweb::{ChunkSummary, validate_chunk};
