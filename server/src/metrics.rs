//! Every Prometheus metric the server exposes, registered in one place.
//!
//! Label values are enums, so the number of series is fixed at compile time
//! whatever clients send. Names use the `observer_` prefix and base units.

mod process;

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

/// Declares a label-value enum with its wire spelling.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),* }
        impl $name {
            /// Every value, to create each series at 0 up front.
            pub const ALL: &[$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }
        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}

label_enum!(
    /// A route, as matched by the router (never the raw path); each path's
    /// label is set in the route table (`routes::router`).
    Route {
        Errors => "errors",
        Events => "events",
        ReplayEvents => "replay_events",
        Healthz => "healthz",
        Readyz => "readyz",
        Metrics => "metrics",
        ReplaysList => "replays_list",
        ReplayManifest => "replay_manifest",
        ReplayChunk => "replay_chunk",
        ReplaySessionEvents => "replay_session_events",
        ReplayShare => "replay_share",
        ViewerSession => "viewer_session",
        PlayerPage => "player_page",
        PlayerAsset => "player_asset",
        SdkScript => "sdk_script",
        Unmatched => "unmatched",
    }
);

label_enum!(
    /// Why a payload was refused (`observer_payloads_rejected_total`).
    RejectReason {
        Invalid => "invalid",
        TooLarge => "too_large",
        Unsupported => "unsupported",
        Unauthorized => "unauthorized",
        ForbiddenOrigin => "forbidden_origin",
        RateLimited => "rate_limited",
        /// Over `OBSERVER_RATE_LIMIT_PER_IP`.
        RateLimitedIp => "rate_limited_ip",
        /// Over `OBSERVER_RATE_LIMIT_PER_SESSION`.
        RateLimitedSession => "rate_limited_session",
        /// A replay chunk re-sent with other content than the one stored.
        Conflict => "conflict",
        Timeout => "timeout",
        Unavailable => "unavailable",
        Internal => "internal",
    }
);

label_enum!(
    /// The kind of a log record; also its `kind` Loki label.
    RecordKind {
        Error => "error",
        Event => "event",
        Replay => "replay",
    }
);

label_enum!(
    /// Analytics event types.
    EventType {
        PageView => "page_view",
        Custom => "custom",
        WebVital => "web_vital",
    }
);

label_enum!(
    /// A replay store operation.
    StoreOperation {
        Put => "put",
        Head => "head",
        Get => "get",
        List => "list",
        Check => "check",
    }
);

label_enum!(
    /// What happened to one Loki push attempt.
    PushOutcome {
        Sent => "sent",
        Retried => "retried",
        Failed => "failed",
    }
);

label_enum!(
    /// Why one Loki push attempt failed.
    PushFailureReason {
        /// 401: the credentials (OBSERVER_LOKI_USERNAME/PASSWORD/BEARER_TOKEN) are wrong; retried.
        Unauthorized => "unauthorized",
        /// 403: the tenant or credentials may not push; retried.
        Forbidden => "forbidden",
        /// 404: OBSERVER_LOKI_URL does not point at Loki; retried.
        NotFound => "not_found",
        /// 429: over Loki's ingestion limits; retried.
        RateLimited => "rate_limited",
        /// 5xx (but 501) or 408: Loki overloaded or restarting; retried.
        Unavailable => "unavailable",
        /// No answer: connection refused, reset, timed out; retried.
        Transport => "transport",
        /// Another 4xx (400: too old, too long, bad labels) or 501: dropped.
        Invalid => "invalid",
    }
);

label_enum!(
    /// Why records could not be delivered.
    UndeliveredReason {
        /// Loki answered a 4xx other than 429: retrying cannot help.
        Rejected => "rejected",
        /// Retries ran out of time during shutdown.
        Shutdown => "shutdown",
        /// Writing to stdout failed.
        Stdout => "stdout",
        /// A record for an already stored replay chunk found the queue full.
        QueueFull => "queue_full",
    }
);

label_enum!(
    /// Where the disk spool delivers an item.
    DeliveryTarget {
        Loki => "loki",
        Stdout => "stdout",
        S3 => "s3",
    }
);

label_enum!(
    /// Why one delivery attempt from the spool failed.
    DeliveryFailure {
        /// Loki 401; retried.
        Unauthorized => "unauthorized",
        /// Loki 403; retried.
        Forbidden => "forbidden",
        /// Loki 404; retried.
        NotFound => "not_found",
        /// Loki 429; retried.
        RateLimited => "rate_limited",
        /// Loki 5xx or 408; retried.
        Unavailable => "unavailable",
        /// No answer from Loki; retried.
        Transport => "transport",
        /// Loki refused the content (400): those records are dropped.
        Invalid => "invalid",
        /// The S3 put failed; retried.
        Store => "store",
        /// S3 holds other events under the chunk's key: the chunk is dropped.
        Conflict => "conflict",
        /// Writing to stdout failed: the records are dropped.
        Io => "io",
    }
);

