//! The spool's SQLite file: schema, pragmas and every statement, as plain
//! functions on a connection (the writer thread calls them inside its
//! group-commit transaction; the tests call them directly).
//!
//! Two tables, each read oldest first by its `AUTOINCREMENT` id (ids are
//! never reused, so the order survives restarts and deletes):
//! - `records`: accepted log lines for Loki or stdout;
//! - `chunks`: replay chunks acknowledged while S3 could not take them, one
//!   per `(session_id, seq)`.

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    config::SpoolSync,
    delivery::{Level, LogRecord, metadata_name},
    metrics::RecordKind,
    store::{ChunkInfo, ChunkMeta, ChunkStats, SessionDetails},
};

/// The file inside `OBSERVER_SPOOL_DIR`.
pub const FILE_NAME: &str = "spool.sqlite";

/// Rows looked at per step when dropping items past their age, so one step
/// holds the writer for milliseconds, not a scan of the whole table.
const EXPIRE_STEP: i64 = 5_000;

/// Opens (creating) the spool in `dir`.
///
/// In WAL mode, `synchronous=NORMAL` writes every commit to the WAL file
/// (so it is in the kernel's page cache and survives the process being
/// killed) and fsyncs only at checkpoints: a power cut or kernel crash can
/// lose the last commits. `FULL` fsyncs the WAL at every commit, which also
/// survives a power cut; the writer groups many requests into one commit,
/// so the W1 benchmark measured the same rate with either (docs/performance.md):
/// `FULL` is the default.
pub fn open(dir: &Path, sync: SpoolSync) -> rusqlite::Result<Connection> {
    let conn = Connection::open(dir.join(FILE_NAME))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            SpoolSync::Normal => "NORMAL",
            SpoolSync::Full => "FULL",
        },
    )?;
    // Truncate the WAL after checkpoints so a drained backlog gives its
    // disk space back.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // The delivery worker deletes a batch a few milliseconds to a second
    // after it was written; with SQLite's default 2 MB page cache those
    // pages were already evicted and every delete read them back from the
    // WAL (6 % of W1's CPU). 8 MiB covers several 1 MiB Loki batches.
    conn.pragma_update(None, "cache_size", -8 * 1024)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_ns INTEGER NOT NULL,
            kind TEXT NOT NULL,
            level TEXT NOT NULL,
            line TEXT NOT NULL,
            metadata TEXT NOT NULL,
            bytes INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            received_ns INTEGER NOT NULL,
            first_timestamp INTEGER NOT NULL,
            last_timestamp INTEGER NOT NULL,
            events INTEGER NOT NULL,
            content_hash INTEGER NOT NULL,
            url TEXT,
            user_id TEXT,
            browser TEXT,
            os TEXT,
            pages INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            gzip BLOB NOT NULL,
            UNIQUE (session_id, seq)
        );",
    )?;
    Ok(conn)
}

pub fn nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn time_of(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// Bytes a record counts against `OBSERVER_SPOOL_MAX_BYTES`.
pub fn record_bytes(record: &LogRecord) -> u64 {
    let metadata: usize = record.metadata.iter().map(|(name, value)| name.len() + value.len() + 8).sum();
    (record.line.len() + metadata + 64) as u64
}

/// Bytes a chunk counts against `OBSERVER_SPOOL_MAX_BYTES`.
pub fn chunk_bytes(chunk: &SpooledChunk) -> u64 {
    (chunk.gzip.len() + chunk.session_id.len() + 128) as u64
}

/// Inserts a record; returns its row id.
pub fn insert_record(conn: &Connection, record: &LogRecord, bytes: u64) -> rusqlite::Result<i64> {
    let metadata = serde_json::to_string(&record.metadata).unwrap_or_else(|_| "[]".to_owned());
    conn.prepare_cached(
        "INSERT INTO records (received_ns, kind, level, line, metadata, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        nanos(record.received_at),
        record.kind.as_str(),
        record.level.as_str(),
        record.line,
        metadata,
        bytes as i64
    ])?;
    Ok(conn.last_insert_rowid())
}

/// A spooled record and its row id.
#[derive(Debug)]
pub struct SpooledRecord {
    pub id: i64,
    pub bytes: u64,
    pub record: LogRecord,
}

/// The id of the oldest record with an id above `after`.
pub fn first_record_after(conn: &Connection, after: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM records WHERE id > ?1 ORDER BY id LIMIT 1")?
        .query_row([after], |row| row.get(0))
        .optional()
}

