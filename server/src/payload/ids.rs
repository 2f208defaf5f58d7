//! Validated identifiers. A `SessionId` can only hold `[A-Za-z0-9_-]{8,128}`,
//! so it is safe in file paths and object keys.

use std::fmt;

pub const ID_RULE: &str = "must match ^[A-Za-z0-9_-]{8,128}$";

pub fn is_valid_id(value: &str) -> bool {
    (8..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(value: &str) -> Option<SessionId> {
        is_valid_id(value).then(|| SessionId(value.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("abcdEFGH_-12"));
        for bad in ["../x", "short", "abc/defgh", "abcdefgh.", "abcdefgh\0", &"a".repeat(129), "ünicodeid"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