impl From<PushFailureReason> for DeliveryFailure {
    fn from(reason: PushFailureReason) -> DeliveryFailure {
        match reason {
            PushFailureReason::Unauthorized => DeliveryFailure::Unauthorized,
            PushFailureReason::Forbidden => DeliveryFailure::Forbidden,
            PushFailureReason::NotFound => DeliveryFailure::NotFound,
            PushFailureReason::RateLimited => DeliveryFailure::RateLimited,
            PushFailureReason::Unavailable => DeliveryFailure::Unavailable,
            PushFailureReason::Transport => DeliveryFailure::Transport,
            PushFailureReason::Invalid => DeliveryFailure::Invalid,
        }
    }
}

label_enum!(
    /// Why a client connection ended (`observer_connections_closed_total`).
    CloseReason {
        /// The client or the HTTP exchange ended it (incl. graceful shutdown).
        Normal => "normal",
        /// A request's headers did not arrive within `OBSERVER_HEADER_READ_TIMEOUT`.
        HeaderTimeout => "header_timeout",
        /// No next request within `OBSERVER_IDLE_TIMEOUT`.
        IdleTimeout => "idle_timeout",
        /// The client stopped reading an answer for `OBSERVER_SEND_TIMEOUT`.
        SendTimeout => "send_timeout",
        /// Closed right after accept: `OBSERVER_MAX_CONNECTIONS` were open.
        OverLimit => "over_limit",
        /// An I/O or protocol error (reset, malformed request).
        Error => "error",
    }
);

label_enum!(
    /// Which bound turned an ingestion request away with 503.
    Overload {
        /// `OBSERVER_MAX_INFLIGHT_BYTES`: request bodies in memory.
        InflightBytes => "inflight_bytes",
        /// `OBSERVER_REPLAY_CONCURRENCY`: replay chunks read and validated at once.
        ReplaySlots => "replay_slots",
    }
);

