//! Message normalisation: URLs, UUIDs, ids, numbers and quoted values become
//! placeholders, whitespace is collapsed, and the result is capped.

use super::{is_uuid, truncate};

/// How much of the message is looked at; the rest cannot reach the output.
const MAX_MESSAGE_SCAN_BYTES: usize = 4096;
/// How much of the normalised message goes into the fingerprint: enough to
/// tell messages apart, short enough that appended details do not split them.
pub(super) const MAX_MESSAGE_BYTES: usize = 512;

/// Appends the normalised message to `out`.
pub(super) fn push_message(out: &mut String, message: &str) {
    let start = out.len();
    let text = truncate(message, MAX_MESSAGE_SCAN_BYTES);
    let bytes = text.as_bytes();
    let mut pending_space = false;
    // Per quote kind: no closing quote remains, so don't search again (keeps
    // the scan linear when a message has many unmatched apostrophes).
    let mut unclosed = [false; 3];
    let mut i = 0;
    while i < bytes.len() && out.len() - start < MAX_MESSAGE_BYTES {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            pending_space = true;
            i += 1;
            continue;
        }
        if pending_space && out.len() > start {
            out.push(' ');
        }
        pending_space = false;

        if b.is_ascii_alphanumeric() {
            if let Some(end) = url_end(bytes, i) {
                out.push_str("<url>");
                i = end;
            } else if is_uuid(&bytes[i..bytes.len().min(i + 36)])
                && !bytes.get(i + 36).is_some_and(u8::is_ascii_alphanumeric)
            {
                out.push_str("<uuid>");
                i += 36;
            } else {
                i = push_word(out, text, i);
            }
            continue;
        }
        if let Some(kind) = quote_kind(b) {
            // An apostrophe right after a letter is English ("can't"), not a quote.
            let opens = b != b'\'' || i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            if opens && !unclosed[kind] {
                match bytes[i + 1..].iter().position(|&c| c == b) {
                    Some(len) => {
                        out.push_str("<str>");
                        i += len + 2;
                        continue;
                    }
                    None => unclosed[kind] = true,
                }
            }
            out.push(b as char);
            i += 1;
            continue;
        }
        // Punctuation and non-ASCII text are kept as they are, up to the next
        // byte the loop acts on (always ASCII, so always a char boundary).
        let end = bytes[i + 1..]
            .iter()
            .position(|&c| c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || quote_kind(c).is_some())
            .map_or(bytes.len(), |n| i + 1 + n);
        out.push_str(&text[i..end]);
        i = end;
    }
    let cap = out.floor_char_boundary(start + MAX_MESSAGE_BYTES);
    out.truncate(cap);
}

fn quote_kind(b: u8) -> Option<usize> {
    match b {
        b'\'' => Some(0),
        b'"' => Some(1),
        b'`' => Some(2),
        _ => None,
    }
}

/// If a URL starts at `i` (`scheme://…`, `blob:…`, `data:type/…`), where it ends.
fn url_end(bytes: &[u8], i: usize) -> Option<usize> {
    let rest = &bytes[i..];
    let body = if let Some(scheme_len) = scheme_len(rest) {
        i + scheme_len + 3
    } else if starts_with_ignore_case(rest, b"blob:")
        || (starts_with_ignore_case(rest, b"data:") && is_media_type_start(&rest[5..]))
    {
        i + 5
    } else {
        return None;
    };
    let end = bytes[body..].iter().position(|&c| is_url_end(c)).map_or(bytes.len(), |n| body + n);
    (end > body).then_some(end)
}

/// Length of `scheme` when `s` starts with `scheme://`. Schemes longer than
/// 32 bytes are not looked for, so dotted text is not rescanned at every word.
fn scheme_len(s: &[u8]) -> Option<usize> {
    if !s.first()?.is_ascii_alphabetic() {
        return None;
    }
    let len = s.iter().take(32).position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))?;
    s[len..].starts_with(b"://").then_some(len)
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `image/png…`: tells a data URL from the word "data:" in prose.
fn is_media_type_start(s: &[u8]) -> bool {
    let letters = s.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    letters > 0 && s.get(letters) == Some(&b'/')
}

fn is_url_end(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'`' | b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'{' | b'}')
}

/// Appends the word (ASCII letters and digits) starting at `start`, with
/// numbers and ids replaced; returns where it ends.
fn push_word(out: &mut String, text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let word_end = start + bytes[start..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    // A trailing number takes its decimals along: 3.14, v1.2.3, 10.0.0.1.
    let mut end = word_end;
    if bytes[end - 1].is_ascii_digit() {
        while bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            end += 1;
            end += bytes[end..].iter().take_while(|c| c.is_ascii_digit()).count();
        }
    }
    let word = &bytes[start..word_end];
    let is_hex_word = word.len() >= 8 && word.iter().all(u8::is_ascii_hexdigit) && word.iter().any(u8::is_ascii_digit);
    let is_0x = word.len() > 2
        && word[0] == b'0'
        && word[1].eq_ignore_ascii_case(&b'x')
        && word[2..].iter().all(u8::is_ascii_hexdigit);
    if word.iter().all(u8::is_ascii_digit) {
        out.push_str("<num>");
    } else if is_0x || is_hex_word {
        out.push_str("<hex>");
    } else {
        // A name with digits in it (`item42`, `E1234`): keep the letters.
        let mut k = start;
        while k < word_end {
            let digits = bytes[k..word_end].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 {
                out.push_str("<num>");
                k += digits;
            } else {
                let letters = bytes[k..word_end].iter().take_while(|c| !c.is_ascii_digit()).count();
                out.push_str(&text[k..k + letters]);
                k += letters;
            }
        }
    }
    end
}
