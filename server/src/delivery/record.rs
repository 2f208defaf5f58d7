//! `LogRecord`: one accepted record on its way to Loki or stdout.

use std::time::SystemTime;

use crate::metrics::RecordKind;

/// Loki `level` label of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One record, already serialised: the routes build the JSON line once and
/// delivery never looks inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub kind: RecordKind,
    pub level: Level,
    /// When Observer received it; the Loki entry timestamp.
    pub received_at: SystemTime,
    /// The JSON log line (one object, no trailing newline, no raw newlines).
    pub line: String,
    /// Loki structured metadata (`session_id`, `visitor_id`, `user_id`,
    /// `fingerprint`), only the ones present.
    pub metadata: Vec<(&'static str, String)>,
}

/// The structured metadata names records carry, so a record read back from
/// the disk spool gets the same `&'static str` names.
pub const METADATA_NAMES: [&str; 4] = ["session_id", "visitor_id", "user_id", "fingerprint"];

/// `name` as one of [`METADATA_NAMES`], or `None` if it is not one.
pub fn metadata_name(name: &str) -> Option<&'static str> {
    METADATA_NAMES.into_iter().find(|known| *known == name)
}
