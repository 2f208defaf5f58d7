//! Frame file paths with per-build parts replaced, so that a new release of
//! unchanged code keeps its fingerprint.

use super::is_uuid;

/// Appends the path with per-build parts replaced: numeric and UUID path
/// segments by `[id]`, content hashes and build ids by `[hash]`.
pub(super) fn push_path(out: &mut String, path: &str) {
    for (n, segment) in path.split('/').enumerate() {
        if n > 0 {
            out.push('/');
        }
        let all_digits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
        if all_digits || is_uuid(segment.as_bytes()) {
            out.push_str("[id]");
            continue;
        }
        for (m, part) in segment.split('.').enumerate() {
            if m > 0 {
                out.push('.');
            }
            push_name_part(out, part, m == 0);
        }
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// One dot-separated part of a path segment.
fn push_name_part(out: &mut String, part: &str, first: bool) {
    let bytes = part.as_bytes();
    let has = |f: fn(&u8) -> bool| bytes.iter().any(f);
    // Build ids and nanoids (Next.js `/_next/static/<buildId>/`).
    if bytes.len() >= 16
        && bytes.iter().all(|&b| is_base64url(b))
        && has(u8::is_ascii_digit)
        && has(u8::is_ascii_uppercase)
        && has(u8::is_ascii_lowercase)
    {
        out.push_str("[hash]");
        return;
    }
    // Rollup/Vite `name-XXXXXXXX`: 8 base64url characters, which may
    // themselves contain `-` or `_` and so escape the per-word test below.
    if bytes.len() >= 10 && bytes[bytes.len() - 9] == b'-' {
        let tail = &bytes[bytes.len() - 8..];
        if tail.iter().all(|&b| is_base64url(b)) && tail.iter().any(|&b| b == b'-' || b == b'_') {
            push_words(out, &part[..part.len() - 8], first);
            out.push_str("[hash]");
            return;
        }
    }
    push_words(out, part, first);
}

/// Appends `part`, replacing each alphanumeric word that looks like a hash.
fn push_words(out: &mut String, part: &str, first: bool) {
    let bytes = part.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word = bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        if word > 0 {
            let leading = first && i == 0;
            out.push_str(if looks_like_hash(&bytes[i..i + word], leading) { "[hash]" } else { &part[i..i + word] });
            i += word;
        } else {
            let other = bytes[i..].iter().take_while(|b| !b.is_ascii_alphanumeric()).count();
            out.push_str(&part[i..i + other]);
            i += other;
        }
    }
}

/// Hex hashes (webpack, Parcel, Next.js) and alphanumeric ones with a digit
/// (esbuild, Rollup) are 6+ characters with a digit in them. An 8-letter
/// Rollup/esbuild hash may have no digit: after a separator, all capitals or
/// capitals past the first letter mark one (`DiwrgTda`, `KQXZJHAB`), while
/// `Settings` or a leading `UserProfile` stay names.
fn looks_like_hash(word: &[u8], leading: bool) -> bool {
    let has_digit = word.iter().any(u8::is_ascii_digit);
    if word.len() >= 6 && has_digit {
        return true;
    }
    word.len() == 8
        && !leading
        && !has_digit
        && (word.iter().all(u8::is_ascii_uppercase)
            || (word.iter().any(u8::is_ascii_lowercase) && word[1..].iter().any(u8::is_ascii_uppercase)))
}
