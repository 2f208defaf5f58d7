//! Turns validated payloads into log records: the JSON line (with
//! `received_at`, user agent and parsed client fields), the Loki level and
//! the structured metadata.

use std::{sync::Arc, time::SystemTime};

use serde::Serialize;

use super::{fingerprint::fingerprint, user_agent::ClientInfo};
use crate::{
    delivery::{Level, LogRecord},
    metrics::RecordKind,
    payload::{AnalyticsEvent, ChunkSummary, ErrorReport, SessionId},
};

/// Longest user agent kept in a record; longer ones are cut (they are
/// either broken or an attack, and must not bloat every line).
const MAX_USER_AGENT_CHARS: usize = 512;

/// What the server knows about the request a record came from.
pub struct RequestContext {
    pub received_at: SystemTime,
    pub received_at_text: String,
    pub user_agent: Option<String>,
    pub client: Arc<ClientInfo>,
}

impl RequestContext {
    pub fn new(received_at: SystemTime, user_agent: Option<&str>, client: Arc<ClientInfo>) -> Self {
        let user_agent = user_agent.map(|ua| match ua.char_indices().nth(MAX_USER_AGENT_CHARS) {
            Some((cut, _)) => ua[..cut].to_owned(),
            None => ua.to_owned(),
        });
        Self {
            received_at,
            received_at_text: humantime::format_rfc3339_millis(received_at).to_string(),
            user_agent,
            client,
        }
    }
}

/// Fields every client record carries, flattened into its line.
#[derive(Serialize)]
struct ClientFields<'a> {
    received_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(flatten)]
    client: &'a ClientInfo,
}

impl<'a> ClientFields<'a> {
    fn of(ctx: &'a RequestContext) -> Self {
        Self { received_at: &ctx.received_at_text, user_agent: ctx.user_agent.as_deref(), client: &ctx.client }
    }
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    kind: &'static str,
    #[serde(flatten)]
    report: &'a ErrorReport,
    fingerprint: &'a str,
    /// Set when `stack` was cut to keep the line under `MAX_LINE_BYTES`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stack_truncated: bool,
    #[serde(flatten)]
    request: ClientFields<'a>,
}

#[derive(Serialize)]
struct EventLine<'a> {
    kind: &'static str,
    #[serde(flatten)]
    event: &'a AnalyticsEvent,
    #[serde(flatten)]
    request: ClientFields<'a>,
}

#[derive(Serialize)]
struct ReplayStartedLine<'a> {
    kind: &'static str,
    event: &'static str,
    session_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    /// First event timestamp of the session, ms since the epoch.
    timestamp: i64,
    events: u32,
    #[serde(flatten)]
    request: ClientFields<'a>,
}

fn to_line(value: &impl Serialize) -> String {
    // Serialising these structs cannot fail: every map key is a string and
    // every value is plain data.
    serde_json::to_string(value).unwrap_or_else(|e| format!(r#"{{"kind":"server","serialisation_error":"{e}"}}"#))
}

fn metadata(pairs: [(&'static str, Option<&str>); 4]) -> Vec<(&'static str, String)> {
    pairs.into_iter().filter_map(|(name, value)| value.map(|v| (name, v.to_owned()))).collect()
}

/// The Loki entry time of item `index` of a request: the receive time plus
/// `index` nanoseconds. Loki drops an entry whose stream, timestamp and line
/// equal another's, so identical items of one batch must not share a time.
fn entry_time(ctx: &RequestContext, index: usize) -> SystemTime {
    ctx.received_at + std::time::Duration::from_nanos(index as u64)
}

/// Loki refuses lines over `max_line_size` (256 KB by default). Only a
/// stack of 65 536 multi-byte characters can get an error line near that,
/// so the stack is what gets cut, and the line says so.
pub const MAX_LINE_BYTES: usize = 200_000;

pub fn error_record(report: &ErrorReport, index: usize, ctx: &RequestContext) -> LogRecord {
    let fingerprint = fingerprint(report.r#type.as_deref(), &report.message, report.stack.as_deref());
    let error_line = |report: &ErrorReport, stack_truncated| {
        to_line(&ErrorLine {
            kind: "error",
            report,
            fingerprint: &fingerprint,
            stack_truncated,
            request: ClientFields::of(ctx),
        })
    };
    let mut line = error_line(report, false);
    if line.len() > MAX_LINE_BYTES
        && let Some(stack) = &report.stack
    {
        // JSON escaping can make the stack longer in the line than in memory;
        // cut by the excess measured in the line, plus room for the flag.
        let excess = line.len() - MAX_LINE_BYTES + 64;
        let mut keep = stack.len().saturating_sub(excess);
        while !stack.is_char_boundary(keep) {
            keep -= 1;
        }
        let mut shorter = report.clone();
        shorter.stack = Some(stack[..keep].to_owned());
        line = error_line(&shorter, true);
    }
    LogRecord {
        kind: RecordKind::Error,
        level: Level::Error,
        received_at: entry_time(ctx, index),
        line,
        metadata: metadata([
            ("session_id", report.session_id.as_deref()),
            ("visitor_id", report.visitor_id.as_deref()),
            ("user_id", report.user_id.as_deref()),
            ("fingerprint", Some(&fingerprint)),
        ]),
    }
}

pub fn event_record(event: &AnalyticsEvent, index: usize, ctx: &RequestContext) -> LogRecord {
    let line = to_line(&EventLine { kind: "event", event, request: ClientFields::of(ctx) });
    LogRecord {
        kind: RecordKind::Event,
        level: Level::Info,
        received_at: entry_time(ctx, index),
        line,
        metadata: metadata([
            ("session_id", event.session_id.as_deref()),
            ("visitor_id", event.visitor_id.as_deref()),
            ("user_id", event.user_id.as_deref()),
            ("fingerprint", None),
        ]),
    }
}

pub fn replay_started_record(
    session_id: &SessionId,
    user_id: Option<&str>,
    summary: &ChunkSummary,
    ctx: &RequestContext,
) -> LogRecord {
    let line = to_line(&ReplayStartedLine {
        kind: "replay",
        event: "replay_started",
        session_id: session_id.as_str(),
        user_id,
        url: summary.meta_href.as_deref(),
        timestamp: summary.first_timestamp,
        events: summary.events,
        request: ClientFields::of(ctx),
    });
    LogRecord {
        kind: RecordKind::Replay,
        level: Level::Info,
        received_at: ctx.received_at,
        line,
        metadata: metadata([
            ("session_id", Some(session_id.as_str())),
            ("visitor_id", None),
            ("user_id", user_id),
            ("fingerprint", None),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::user_agent::ClientInfo;

    #[test]
    fn huge_stacks_are_cut_to_fit_loki() {
        let report: ErrorReport =
            serde_json::from_value(serde_json::json!({"message": "m", "stack": "𝄞".repeat(65536)})).unwrap();
        let ctx = RequestContext::new(SystemTime::now(), None, Arc::new(ClientInfo::default()));
        let record = error_record(&report, 0, &ctx);
        assert!(record.line.len() <= MAX_LINE_BYTES, "{}", record.line.len());
        let line: serde_json::Value = serde_json::from_str(&record.line).unwrap();
        assert_eq!(line["stack_truncated"], true);
        let small =
            error_record(&serde_json::from_value(serde_json::json!({"message": "m", "stack": "s"})).unwrap(), 0, &ctx);
        assert!(!small.line.contains("stack_truncated"));
    }
}