/// The oldest records with an id above `after`: at most `max` and
/// `max_bytes` (the first one whatever its size if `first_always`).
pub fn records_after(
    conn: &Connection,
    after: i64,
    max: usize,
    max_bytes: u64,
    first_always: bool,
) -> rusqlite::Result<Vec<SpooledRecord>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, received_ns, kind, level, line, metadata, bytes FROM records WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut rows = statement.query(params![after, max as i64])?;
    let mut out = Vec::new();
    let mut total = 0u64;
    while let Some(row) = rows.next()? {
        let bytes = row.get::<_, i64>(6)? as u64;
        if !(first_always && out.is_empty()) && total + bytes > max_bytes {
            break;
        }
        total += bytes;
        let metadata: Vec<(String, String)> = serde_json::from_str(&row.get::<_, String>(5)?).unwrap_or_default();
        let record = LogRecord {
            received_at: time_of(row.get(1)?),
            kind: kind_of(&row.get::<_, String>(2)?),
            level: level_of(&row.get::<_, String>(3)?),
            line: row.get(4)?,
            metadata: metadata.into_iter().filter_map(|(name, value)| Some((metadata_name(&name)?, value))).collect(),
        };
        out.push(SpooledRecord { id: row.get(0)?, bytes, record });
    }
    Ok(out)
}

fn kind_of(text: &str) -> RecordKind {
    match text {
        "event" => RecordKind::Event,
        "replay" => RecordKind::Replay,
        _ => RecordKind::Error,
    }
}

fn level_of(text: &str) -> Level {
    match text {
        "info" => Level::Info,
        "warn" => Level::Warn,
        _ => Level::Error,
    }
}

/// Deletes records `first..=last` (a batch read by [`oldest_records`]);
/// returns (rows, bytes) deleted.
pub fn delete_records(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<(u64, u64)> {
    sum_deleted(conn, "DELETE FROM records WHERE id BETWEEN ?1 AND ?2 RETURNING bytes", params![first, last])
}

fn sum_deleted(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<(u64, u64)> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(row) = rows.next()? {
        n += 1;
        bytes += row.get::<_, i64>(0)? as u64;
    }
    Ok((n, bytes))
}

/// Deletes up to one step of records received before `cutoff`, among the
/// oldest; returns (rows, bytes). Call again while it deletes a full step.
pub fn expire_records(conn: &Connection, cutoff: SystemTime) -> rusqlite::Result<(u64, u64)> {
    sum_deleted(
        conn,
        "DELETE FROM records WHERE id IN (SELECT id FROM records ORDER BY id LIMIT ?1) AND received_ns < ?2
         RETURNING bytes",
        params![EXPIRE_STEP, nanos(cutoff)],
    )
}

/// A replay chunk waiting for S3.
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledChunk {
    pub session_id: String,
    pub seq: u32,
    pub received_at: SystemTime,
    pub meta: ChunkMeta,
    pub content_hash: u64,
    pub details: SessionDetails,
    /// Pages and errors counted in the chunk (its receive time is `received_at`).
    pub stats: ChunkStats,
    pub gzip: bytes::Bytes,
}

/// Inserts a chunk unless its `(session_id, seq)` is spooled; then returns
/// what is spooled there (meta and hash) instead.
pub fn insert_chunk(conn: &Connection, chunk: &SpooledChunk) -> rusqlite::Result<Option<(ChunkMeta, u64)>> {
    if let Some(existing) = chunk_meta(conn, &chunk.session_id, chunk.seq)? {
        return Ok(Some((existing.meta, existing.content_hash)));
    }
    conn.prepare_cached(
        "INSERT INTO chunks (session_id, seq, received_ns, first_timestamp, last_timestamp, events, content_hash,
                             url, user_id, browser, os, pages, errors, gzip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        chunk.session_id,
        chunk.seq,
        nanos(chunk.received_at),
        chunk.meta.first_timestamp,
        chunk.meta.last_timestamp,
        chunk.meta.events,
        chunk.content_hash as i64,
        chunk.details.url,
        chunk.details.user_id,
        chunk.details.browser,
        chunk.details.os,
        chunk.stats.pages,
        chunk.stats.errors,
        chunk.gzip.as_ref(),
    ])?;
    Ok(None)
}

/// A spooled chunk's metadata, without its body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkRow {
    pub id: i64,
    pub meta: ChunkMeta,
    pub content_hash: u64,
    pub bytes: u64,
}

pub fn chunk_meta(conn: &Connection, session_id: &str, seq: u32) -> rusqlite::Result<Option<ChunkRow>> {
    conn.prepare_cached(
        "SELECT id, first_timestamp, last_timestamp, events, content_hash, length(gzip)
         FROM chunks WHERE session_id = ?1 AND seq = ?2",
    )?
    .query_row(params![session_id, seq], chunk_row)
    .optional()
}

fn chunk_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRow> {
    Ok(ChunkRow {
        id: row.get(0)?,
        meta: ChunkMeta { first_timestamp: row.get(1)?, last_timestamp: row.get(2)?, events: row.get(3)? },
        content_hash: row.get::<_, i64>(4)? as u64,
        bytes: row.get::<_, i64>(5)? as u64,
    })
}

