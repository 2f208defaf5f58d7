//! Stack lines: parsing V8 and Firefox/Safari frames, keeping the app's own
//! frames, and normalising function names.

use super::{path::push_path, truncate};

const MAX_FUNCTION_BYTES: usize = 128;
const MAX_PATH_BYTES: usize = 256;
/// In-app frames kept: the top of the stack is where bugs differ; deeper
/// frames (framework dispatch, callers) mostly add noise.
pub(super) const MAX_FRAMES: usize = 5;
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

/// One stack line split into its function name and its location text.
struct RawFrame<'a> {
    function: &'a str,
    location: &'a str,
}

/// Appends `\nfunction@path` for each of the top in-app frames.
pub(super) fn push_frames(out: &mut String, stack: &str) {
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
