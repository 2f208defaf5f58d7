//! The spool's one writer thread. It owns the SQLite connection, takes
//! commands in arrival order and runs every command waiting at that moment
//! in one transaction: one commit (one WAL fsync) acknowledges a whole
//! group of requests, so throughput does not fall to one fsync per request.
//! Replies go out after the commit, so a request is answered only once its
//! items are durable. SQLite calls block, hence a thread of its own rather
//! than an async worker.

use std::{sync::Arc, time::SystemTime};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{
    Shared, SpoolError,
    db::{self, ChunkRow, SpooledChunk, SpooledRecord},
    recent::{RECENT_BYTES, RecentRecords},
};
use crate::{
    delivery::LogRecord,
    store::{ChunkInfo, ChunkMeta},
};

/// Most commands in one transaction: bounds how long the first one waits.
const MAX_GROUP: usize = 1024;

pub(super) type Reply<T> = oneshot::Sender<Result<T, SpoolError>>;

/// What the writer was asked to drop for age.
#[derive(Debug, Default)]
pub struct Expired {
    pub records: u64,
    pub chunks: Vec<(String, u32)>,
}

pub(super) enum Command {
    PutRecords {
        records: Vec<LogRecord>,
        reply: Reply<()>,
    },
    /// `record` (a `replay_started`) goes in with the chunk, in the same
    /// transaction, and only if the chunk was not spooled already.
    PutChunk {
        chunk: Box<SpooledChunk>,
        record: Option<LogRecord>,
        reply: Reply<Option<(ChunkMeta, u64)>>,
    },
    /// The oldest records with an id above `after` (0: from the oldest).
    ReadRecords {
        after: i64,
        max: usize,
        max_bytes: u64,
        first_always: bool,
        reply: Reply<Vec<SpooledRecord>>,
    },
    DeleteRecords {
        first: i64,
        last: i64,
        reply: Reply<()>,
    },
    OldestChunk {
        reply: Reply<Option<(i64, SpooledChunk)>>,
    },
    DeleteChunk {
        id: i64,
        reply: Reply<()>,
    },
    ChunkMeta {
        session_id: String,
        seq: u32,
        reply: Reply<Option<ChunkRow>>,
    },
    Chunk {
        session_id: String,
        seq: u32,
        reply: Reply<Option<SpooledChunk>>,
    },
    SessionChunks {
        session_id: String,
        reply: Reply<Vec<ChunkInfo>>,
    },
    ExpireRecords {
        cutoff: SystemTime,
        reply: Reply<Expired>,
    },
    ExpireChunks {
        cutoff: SystemTime,
        reply: Reply<Expired>,
    },
    /// Refreshes the oldest-item gauges.
    Stats,
}

/// What one group changed, applied to the shared counters (and the
/// records to the in-memory cache) once committed.
#[derive(Default)]
struct Delta {
    bytes: i64,
    records: i64,
    chunks: i64,
    inserted: Vec<SpooledRecord>,
}

type Answer = Box<dyn FnOnce(Option<&SpoolError>) + Send>;

fn answer<T: Send + 'static>(reply: Reply<T>, result: Result<T, SpoolError>) -> Answer {
    Box::new(move |commit_failed| {
        let _ = reply.send(match commit_failed {
            Some(error) => Err(error.clone()),
            None => result,
        });
    })
}

fn storage(error: rusqlite::Error) -> SpoolError {
    SpoolError::Storage(error.to_string())
}

pub(super) fn run(mut conn: Connection, mut rx: mpsc::Receiver<Command>, shared: Arc<Shared>) {
    let mut recent = RecentRecords::new(RECENT_BYTES);
    while let Some(first) = rx.blocking_recv() {
        let mut commands = vec![first];
        while commands.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(command) => commands.push(command),
                Err(_) => break,
            }
        }
        let mut delta = Delta::default();
        let mut answers = Vec::with_capacity(commands.len());
        let committed = match conn.transaction() {
            Ok(mut tx) => {
                for command in commands {
                    answers.push(execute(&mut tx, command, &mut delta, &mut recent, &shared));
                }
                tx.commit().map_err(storage)
            }
            Err(error) => Err(storage(error)),
        };
        match &committed {
            Ok(()) => {
                shared.apply(delta.bytes, delta.records, delta.chunks);
                for record in delta.inserted {
                    recent.push(record.id, record.bytes, record.record);
                }
            }
            Err(error) => {
                // Reads in this group may have taken records out of the
                // cache; SQLite still has them all.
                recent.clear();
                tracing::error!(%error, "spool: commit failed; the group's requests are refused");
            }
        }
        shared.metrics.spool_commits.inc();
        for answer in answers {
            answer(committed.as_ref().err());
        }
    }
    tracing::debug!("spool: writer stopped");
}

