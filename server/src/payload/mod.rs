//! Wire types of what browsers send, and their validation.

mod analytics_event;
mod batch;
mod error_report;
mod ids;
mod replay_query;
mod rrweb;

pub use analytics_event::{AnalyticsEvent, AnalyticsEventType};
pub use batch::{BatchItem, parse_batch};
pub use error_report::ErrorReport;
pub use ids::{ID_RULE, SessionId, is_valid_id};
pub use replay_query::ReplayChunkQuery;
pub use rrweb::{ChunkSummary, validate_chunk, validate_chunk_reader};
