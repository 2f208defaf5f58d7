//! One linear pass over a replay chunk's JSON text as it streams by: a
//! running size cap, the nesting depth, and the xxh3 hash of the text.
//!
//! serde_json skips ignored values with an explicit stack and no depth
//! limit, so a chunk nested millions of levels deep would pass validation
//! and then break every player that tries to load it. Counting `[` and `{`
//! outside strings here bounds the depth in the same pass that hashes the
//! bytes, before serde sees them. No crate offers a depth limit on a
//! streaming `Read` (serde_json's own recursion limit covers only what is
//! deserialized into types, not ignored values), hence this small scanner.

use std::io::{self, Read};

use xxhash_rust::xxh3::Xxh3;

/// Why a scan stopped the stream.
#[derive(Debug)]
pub enum ScanFailure {
    /// More than the size cap of JSON text.
    TooLarge { max: usize },
    /// Nested deeper than the depth cap.
    TooDeep { max: usize },
    /// The source could not be read (bad or truncated gzip).
    Source(io::Error),
}

/// Running state of the scan; feed it the text in pieces of any size.
pub struct ChunkScan {
    max_bytes: usize,
    max_depth: usize,
    bytes: usize,
    depth: usize,
    in_string: bool,
    /// The previous byte inside a string was an unescaped backslash.
    escaped: bool,
    hasher: Xxh3,
    failure: Option<ScanFailure>,
}

impl ChunkScan {
    pub fn new(max_bytes: usize, max_depth: usize) -> Self {
        ChunkScan {
            max_bytes,
            max_depth,
            bytes: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            hasher: Xxh3::new(),
            failure: None,
        }
    }

    /// Scans the next piece of text; on failure the scan stays failed.
    pub fn feed(&mut self, text: &[u8]) -> Result<(), &ScanFailure> {
        if self.failure.is_none()
            && let Err(failure) = self.scan(text)
        {
            self.failure = Some(failure);
        }
        self.failure.as_ref().map_or(Ok(()), Err)
    }

    fn scan(&mut self, text: &[u8]) -> Result<(), ScanFailure> {
        self.bytes = self.bytes.saturating_add(text.len());
        if self.bytes > self.max_bytes {
            return Err(ScanFailure::TooLarge { max: self.max_bytes });
        }
        self.hasher.update(text);
        let mut at = 0;
        while at < text.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    at += 1;
                    continue;
                }
                // Strings (DOM text, attributes, inline CSS) are most of an
                // rrweb chunk: jump to the next quote or backslash.
                match memchr::memchr2(b'"', b'\\', &text[at..]) {
                    None => return Ok(()),
                    Some(offset) => {
                        at += offset;
                        if text[at] == b'"' {
                            self.in_string = false;
                        } else {
                            self.escaped = true;
                        }
                    }
                }
            } else {
                match text[at] {
                    b'"' => self.in_string = true,
                    b'[' | b'{' => {
                        self.depth += 1;
                        if self.depth > self.max_depth {
                            return Err(ScanFailure::TooDeep { max: self.max_depth });
                        }
                    }
                    // Unbalanced closers are the parser's to report.
                    b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
            }
            at += 1;
        }
        Ok(())
    }

    /// Bytes of text seen so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The xxh3-64 hash of all the text fed so far.
    pub fn hash(&self) -> u64 {
        self.hasher.digest()
    }

    /// The failure that stopped the stream, if any.
    pub fn take_failure(&mut self) -> Option<ScanFailure> {
        self.failure.take()
    }
}

/// A reader that scans what it passes on; a failed scan (or a failed
/// source) ends the stream with an error and is kept in the scan, since
/// serde_json reports I/O errors only by kind.
pub struct ScanningReader<'s, R> {
    source: R,
    scan: &'s mut ChunkScan,
}

impl<'s, R: Read> ScanningReader<'s, R> {
    pub fn new(source: R, scan: &'s mut ChunkScan) -> Self {
        ScanningReader { source, scan }
    }
}

