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
//! Any change to the normalisation below changes the fingerprints of the
//! errors it touches, which splits their existing groups in two: treat it as
//! a data migration, and update `pinned_value` knowingly.
//!
//! The scanners are hand-written single passes over bytes rather than a
//! chain of regex replacements: one output buffer, no intermediate strings,
//! and work bounded by the caps below whatever the input.

use xxhash_rust::xxh3::xxh3_64;

/// How much of the message is looked at; the rest cannot reach the output.
const MAX_MESSAGE_SCAN_BYTES: usize = 4096;
/// How much of the normalised message goes into the fingerprint: enough to
/// tell messages apart, short enough that appended details do not split them.
const MAX_MESSAGE_BYTES: usize = 512;
const MAX_TYPE_BYTES: usize = 128;
const MAX_FUNCTION_BYTES: usize = 128;
const MAX_PATH_BYTES: usize = 256;
/// In-app frames kept: the top of the stack is where bugs differ; deeper
/// frames (framework dispatch, callers) mostly add noise.
const MAX_FRAMES: usize = 5;
/// Stack lines examined, so that a huge stack costs bounded work.
const MAX_STACK_LINES: usize = 256;

/// Hosts that only serve third-party code.
const VENDOR_HOSTS: &[&str] = &[
    "cdn.jsdelivr.net",
    "unpkg.com",
    "cdnjs.cloudflare.com",
    "ajax.googleapis.com",
    "code.jquery.com",
    "www.googletagmanager.com",
    "www.google-analytics.com",
    "connect.facebook.net",
];

/// Schemes of browser extension scripts (and Safari's mask for them).
const EXTENSION_SCHEMES: &[&str] = &[
    "chrome-extension",
    "moz-extension",
    "safari-extension",
    "safari-web-extension",
    "ms-browser-extension",
    "webkit-masked-url",
];

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

// ---------------------------------------------------------------- message

/// Appends the normalised message to `out`.
fn push_message(out: &mut String, message: &str) {
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

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
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

// ---------------------------------------------------------------- stack

/// One stack line split into its function name and its location text.
struct RawFrame<'a> {
    function: &'a str,
    location: &'a str,
}

/// Appends `\nfunction@path` for each of the top in-app frames.
fn push_frames(out: &mut String, stack: &str) {
    let mut kept = 0;
    for line in stack.lines().take(MAX_STACK_LINES) {
        let Some(frame) = parse_frame(line) else { continue };
        let Some(path) = in_app_path(frame.location) else { continue };
        out.push('\n');
        push_function(out, frame.function);
        out.push('@');
        push_path(out, truncate(path, MAX_PATH_BYTES));
        kept += 1;
        if kept == MAX_FRAMES {
            break;
        }
    }
}

/// Recognises V8 lines (`at fn (loc)`, `at loc`) and Firefox/Safari lines
/// (`fn@loc`, `@loc`, `loc`). Other lines (the message Chrome repeats first, blank
/// lines) give `None`, and so do lines whose location turns out not to be one.
fn parse_frame(line: &str) -> Option<RawFrame<'_>> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("at ") {
        let rest = rest.trim_start();
        if let Some(inner) = rest.strip_suffix(')') {
            let open = matching_open_paren(inner)?;
            return Some(RawFrame { function: inner[..open].trim_end(), location: &inner[open + 1..] });
        }
        // An anonymous function: just the location.
        let location = rest.strip_prefix("async ").unwrap_or(rest);
        return Some(RawFrame { function: "", location });
    }
    match line.split_once('@') {
        Some((function, location)) => {
            // Firefox marks async boundaries as `async*fn@…`, `promise callback*fn@…`.
            let function = function.rsplit_once('*').map_or(function, |(_, name)| name);
            Some(RawFrame { function, location })
        }
        // Older Safari prints anonymous frames as a bare URL.
        None if line.contains("://") => Some(RawFrame { function: "", location: line }),
        None => None,
    }
}

/// Index of the `(` that the (removed) final `)` closes. V8 nests
/// parentheses for eval frames: `eval (eval at f (https://…:1:2), <anonymous>:1:1)`.
fn matching_open_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' if depth == 0 => return Some(i),
            b'(' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The path of an in-app frame's file, or `None` for frames that are not
