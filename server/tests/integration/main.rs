//! Black-box tests: the real `observer` binary, a decoding Loki receiver and
//! a real S3-compatible server process. One binary, one module per feature.

mod common;

mod browser_e2e;
mod config_docs;
mod connections;
mod demo_script;
mod fresh_recording;
mod healthcheck_command;
mod hostile_bodies;
mod hostile_inputs;
mod ingest_errors;
mod ingest_events;
mod ingest_limits;
mod ingest_memory;
mod ingest_replay;
mod metrics;
mod promql_queries;
mod readme_examples;
mod rejections;
mod replay_fetch;
mod retention;
mod secrets;
mod shutdown;
mod solid_app;
mod spool_faults;
mod viewer_session;
