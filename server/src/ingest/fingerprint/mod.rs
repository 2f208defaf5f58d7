//! Error fingerprints: one stable id per bug, so that reports of the same
//! bug from many users, pages and releases group under one value.
//!
//! The fingerprint is xxh3-64 of a canonical string, as 16 lowercase hex
//! digits. The canonical string is
//!
//! ```text
//! type ("Error" when absent)
//! normalised message
//! function@path          one line per in-app frame, top 5 at most
//! ```
//!
//! - The message loses what differs between occurrences of one bug: URLs,
//!   UUIDs, hex ids, numbers and quoted values become `<url>`, `<uuid>`,
//!   `<hex>`, `<num>`, `<str>`; whitespace is collapsed; 512 bytes are kept.
//! - A frame keeps the function name and the file path, without scheme,
//!   host, query, fragment, line or column, and with content hashes in file
//!   names replaced (`main.3f2a9c1b.js` → `main.[hash].js`), so a new release
//!   of unchanged code keeps its fingerprint. Minified 1–2 letter names
//!   (`t`, `e.n`), which the minifier reassigns in every build, become `?`.
//! - Frames from browser extensions, browser internals (`<anonymous>`,
//!   `native`), dependencies (`node_modules`, `vendor`, well-known CDNs) and
//!   the Observer SDK itself are skipped: they are the same for unrelated
//!   bugs. With no frame left, type and message alone decide.
//!
//! xxh3 is specified byte for byte, so a fingerprint is the same on every
//! platform, build and restart, and stored fingerprints stay comparable.
//! Any change to the normalisation changes the fingerprints of the
//! errors it touches, which splits their existing groups in two: treat it as
//! a data migration, and update `pinned_value` knowingly.
//!
//! The scanners are hand-written single passes over bytes rather than a
//! chain of regex replacements: one output buffer, no intermediate strings,
//! and work bounded by the caps at the top of each file whatever the input.
//! One file per part of the input:
//!
//! - `message`: message normalisation.
//! - `stack`: stack line parsing, in-app filtering, function names.
//! - `path`: frame file paths with ids and content hashes replaced.

mod message;
mod path;
mod stack;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use quick_cache::sync::Cache;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use self::{message::push_message, stack::push_frames};

const MAX_TYPE_BYTES: usize = 128;

/// Fingerprints already computed, by a 128-bit hash of the raw inputs. One
/// bug reported by many browsers sends the same type, message and stack
/// again and again; hashing them (a fraction of a µs for a 1.7 KB stack) is
/// much cheaper than normalising them again (~5 µs, 6 % of the W1
/// benchmark's CPU). The hash is seeded at random per process, so inputs
/// that collide cannot be prepared in advance.
const CACHED_FINGERPRINTS: usize = 4096;

struct Known {
    seed: u64,
    fingerprints: Cache<u128, String>,
}

static KNOWN: LazyLock<Known> =
    LazyLock::new(|| Known { seed: fastrand::u64(..), fingerprints: Cache::new(CACHED_FINGERPRINTS) });

/// The fingerprint of an error report: 16 lowercase hex digits.
pub fn fingerprint(error_type: Option<&str>, message: &str, stack: Option<&str>) -> String {
    let known = &*KNOWN;
    let key = raw_key(known.seed, error_type, message, stack);
    if let Some(fingerprint) = known.fingerprints.get(&key) {
        return fingerprint;
    }
    let fingerprint = compute(error_type, message, stack);
    known.fingerprints.insert(key, fingerprint.clone());
    fingerprint
}

/// The inputs, each length-prefixed so that no two different inputs feed
/// the same bytes.
fn raw_key(seed: u64, error_type: Option<&str>, message: &str, stack: Option<&str>) -> u128 {
    let mut hasher = Xxh3::with_seed(seed);
    for part in [error_type, Some(message), stack] {
        match part {
            Some(text) => {
                hasher.update(&(text.len() as u64 + 1).to_le_bytes());
                hasher.update(text.as_bytes());
            }
            None => hasher.update(&0u64.to_le_bytes()),
        }
    }
    hasher.digest128()
}

fn compute(error_type: Option<&str>, message: &str, stack: Option<&str>) -> String {
    format!("{:016x}", xxh3_64(canonical(error_type, message, stack).as_bytes()))
}

/// The string that is hashed (see the module docs).
fn canonical(error_type: Option<&str>, message: &str, stack: Option<&str>) -> String {
    let mut out = String::with_capacity(256);
    let error_type = error_type.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("Error");
    out.push_str(truncate(error_type, MAX_TYPE_BYTES));
    out.push('\n');
    push_message(&mut out, message);
    if let Some(stack) = stack {
        push_frames(&mut out, stack);
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}