/// the app's (or not frames at all).
fn in_app_path(location: &str) -> Option<&str> {
    let mut loc = location.trim();
    // V8 eval: `eval at f (https://…/app.js:10:5), <anonymous>:1:1`; the
    // innermost parenthesis is where eval was called from.
    if loc.starts_with("eval at ") {
        let inner = &loc[loc.rfind('(')? + 1..];
        loc = &inner[..inner.find(')')?];
    }
    // Firefox eval / Function: `https://…/app.js line 10 > eval:1:5`.
    let firefox_eval = loc.find(" line ");
    if let Some(cut) = firefox_eval {
        loc = &loc[..cut];
    }
    let (without_position, had_position) = strip_line_and_column(loc);
    // Script frames always carry a line number; `<anonymous>`, `native`,
    // `[native code]`, `index 0` and prose that happened to contain `@` don't.
    if !had_position && firefox_eval.is_none() {
        return None;
    }
    loc = without_position;
    if loc.is_empty() || loc.contains(char::is_whitespace) || loc.starts_with("node:") || loc.starts_with('<') {
        return None;
    }
    let path = match loc.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.strip_prefix("blob:").unwrap_or(scheme);
            if EXTENSION_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
                return None;
            }
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            if VENDOR_HOSTS.iter().any(|h| host.eq_ignore_ascii_case(h)) {
                return None;
            }
            path
        }
        None => loc,
    };
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    (!is_vendor_path(path)).then_some(path)
}

/// Removes up to two trailing `:digits` (line, then column); reports whether
/// there was at least one.
fn strip_line_and_column(loc: &str) -> (&str, bool) {
    let mut rest = loc;
    let mut stripped = false;
    for _ in 0..2 {
        match rest.rsplit_once(':') {
            Some((head, digits)) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                rest = head;
                stripped = true;
            }
            _ => break,
        }
    }
    (rest, stripped)
}

fn is_vendor_path(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    path.contains("node_modules")
        || path.contains("bower_components")
        || path.split('/').any(|dir| dir == "vendor")
        // vendor.js, vendors~main.js, vendor-react.[hash].js: split-out dependencies.
        || file.starts_with("vendor")
        // The Observer SDK wraps the app's handlers, so its frames top many
        // unrelated stacks.
        || file == "observer.js"
        || file == "observer.min.js"
}

/// Appends the function name, with V8's `async `/`new ` prefixes and
/// `[as alias]` suffix removed and minified 1–2 letter names as `?`.
fn push_function(out: &mut String, function: &str) {
    let mut name = function.trim();
    for prefix in ["async ", "new "] {
        name = name.strip_prefix(prefix).unwrap_or(name).trim_start();
    }
    if let Some(alias) = name.find(" [as ") {
        name = &name[..alias];
    }
    let name = truncate(name, MAX_FUNCTION_BYTES);
    if name.is_empty() {
        out.push('?');
        return;
    }
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) {
            let len = bytes[i..].iter().take_while(|&&b| is_ident(b)).count();
            out.push_str(if len <= 2 { "?" } else { &name[i..i + len] });
            i += len;
        } else {
            // Stops at an ASCII identifier byte or the end: a char boundary.
            let len = bytes[i..].iter().take_while(|&&b| !is_ident(b)).count();
            out.push_str(&name[i..i + len]);
            i += len;
        }
    }
}