/// Runs one command in the open transaction. Writes run in a savepoint, so
/// a failed command leaves nothing half-written behind.
fn execute(
    tx: &mut rusqlite::Transaction<'_>,
    command: Command,
    delta: &mut Delta,
    recent: &mut RecentRecords,
    shared: &Shared,
) -> Answer {
    match command {
        Command::PutRecords { records, reply } => {
            let bytes: u64 = records.iter().map(db::record_bytes).sum();
            if !shared.has_room(delta.bytes, bytes) {
                return answer(reply, Err(SpoolError::Full));
            }
            let result = in_savepoint(tx, |conn| {
                records.iter().map(|record| db::insert_record(conn, record, db::record_bytes(record))).collect()
            });
            let result = result.map(|ids: Vec<i64>| {
                delta.bytes += bytes as i64;
                delta.records += records.len() as i64;
                for (id, record) in ids.into_iter().zip(records) {
                    delta.inserted.push(SpooledRecord { id, bytes: db::record_bytes(&record), record });
                }
            });
            answer(reply, result)
        }
        Command::PutChunk { chunk, record, reply } => {
            let bytes = db::chunk_bytes(&chunk) + record.as_ref().map_or(0, db::record_bytes);
            if !shared.has_room(delta.bytes, bytes) {
                return answer(reply, Err(SpoolError::Full));
            }
            let result = in_savepoint(tx, |conn| {
                let existing = db::insert_chunk(conn, &chunk)?;
                let record_id = match (&existing, &record) {
                    (None, Some(record)) => Some(db::insert_record(conn, record, db::record_bytes(record))?),
                    _ => None,
                };
                Ok((existing, record_id))
            });
            let result = result.map(|(existing, record_id)| {
                if existing.is_none() {
                    delta.bytes += bytes as i64;
                    delta.chunks += 1;
                    if let (Some(id), Some(record)) = (record_id, record) {
                        delta.records += 1;
                        delta.inserted.push(SpooledRecord { id, bytes: db::record_bytes(&record), record });
                    }
                }
                existing
            });
            answer(reply, result)
        }
        Command::ReadRecords { after, max, max_bytes, first_always, reply } => {
            let mut read = || match db::first_record_after(tx, after)? {
                None => Ok(Vec::new()),
                Some(first) => match recent.take_from(first, max, max_bytes, first_always) {
                    Some(batch) => Ok(batch),
                    None => db::records_after(tx, after, max, max_bytes, first_always),
                },
            };
            answer(reply, read().map_err(storage))
        }
        Command::DeleteRecords { first, last, reply } => {
            let result = db::delete_records(tx, first, last).map_err(storage).map(|(n, bytes)| {
                delta.bytes -= bytes as i64;
                delta.records -= n as i64;
            });
            answer(reply, result)
        }
        Command::OldestChunk { reply } => answer(reply, db::oldest_chunk(tx).map_err(storage)),
        Command::DeleteChunk { id, reply } => {
            let result = db::delete_chunk(tx, id).map_err(storage).map(|(n, bytes)| {
                delta.bytes -= bytes as i64;
                delta.chunks -= n as i64;
            });
            answer(reply, result)
        }
        Command::ChunkMeta { session_id, seq, reply } => {
            answer(reply, db::chunk_meta(tx, &session_id, seq).map_err(storage))
        }
        Command::Chunk { session_id, seq, reply } => answer(reply, db::chunk(tx, &session_id, seq).map_err(storage)),
        Command::SessionChunks { session_id, reply } => {
            answer(reply, db::session_chunks(tx, &session_id).map_err(storage))
        }
        Command::ExpireRecords { cutoff, reply } => {
            let mut expired = Expired::default();
            let result = loop {
                match db::expire_records(tx, cutoff) {
                    Ok((n, bytes)) => {
                        expired.records += n;
                        delta.bytes -= bytes as i64;
                        delta.records -= n as i64;
                        if n == 0 {
                            break Ok(expired);
                        }
                    }
                    Err(error) => break Err(storage(error)),
                }
            };
            answer(reply, result)
        }
        Command::ExpireChunks { cutoff, reply } => {
            let result = db::expire_chunks(tx, cutoff).map_err(storage).map(|(chunks, bytes)| {
                delta.bytes -= bytes as i64;
                delta.chunks -= chunks.len() as i64;
                Expired { records: 0, chunks }
            });
            answer(reply, result)
        }
        Command::Stats => {
            match db::oldest_times(tx) {
                Ok((records, chunks)) => shared.set_oldest(records, chunks),
                Err(error) => tracing::warn!(%error, "spool: cannot read the oldest items"),
            }
            Box::new(|_| {})
        }
    }
}

/// Runs `write` in a savepoint, so a failed command leaves nothing behind.
/// The savepoint statements are prepared once and cached: rusqlite's
/// `Transaction::savepoint` parses them again on every call, which cost a
/// tenth of the writer's time at 10k requests/s (docs/performance.md).
fn in_savepoint<T>(
    tx: &mut rusqlite::Transaction<'_>,
    write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, SpoolError> {
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut statement| statement.execute([])).map(drop);
    run("SAVEPOINT command").map_err(storage)?;
    match write(tx) {
        Ok(value) => {
            run("RELEASE command").map_err(storage)?;
            Ok(value)
        }
        Err(error) => {
            // Undo this command's writes only; the group's others commit.
            if let Err(undo) = run("ROLLBACK TO command").and_then(|()| run("RELEASE command")) {
                tracing::error!(%undo, "spool: cannot undo a failed command");
            }
            Err(storage(error))
        }
    }
}
