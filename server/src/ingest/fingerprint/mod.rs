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

use xxhash_rust::xxh3::xxh3_64;

use self::{message::push_message, stack::push_frames};

const MAX_TYPE_BYTES: usize = 128;

/// The fingerprint of an error report: 16 lowercase hex digits.
pub fn fingerprint(error_type: Option<&str>, message: &str, stack: Option<&str>) -> String {
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