/// Appends the path with per-build parts replaced: numeric and UUID path
/// segments by `[id]`, content hashes and build ids by `[hash]`.
fn push_path(out: &mut String, path: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_STACK: &str = "TypeError: Cannot read properties of undefined (reading 'map')
    at renderList (https://app.example.com/assets/main.3f2a9c1b.js?v=3:10:5)
    at async loadOrders (https://app.example.com/assets/main.3f2a9c1b.js?v=3:22:17)
    at new OrderView (https://app.example.com/assets/chunk-AB12CD34.js:1:2044)
    at Object.<anonymous> (https://app.example.com/assets/app-4f9e2a.min.js:3:99)
    at https://app.example.com/assets/boot.js:1:2
    at Array.map (<anonymous>)";

    const FIREFOX_STACK: &str = "renderList@https://app.example.com/assets/main.3f2a9c1b.js?v=3:10:5
async*loadOrders@https://app.example.com/assets/main.3f2a9c1b.js?v=3:22:17
OrderView@https://app.example.com/assets/chunk-AB12CD34.js:1:2044
global code@https://app.example.com/assets/boot.js:1:2
forEach@[native code]
https://app.example.com/assets/boot.js:3:4";

    fn frames(stack: &str) -> Vec<String> {
        let mut out = String::new();
        push_frames(&mut out, stack);
        out.lines().skip(1).map(str::to_owned).collect()
    }

    fn message(text: &str) -> String {
        let mut out = String::new();
        push_message(&mut out, text);
        out
    }

    fn path(p: &str) -> String {
        let mut out = String::new();
        push_path(&mut out, p);
        out
    }

    #[test]
    fn is_16_lowercase_hex() {
        for fp in [fingerprint(None, "", None), fingerprint(Some("TypeError"), "x", Some(CHROME_STACK))] {
            assert_eq!(fp.len(), 16);
            assert!(fp.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{fp}");
        }
    }

    /// Pins the output for one input: if this fails, the normalisation or the
    /// hash changed, and every stored fingerprint with it (see module docs).
    #[test]
    fn pinned_value() {
        let message = "Cannot read properties of undefined (reading 'map')";
        let stack = "TypeError: Cannot read properties of undefined (reading 'map')\n    \
                     at renderList (https://app.example.com/assets/main.3f2a9c1b.js:10:5)";
        assert_eq!(
            canonical(Some("TypeError"), message, Some(stack)),
            "TypeError\nCannot read properties of undefined (reading <str>)\nrenderList@/assets/main.[hash].js"
        );
        assert_eq!(fingerprint(Some("TypeError"), message, Some(stack)), "a9912db1abd6077c");
    }

    #[test]
    fn canonical_form() {
        assert_eq!(
            canonical(Some("TypeError"), "Cannot read properties of undefined (reading 'map')", Some(CHROME_STACK)),
            "TypeError\nCannot read properties of undefined (reading <str>)\n\
             renderList@/assets/main.[hash].js\n\
             loadOrders@/assets/main.[hash].js\n\
             OrderView@/assets/chunk-[hash].js\n\
             Object.<anonymous>@/assets/app-[hash].min.js\n\
             ?@/assets/boot.js"
        );
    }

    #[test]
    fn variable_parts_of_the_message_do_not_matter() {
        let a = "Order 1234 (0x7f3a, id 3f2a9c1bdeadbeef, session 6f1c2b9a-0d4e-4c3b-9a8f-1e2d3c4b5a69) failed at https://api.example.com/orders/1234?x=1 for 'alice' after 2.5s: \"quota\"";
        let b = "Order 98  (0xdeadbeef, id 0123456789abcdef, session 00000000-0000-4000-8000-000000000000)  failed at http://localhost:8080/o for 'bob' after 10s: \"other reason\"";
        assert_eq!(fingerprint(Some("Error"), a, None), fingerprint(Some("Error"), b, None));
        assert_eq!(
            message(a),
            "Order <num> (<hex>, id <hex>, session <uuid>) failed at <url> for <str> after <num>s: <str>"
        );
    }

    #[test]
    fn blob_and_data_urls() {
        assert_eq!(
            message("Failed to load blob:https://app.example.com/6f1c2b9a-0d4e-4c3b-9a8f-1e2d3c4b5a69 now"),
            "Failed to load <url> now"
        );
        assert_eq!(message("Bad image data:image/png;base64,iVBORw0KGgo="), "Bad image <url>");
        assert_eq!(message("Invalid data: none"), "Invalid data: none");
    }

    #[test]
    fn apostrophes_are_not_quotes() {
        assert_eq!(message("Can't find 'x1' and won't retry"), "Can't find <str> and won't retry");
        assert_eq!(message("Unmatched ' quote 42"), "Unmatched ' quote <num>");
    }

    #[test]
    fn whitespace_is_collapsed_and_trimmed() {
        assert_eq!(message("  a \t\n b  "), "a b");
        assert_eq!(message("é 12 ü"), "é <num> ü");
    }

    #[test]
    fn names_with_digits_keep_their_letters() {
        assert_eq!(message("handler2 failed with E1234 on v1.2.3"), "handler<num> failed with E<num> on v<num>");
        assert_eq!(message("ids ab12 and deadbeef stay"), "ids ab<num> and deadbeef stay");
    }

    #[test]
    fn message_of_only_digits() {
        assert_eq!(message("42"), "<num>");
        assert_eq!(fingerprint(None, "42", None), fingerprint(None, "1337", None));
        assert_ne!(fingerprint(None, "42", None), fingerprint(None, "", None));
    }

    #[test]
    fn different_messages_differ() {
        assert_ne!(fingerprint(None, "Cannot read x", None), fingerprint(None, "Cannot write x", None));
        assert_ne!(fingerprint(Some("TypeError"), "x", None), fingerprint(Some("RangeError"), "x", None));
    }

    #[test]
    fn long_messages_are_capped() {
        let head = "a".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(
            fingerprint(None, &format!("{head} tail one"), None),
            fingerprint(None, &format!("{head} tail two"), None)
        );
        let multibyte = "é".repeat(MAX_MESSAGE_BYTES);
        assert!(message(&multibyte).len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn missing_type_is_error() {
        assert_eq!(fingerprint(None, "x", None), fingerprint(Some("Error"), "x", None));
        assert_eq!(fingerprint(Some("  "), "x", None), fingerprint(Some("Error"), "x", None));
    }

    #[test]
    fn empty_stack_is_no_stack() {
        assert_eq!(fingerprint(None, "x", Some("")), fingerprint(None, "x", None));
        assert_eq!(canonical(None, "x", Some("")), "Error\nx");
    }

    #[test]
    fn chrome_stack_parses() {
        assert_eq!(
            frames(CHROME_STACK),
            [
                "renderList@/assets/main.[hash].js",
                "loadOrders@/assets/main.[hash].js",
                "OrderView@/assets/chunk-[hash].js",
                "Object.<anonymous>@/assets/app-[hash].min.js",
                "?@/assets/boot.js",
            ]
        );
    }

    #[test]
    fn firefox_and_safari_stack_parses() {
        assert_eq!(
            frames(FIREFOX_STACK),
            [
                "renderList@/assets/main.[hash].js",
                "loadOrders@/assets/main.[hash].js",
                "OrderView@/assets/chunk-[hash].js",
                "global code@/assets/boot.js",
                "?@/assets/boot.js",
            ]
        );
    }

    #[test]
    fn safari_forms() {
        let stack = "module code@https://app.example.com/a.js:1:2\n@https://app.example.com/b.js:3:4\n\
                     https://app.example.com/c.js:5:6\neval code@\n[native code]";
        assert_eq!(frames(stack), ["module code@/a.js", "?@/b.js", "?@/c.js"]);
    }

    #[test]
    fn eval_frames_point_at_the_eval_call() {
        let chrome = "    at eval (eval at compile (https://app.example.com/app.js:10:5), <anonymous>:1:1)\n    \
                      at Object.eval (eval at <anonymous> (https://app.example.com/app.js:3:5), <anonymous>:1:1)";
        assert_eq!(frames(chrome), ["eval@/app.js", "Object.eval@/app.js"]);
        let firefox = "run@https://app.example.com/app.js line 2 > eval:1:5\nbuild@https://app.example.com/app.js line 9 > Function:3:1";
        assert_eq!(frames(firefox), ["run@/app.js", "build@/app.js"]);
    }

    #[test]
    fn position_query_and_bundle_hash_do_not_matter() {
        let a = "    at renderList (https://app.example.com/assets/main.3f2a9c1b.js?v=3:10:5)";
        let b = "    at renderList (https://cdn.example.net/assets/main.9c1b77e0.js?v=4#x:812:44)";
        assert_eq!(fingerprint(None, "x", Some(a)), fingerprint(None, "x", Some(b)));
        let vite_a = "    at renderList (https://app.example.com/assets/index-DiwrgTda.js:1:2)";
        let vite_b = "    at renderList (https://app.example.com/assets/index-B-Xk2_3a.js:1:2)";
        assert_eq!(fingerprint(None, "x", Some(vite_a)), fingerprint(None, "x", Some(vite_b)));
    }

    #[test]
    fn different_top_function_differs() {
        let a = "    at handleClick (https://app.example.com/main.js:1:2)";
        let b = "    at handleSubmit (https://app.example.com/main.js:1:2)";
        assert_ne!(fingerprint(None, "x", Some(a)), fingerprint(None, "x", Some(b)));
    }

    #[test]
    fn different_file_differs() {
        let a = "    at render (https://app.example.com/orders.js:1:2)";
        let b = "    at render (https://app.example.com/users.js:1:2)";
        assert_ne!(fingerprint(None, "x", Some(a)), fingerprint(None, "x", Some(b)));
    }

    #[test]
    fn minified_names_are_wildcards() {
        let a = "    at t.value (https://app.example.com/main.3f2a9c1b.js:1:2)\n    at e (https://app.example.com/main.3f2a9c1b.js:1:9)";
        let b = "    at n.value (https://app.example.com/main.77aa01ff.js:1:5)\n    at Ab (https://app.example.com/main.77aa01ff.js:1:7)";
        assert_eq!(frames(a), ["?.value@/main.[hash].js", "?@/main.[hash].js"]);
        assert_eq!(frames(a), frames(b));
    }

    #[test]
    fn foreign_frames_are_skipped() {
        let stack = "Error: boom
    at Array.forEach (<anonymous>)
    at Generator.next (native)
    at Promise.all (index 0)
    at inject (chrome-extension://abcdefghijklmnop/content.js:1:2)
    at hook (webkit-masked-url://hidden/:1:2)
    at debounce (https://app.example.com/node_modules/lodash/debounce.js:10:1)
    at jq (https://code.jquery.com/jquery-3.7.1.min.js:2:100)
    at dispatch (https://app.example.com/assets/vendor.3f2a9c1b.js:1:1)
    at wrapped (https://app.example.com/observer.js:1:1)
    at fs (node:internal/fs:1:1)
inject@moz-extension://0f1e2d3c/content.js:1:2
forEach@[native code]
    at onSave (https://app.example.com/assets/editor.js:5:6)";
        assert_eq!(frames(stack), ["onSave@/assets/editor.js"]);
    }

    #[test]
    fn no_in_app_frame_falls_back_to_the_message() {
        let stack = "    at inject (chrome-extension://abc/content.js:1:2)\n    at Array.map (<anonymous>)";
        assert_eq!(fingerprint(Some("TypeError"), "x", Some(stack)), fingerprint(Some("TypeError"), "x", None));
    }

    #[test]
    fn prose_with_at_signs_is_not_a_frame() {
        let stack = "Error: no account for alice@example.com\n    at least one retry failed\n    at login (https://app.example.com/login.js:1:2)";
        assert_eq!(frames(stack), ["login@/login.js"]);
    }

    #[test]
    fn only_the_top_five_frames_count() {
        let top: String = (0..5)
            .map(|i| format!("    at step{} (https://app.example.com/app.js:{i}:1)\n", ["a", "b", "c", "d", "e"][i]))
            .collect();
        let a = format!("{top}    at deepOne (https://app.example.com/app.js:9:9)");
        let b = format!("{top}    at deepTwo (https://app.example.com/other.js:9:9)");
        assert_eq!(frames(&a).len(), MAX_FRAMES);
        assert_eq!(fingerprint(None, "x", Some(&a)), fingerprint(None, "x", Some(&b)));
    }

    #[test]
    fn path_normalisation() {
        for (input, expected) in [
            ("/assets/main.3f2a9c1b.js", "/assets/main.[hash].js"),
            ("/assets/chunk-AB12CD34.js", "/assets/chunk-[hash].js"),
            ("/assets/chunk-KQXZJHAB.js", "/assets/chunk-[hash].js"),
            ("/assets/app-4f9e2a.min.js", "/assets/app-[hash].min.js"),
            ("/assets/index-DiwrgTda.js", "/assets/index-[hash].js"),
            ("/assets/index-B-Xk2_3a.js", "/assets/index-[hash].js"),
            ("/static/js/787.3f2a9c1b.chunk.js", "/static/js/787.[hash].chunk.js"),
            ("/_next/static/chunks/pages/_app-0123456789abcdef.js", "/_next/static/chunks/pages/_app-[hash].js"),
            ("/_next/static/Lz3xF_qzK9v-1aB2c3D4e/_buildManifest.js", "/_next/static/[hash]/_buildManifest.js"),
            ("/orders/12345/edit", "/orders/[id]/edit"),
            ("/6f1c2b9a-0d4e-4c3b-9a8f-1e2d3c4b5a69", "/[id]"),
            ("/src/components/UserProfile.tsx", "/src/components/UserProfile.tsx"),
            ("/src/user-Settings.js", "/src/user-Settings.js"),
            ("/./src/App.js", "/./src/App.js"),
        ] {
            assert_eq!(path(input), expected, "{input}");
        }
    }

    #[test]
    fn huge_stack_is_handled() {
        // One 64 KiB line, then 64 KiB of frames, then junk.
        let long_line = format!("Error: {}", "x".repeat(64 * 1024));
        let frame = "    at renderList (https://app.example.com/assets/main.3f2a9c1b.js:10:5)\n";
        let many = frame.repeat(64 * 1024 / frame.len());
        let stack = format!("{long_line}\n{many}{}", "@".repeat(64 * 1024));
        let fp = fingerprint(Some("Error"), &"y".repeat(64 * 1024), Some(&stack));
        assert_eq!(fp.len(), 16);
        assert_eq!(frames(&stack), vec!["renderList@/assets/main.[hash].js"; MAX_FRAMES]);
        // Nothing but one giant unparseable line.
        let junk = "at ".to_owned() + &"(".repeat(64 * 1024) + ")";
        assert!(frames(&junk).is_empty());
    }
}