/// `observer_build_info`: constant 1, the running version as a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: DeliveryTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TargetFailureLabels {
    pub target: DeliveryTarget,
    pub reason: DeliveryFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CloseLabels {
    pub reason: CloseReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OverloadLabels {
    pub reason: Overload,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: Route,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RejectLabels {
    pub route: Route,
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: RecordKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EventTypeLabels {
    pub r#type: EventType,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StoreLabels {
    pub operation: StoreOperation,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PushLabels {
    pub outcome: PushOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PushFailureLabels {
    pub reason: PushFailureReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct UndeliveredLabels {
    pub reason: UndeliveredReason,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// All metric families. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    pub rejected: Family<RejectLabels, Counter>,
    pub errors_accepted: Counter,
    pub events_accepted: Family<EventTypeLabels, Counter>,
    pub replay_chunks_accepted: Counter,
    pub replay_chunks_duplicate: Counter,
    pub replay_chunks_clamped: Counter,
    pub replay_received_bytes: Counter,
    pub replay_decompressed_bytes: Counter,
    pub replay_compression_ratio: Histogram,
    pub replay_chunk_size: Histogram,
    pub store_duration: HistogramFamily<StoreLabels>,
    pub store_failures: Family<StoreLabels, Counter>,
    pub parse_waiting: Gauge,
    pub queue_records: Gauge,
    pub queue_full: Family<KindLabels, Counter>,
    pub records_enqueued: Family<KindLabels, Counter>,
    pub records_delivered: Counter,
    pub records_undelivered: Family<UndeliveredLabels, Counter>,
    pub loki_pushes: Family<PushLabels, Counter>,
    pub loki_push_failures: Family<PushFailureLabels, Counter>,
    pub loki_push_duration: Histogram,
    pub connections_open: Gauge,
    pub connections_accepted: Counter,
    pub connections_closed: Family<CloseLabels, Counter>,
    pub inflight_body_bytes: Gauge,
    pub overload_refused: Family<OverloadLabels, Counter>,
    pub retention_sessions_deleted: Counter,
    pub retention_configured: Gauge,
    pub build_info: Family<BuildLabels, Gauge>,
    pub spool_bytes: Gauge,
    pub spool_max_bytes: Gauge,
    pub spool_items: Family<TargetLabels, Gauge>,
    pub spool_oldest_age: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    pub spool_commits: Counter,
    pub spool_expired: Family<TargetLabels, Counter>,
    pub delivery_attempts: Family<TargetLabels, Counter>,
    pub delivery_failures: Family<TargetFailureLabels, Counter>,
}

impl Metrics {
    /// Creates every family and registers it.
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: HistogramFamily::new_with_constructor(latency_histogram),
            rejected: Family::default(),
            errors_accepted: Counter::default(),
            events_accepted: Family::default(),
            replay_chunks_accepted: Counter::default(),
            replay_chunks_duplicate: Counter::default(),
            replay_chunks_clamped: Counter::default(),
            replay_received_bytes: Counter::default(),
            replay_decompressed_bytes: Counter::default(),
            replay_compression_ratio: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            // 1 KiB .. 8 MiB: the SDK's chunks are tens of KiB, the limit is 5 MiB.
            replay_chunk_size: Histogram::new(exponential_buckets(1024.0, 2.0, 14)),
            store_duration: HistogramFamily::new_with_constructor(latency_histogram),
            store_failures: Family::default(),
            parse_waiting: Gauge::default(),
            queue_records: Gauge::default(),
            queue_full: Family::default(),
            records_enqueued: Family::default(),
            records_delivered: Counter::default(),
            records_undelivered: Family::default(),
            loki_pushes: Family::default(),
            loki_push_failures: Family::default(),
            loki_push_duration: latency_histogram(),
            connections_open: Gauge::default(),
            connections_accepted: Counter::default(),
            connections_closed: Family::default(),
            inflight_body_bytes: Gauge::default(),
            overload_refused: Family::default(),
            retention_sessions_deleted: Counter::default(),
            retention_configured: Gauge::default(),
            build_info: Family::default(),
            spool_bytes: Gauge::default(),
            spool_max_bytes: Gauge::default(),
            spool_items: Family::default(),
            spool_oldest_age: Family::default(),
            spool_commits: Counter::default(),
            spool_expired: Family::default(),
            delivery_attempts: Family::default(),
            delivery_failures: Family::default(),
        };
        m.build_info.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").to_owned() }).set(1);
        m.create_failure_series();
        registry.register_collector(Box::new(process::ProcessCollector));
        let r = registry.sub_registry_with_prefix("observer");
        r.register("http_requests", "HTTP requests answered, by route and status", m.http_requests.clone());
        r.register_with_unit(
            "http_request_duration",
            "Time to answer HTTP requests, by route",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        r.register("payloads_rejected", "Ingestion requests refused, by route and reason", m.rejected.clone());
        r.register("errors_accepted", "Client errors accepted", m.errors_accepted.clone());
        r.register("events_accepted", "Analytics events accepted, by type", m.events_accepted.clone());
        r.register(
            "replay_chunks_accepted",
            "Replay chunks accepted (including idempotent re-sends)",
            m.replay_chunks_accepted.clone(),
        );
        r.register(
            "replay_chunks_duplicate",
            "Replay chunks re-sent for a (session_id, seq) already stored",
            m.replay_chunks_duplicate.clone(),
        );
        r.register(
            "replay_chunks_clamped",
            "Replay chunks whose stored timestamps were clamped (events dated too far in the future)",
            m.replay_chunks_clamped.clone(),
        );
        r.register_with_unit(
            "replay_received",
            "Replay chunk bytes accepted as received",
            Unit::Bytes,
            m.replay_received_bytes.clone(),
        );
        r.register_with_unit(
            "replay_decompressed",
            "Replay chunk bytes accepted after decompression",
            Unit::Bytes,
            m.replay_decompressed_bytes.clone(),
        );
        r.register_with_unit(
            "replay_chunk_size",
            "Size of accepted replay chunks as received (compressed), first copies only",
            Unit::Bytes,
            m.replay_chunk_size.clone(),
        );
        r.register(
            "replay_compression_ratio",
            "Decompressed to received size of gzip replay chunks",
            m.replay_compression_ratio.clone(),
        );
        r.register_with_unit(
            "store_operation_duration",
            "Replay store operation time, by operation",
            Unit::Seconds,
            m.store_duration.clone(),
        );
        r.register(
            "store_operation_failures",
            "Replay store operations that failed, by operation",
            m.store_failures.clone(),
        );
        r.register(
            "parse_waiting",
            "Error and event bodies waiting for a parsing thread (one per core)",
            m.parse_waiting.clone(),
        );
        r.register(
            "delivery_queue_records",
            "Records waiting in the disk spool for delivery to Loki or stdout",
            m.queue_records.clone(),
        );
        r.register(
            "delivery_queue_full",
            "Records refused with 503 because the disk spool was full, by kind",
            m.queue_full.clone(),
        );
        r.register("records_enqueued", "Records accepted for delivery, by kind", m.records_enqueued.clone());
        r.register("records_delivered", "Records delivered to Loki or stdout", m.records_delivered.clone());
        r.register(
            "records_undelivered",
            "Accepted records that could not be delivered, by reason",
            m.records_undelivered.clone(),
        );
        r.register("loki_pushes", "Loki push attempts, by outcome (sent, retried, failed)", m.loki_pushes.clone());
        r.register("loki_push_failures", "Failed Loki push attempts, by reason", m.loki_push_failures.clone());
        r.register_with_unit(
            "loki_push_duration",
            "Time of one Loki push request",
            Unit::Seconds,
            m.loki_push_duration.clone(),
        );
        r.register("connections_open", "Client connections open now", m.connections_open.clone());
        r.register(
            "connections_accepted",
            "Client connections accepted (including those closed at once for being over the limit)",
            m.connections_accepted.clone(),
        );
        r.register("connections_closed", "Client connections closed, by reason", m.connections_closed.clone());
        r.register_with_unit(
            "inflight_body",
            "Request body bytes reserved in the in-flight budget (OBSERVER_MAX_INFLIGHT_BYTES)",
            Unit::Bytes,
            m.inflight_body_bytes.clone(),
        );
        r.register(
            "overload_refusals",
            "Ingestion requests answered 503 because a memory bound was reached, by bound",
            m.overload_refused.clone(),
        );
        r.register(
            "retention_sessions_deleted",
            "Replay sessions deleted whole by the local store's retention sweep (OBSERVER_RETENTION_DAYS)",
            m.retention_sessions_deleted.clone(),
        );
        r.register(
            "storage_retention_configured",
            "1 when stored replays expire (an S3 lifecycle expiry covers every prefix Observer writes, or the \
             local sweep is on), 0 when not or not known yet",
            m.retention_configured.clone(),
        );
        r.register(
            "build_info",
            "Constant 1; the running Observer's version as the `version` label",
            m.build_info.clone(),
        );
        m.register_spool(r);
        m
    }

    /// Creates every series of the refusal and failure families at 0, as
    /// Prometheus' instrumentation guide asks ("avoid missing metrics"):
    /// otherwise they appear only on the first failure, and `rate()`, the
    /// dashboards and alert rules see "no data" instead of 0. Their labels are
    /// enums, so this is a fixed, small set (about 70 series).
    fn create_failure_series(&self) {
        for &route in &[Route::Errors, Route::Events, Route::ReplayEvents] {
            for &reason in RejectReason::ALL {
                self.rejected.get_or_create(&RejectLabels { route, reason }).inc_by(0);
            }
        }
        for &r#type in EventType::ALL {
            self.events_accepted.get_or_create(&EventTypeLabels { r#type }).inc_by(0);
        }
        for &operation in StoreOperation::ALL {
            self.store_failures.get_or_create(&StoreLabels { operation }).inc_by(0);
        }
        for &kind in RecordKind::ALL {
            self.queue_full.get_or_create(&KindLabels { kind }).inc_by(0);
            self.records_enqueued.get_or_create(&KindLabels { kind }).inc_by(0);
        }
        for &reason in UndeliveredReason::ALL {
            self.records_undelivered.get_or_create(&UndeliveredLabels { reason }).inc_by(0);
        }
        for &outcome in PushOutcome::ALL {
            self.loki_pushes.get_or_create(&PushLabels { outcome }).inc_by(0);
        }
        for &reason in PushFailureReason::ALL {
            self.loki_push_failures.get_or_create(&PushFailureLabels { reason }).inc_by(0);
        }
        for &reason in CloseReason::ALL {
            self.connections_closed.get_or_create(&CloseLabels { reason }).inc_by(0);
        }
        for &reason in Overload::ALL {
            self.overload_refused.get_or_create(&OverloadLabels { reason }).inc_by(0);
        }
        for &target in DeliveryTarget::ALL {
            self.spool_expired.get_or_create(&TargetLabels { target }).inc_by(0);
            self.delivery_attempts.get_or_create(&TargetLabels { target }).inc_by(0);
            for &reason in DeliveryFailure::ALL {
                self.delivery_failures.get_or_create(&TargetFailureLabels { target, reason }).inc_by(0);
            }
        }
    }

    fn register_spool(&self, r: &mut Registry) {
        r.register_with_unit(
            "spool",
            "Bytes of items in the disk spool (counted against OBSERVER_SPOOL_MAX_BYTES)",
            Unit::Bytes,
            self.spool_bytes.clone(),
        );
        r.register_with_unit("spool_max", "OBSERVER_SPOOL_MAX_BYTES", Unit::Bytes, self.spool_max_bytes.clone());
        r.register("spool_items", "Items waiting in the disk spool, by target", self.spool_items.clone());
        r.register_with_unit(
            "spool_oldest_item_age",
            "Age of the oldest item waiting in the disk spool, by target (0 when none)",
            Unit::Seconds,
            self.spool_oldest_age.clone(),
        );
        r.register("spool_commits", "Spool transactions committed (one fsync each)", self.spool_commits.clone());
        r.register(
            "spool_expired",
            "Items dropped from the spool undelivered after OBSERVER_SPOOL_MAX_AGE, by target",
            self.spool_expired.clone(),
        );
        r.register("delivery_attempts", "Delivery attempts from the spool, by target", self.delivery_attempts.clone());
        r.register(
            "delivery_failures",
            "Failed delivery attempts from the spool, by target and reason",
            self.delivery_failures.clone(),
        );
    }

    pub fn delivery_attempt(&self, target: DeliveryTarget) {
        self.delivery_attempts.get_or_create(&TargetLabels { target }).inc();
    }

    pub fn delivery_failed(&self, target: DeliveryTarget, reason: DeliveryFailure) {
        self.delivery_failures.get_or_create(&TargetFailureLabels { target, reason }).inc();
    }

    pub fn connection_closed(&self, reason: CloseReason) {
        self.connections_closed.get_or_create(&CloseLabels { reason }).inc();
    }

    pub fn overload_refused(&self, reason: Overload) {
        self.overload_refused.get_or_create(&OverloadLabels { reason }).inc();
    }

    pub fn rejected(&self, route: Route, reason: RejectReason) {
        self.rejected.get_or_create(&RejectLabels { route, reason }).inc();
    }

    pub fn store_observe(&self, operation: StoreOperation, seconds: f64, ok: bool) {
        let labels = StoreLabels { operation };
        self.store_duration.get_or_create(&labels).observe(seconds);
        if !ok {
            self.store_failures.get_or_create(&labels).inc();
        }
    }

    pub fn loki_push(&self, outcome: PushOutcome) {
        self.loki_pushes.get_or_create(&PushLabels { outcome }).inc();
    }

    pub fn loki_push_failed(&self, reason: PushFailureReason) {
        self.loki_push_failures.get_or_create(&PushFailureLabels { reason }).inc();
    }

    pub fn undelivered(&self, reason: UndeliveredReason, records: u64) {
        self.records_undelivered.get_or_create(&UndeliveredLabels { reason }).inc_by(records);
    }
}

/// Renders the registry in the OpenMetrics text format.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

/// `prometheus-client` writes only OpenMetrics. Prometheus asks for that,
/// but `promtool check metrics` and older scrapers read the 0.0.4 text
/// format, where a counter family's HELP/TYPE name carries `_total` and
/// there are no `# UNIT` / `# EOF` lines. No maintained crate converts a
/// `prometheus-client` registry to 0.0.4, so the few differences are
/// rewritten here.
pub fn openmetrics_to_text_004(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let tail = if tail == "unknown" { "untyped" } else { tail };
            let name = if counters.contains(name) { format!("{name}_total") } else { name.to_owned() };
            Some(format!("{prefix}{name} {tail}"))
        });
        match rewritten {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_004_conversion() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        metrics.errors_accepted.inc();
        let om = render(&registry).unwrap();
        assert!(om.contains("# TYPE observer_errors_accepted counter"));
        let text = openmetrics_to_text_004(&om);
        assert!(text.contains("# HELP observer_errors_accepted_total Client errors accepted"));
        assert!(text.contains("# TYPE observer_errors_accepted_total counter\nobserver_errors_accepted_total 1\n"));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
    }

    #[test]
    fn failure_counters_start_at_zero() {
        let mut registry = Registry::default();
        let _metrics = Metrics::new(&mut registry);
        let om = render(&registry).unwrap();
        for series in [
            r#"observer_records_undelivered_total{reason="rejected"} 0"#,
            r#"observer_delivery_queue_full_total{kind="event"} 0"#,
            r#"observer_loki_push_failures_total{reason="transport"} 0"#,
            r#"observer_store_operation_failures_total{operation="put"} 0"#,
            r#"observer_overload_refusals_total{reason="replay_slots"} 0"#,
        ] {
            assert!(om.contains(series), "{series} missing from:\n{om}");
        }
    }
}