impl<R: Read> Read for ScanningReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.scan.failure.is_some() {
            return Err(io::Error::other("replay chunk scan stopped"));
        }
        let read = match self.source.read(buf) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.scan.failure = Some(ScanFailure::Source(e));
                return Err(io::Error::other("replay chunk source failed"));
            }
        };
        match self.scan.feed(&buf[..read]) {
            Ok(()) => Ok(read),
            Err(_) => Err(io::Error::other("replay chunk scan stopped")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(text: &str, max: usize) -> bool {
        ChunkScan::new(usize::MAX, max).feed(text.as_bytes()).is_ok()
    }

    #[test]
    fn depth_at_and_over_the_bound() {
        assert!(depth_ok("[[[1]]]", 3));
        assert!(!depth_ok("[[[1]]]", 2));
        assert!(depth_ok("[{\"a\":[1]},{\"b\":[2]}]", 3));
        assert!(!depth_ok("[{\"a\":[{}]}]", 3));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(depth_ok(r#"[{"a":"[[[[{{{{"}]"#, 2));
        assert!(depth_ok(r#"[{"a":"\"[[[[\\"}]"#, 2));
        // An escaped backslash ends the escape: the quote after it closes the string.
        assert!(!depth_ok(r#"["\\",[[1]]]"#, 2));
    }

    #[test]
    fn pieces_of_any_size_give_the_same_result() {
        let text = br#"[{"a":"x\"[y\\","b":[[1]]},{"c":"]]]"}]"#;
        for size in 1..text.len() {
            // Four levels deep: `[{"b":[[`.
            let mut whole = ChunkScan::new(usize::MAX, 4);
            let mut split = ChunkScan::new(usize::MAX, 4);
            assert!(whole.feed(text).is_ok());
            for piece in text.chunks(size) {
                assert!(split.feed(piece).is_ok(), "piece size {size}");
            }
            assert_eq!(whole.hash(), split.hash());
            assert_eq!(split.depth, 0);
            let mut shallow = ChunkScan::new(usize::MAX, 3);
            assert!(text.chunks(size).any(|piece| shallow.feed(piece).is_err()), "piece size {size}");
        }
    }

    /// The deepest nesting reached, byte by byte: the scan's specification.
    fn reference_max_depth(text: &[u8]) -> usize {
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
        for &b in text {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        deepest
    }

    #[test]
    fn agrees_with_a_byte_by_byte_scan_on_random_text() {
        let alphabet = b"[]{}\",\\a1 ";
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            let text: Vec<u8> = (0..rng.usize(0..64)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
            let deepest = reference_max_depth(&text);
            let piece = rng.usize(1..8);
            let fits = |max: usize| {
                let mut scan = ChunkScan::new(usize::MAX, max);
                text.chunks(piece).all(|p| scan.feed(p).is_ok())
            };
            assert!(fits(deepest), "{:?} reaches {deepest}", String::from_utf8_lossy(&text));
            if deepest > 0 {
                assert!(!fits(deepest - 1), "{:?} reaches {deepest}", String::from_utf8_lossy(&text));
            }
        }
    }

    #[test]
    fn size_cap_at_and_over() {
        assert!(ChunkScan::new(5, 10).feed(b"[1,2]").is_ok());
        let mut scan = ChunkScan::new(4, 10);
        assert!(matches!(scan.feed(b"[1,2]"), Err(ScanFailure::TooLarge { max: 4 })));
        // Once failed, it stays failed.
        assert!(scan.feed(b"").is_err());
    }

    #[test]
    fn reader_keeps_the_failure() {
        let deep = "[".repeat(10_000);
        let mut scan = ChunkScan::new(usize::MAX, 1000);
        let mut out = Vec::new();
        assert!(ScanningReader::new(deep.as_bytes(), &mut scan).read_to_end(&mut out).is_err());
        assert!(matches!(scan.take_failure(), Some(ScanFailure::TooDeep { max: 1000 })));
    }
}