/// The spooled chunks of a session, by seq.
pub fn session_chunks(conn: &Connection, session_id: &str) -> rusqlite::Result<Vec<ChunkInfo>> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, first_timestamp, last_timestamp, events, length(gzip), pages, errors, received_ns
         FROM chunks WHERE session_id = ?1 ORDER BY seq",
    )?;
    let rows = statement.query_map([session_id], |row| {
        Ok(ChunkInfo {
            seq: row.get(0)?,
            meta: ChunkMeta { first_timestamp: row.get(1)?, last_timestamp: row.get(2)?, events: row.get(3)? },
            bytes: row.get::<_, i64>(4)? as u64,
            stats: ChunkStats {
                pages: row.get(5)?,
                errors: row.get(6)?,
                received_at: Some(row.get::<_, i64>(7)? / 1_000_000),
            },
        })
    })?;
    rows.collect()
}

const CHUNK_COLUMNS: &str = "id, session_id, seq, received_ns, first_timestamp, last_timestamp, events, content_hash, \
                             url, user_id, browser, os, pages, errors, gzip";

fn full_chunk(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, SpooledChunk)> {
    let gzip: Vec<u8> = row.get(14)?;
    let received_ns: i64 = row.get(3)?;
    Ok((
        row.get(0)?,
        SpooledChunk {
            session_id: row.get(1)?,
            seq: row.get(2)?,
            received_at: time_of(received_ns),
            meta: ChunkMeta { first_timestamp: row.get(4)?, last_timestamp: row.get(5)?, events: row.get(6)? },
            content_hash: row.get::<_, i64>(7)? as u64,
            details: SessionDetails { url: row.get(8)?, user_id: row.get(9)?, browser: row.get(10)?, os: row.get(11)? },
            stats: ChunkStats { pages: row.get(12)?, errors: row.get(13)?, received_at: Some(received_ns / 1_000_000) },
            gzip: gzip.into(),
        },
    ))
}

/// The oldest spooled chunk, body included.
pub fn oldest_chunk(conn: &Connection) -> rusqlite::Result<Option<(i64, SpooledChunk)>> {
    conn.prepare_cached(&format!("SELECT {CHUNK_COLUMNS} FROM chunks ORDER BY id LIMIT 1"))?
        .query_row([], full_chunk)
        .optional()
}

/// One spooled chunk, body included.
pub fn chunk(conn: &Connection, session_id: &str, seq: u32) -> rusqlite::Result<Option<SpooledChunk>> {
    conn.prepare_cached(&format!("SELECT {CHUNK_COLUMNS} FROM chunks WHERE session_id = ?1 AND seq = ?2"))?
        .query_row(params![session_id, seq], full_chunk)
        .map(|(_, chunk)| chunk)
        .optional()
}

/// Deletes one chunk; returns (rows, bytes) deleted.
pub fn delete_chunk(conn: &Connection, id: i64) -> rusqlite::Result<(u64, u64)> {
    let row = conn
        .prepare_cached("DELETE FROM chunks WHERE id = ?1 RETURNING length(gzip) + length(session_id) + 128")?
        .query_row([id], |row| row.get::<_, i64>(0))
        .optional()?;
    Ok(row.map_or((0, 0), |bytes| (1, bytes as u64)))
}

/// Deletes chunks received before `cutoff`, returning each one's
/// `(session_id, seq)` and the bytes freed.
pub fn expire_chunks(conn: &Connection, cutoff: SystemTime) -> rusqlite::Result<(Vec<(String, u32)>, u64)> {
    let mut statement = conn.prepare_cached(
        "DELETE FROM chunks WHERE received_ns < ?1 RETURNING session_id, seq, length(gzip) + length(session_id) + 128",
    )?;
    let mut rows = statement.query([nanos(cutoff)])?;
    let (mut dropped, mut bytes) = (Vec::new(), 0u64);
    while let Some(row) = rows.next()? {
        dropped.push((row.get(0)?, row.get(1)?));
        bytes += row.get::<_, i64>(2)? as u64;
    }
    Ok((dropped, bytes))
}

/// What the spool holds, read once at start-up: (records, chunks, bytes).
pub fn totals(conn: &Connection) -> rusqlite::Result<(u64, u64, u64)> {
    let (records, record_bytes): (i64, i64) =
        conn.query_row("SELECT count(*), coalesce(sum(bytes), 0) FROM records", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (chunks, chunk_bytes): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(length(gzip) + length(session_id) + 128), 0) FROM chunks",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((records as u64, chunks as u64, (record_bytes + chunk_bytes) as u64))
}

/// Receive time of the oldest record and of the oldest chunk.
pub fn oldest_times(conn: &Connection) -> rusqlite::Result<(Option<SystemTime>, Option<SystemTime>)> {
    let records =
        conn.query_row("SELECT received_ns FROM records ORDER BY id LIMIT 1", [], |r| r.get::<_, i64>(0)).optional()?;
    let chunks =
        conn.query_row("SELECT received_ns FROM chunks ORDER BY id LIMIT 1", [], |r| r.get::<_, i64>(0)).optional()?;
    Ok((records.map(time_of), chunks.map(time_of)))
}
