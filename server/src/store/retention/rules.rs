//! S3 lifecycle rules as Observer writes and reads them (pure functions).
//!
//! Observer writes under two prefixes (see `store`): `{key_prefix}replays/`
//! (chunks and their index entries) and `{key_prefix}sessions/` (the
//! session listing). Each gets one rule:
//!
//! ```xml
//! <Rule><ID>observer-expire-replays</ID><Status>Enabled</Status>
//!   <Filter><Prefix>replays/</Prefix></Filter><Expiration><Days>30</Days></Expiration></Rule>
//! ```
//!
//! The prefix sits inside `Filter` (Garage refuses the rule-level `Prefix`
//! that AWS deprecated) and the rule has only `Expiration` (Garage
//! implements `Expiration` and `AbortIncompleteMultipartUpload` only; the
//! latter would do nothing here, as Observer never uploads in parts). The
//! rule IDs are fixed per prefix, so re-applying replaces Observer's own
//! rules and leaves every other rule of the bucket as it is; two Observers
//! with different key prefixes sharing a bucket each keep their own rules.

use aws_sdk_s3::types::{ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter};
use xxhash_rust::xxh3::xxh3_64;

use crate::store::StoreError;

/// The prefixes of every object Observer writes, key prefix included
/// (normalised: `""` or ending in `/`).
pub fn observer_prefixes(key_prefix: &str) -> Vec<String> {
    vec![format!("{key_prefix}replays/"), format!("{key_prefix}sessions/")]
}

/// Longest rule ID S3 accepts.
const MAX_RULE_ID: usize = 255;

/// `observer-expire-replays` for `replays/`, `observer-expire-team-a/sessions`
/// for `team-a/sessions/`; an ID that would be too long names the prefix by
/// its hash instead.
pub fn rule_id(prefix: &str) -> String {
    let id = format!("observer-expire-{}", prefix.trim_end_matches('/'));
    if id.len() <= MAX_RULE_ID { id } else { format!("observer-expire-{:016x}", xxh3_64(prefix.as_bytes())) }
}

/// Observer's rule for `prefix`: objects expire `days` after they were written.
pub fn observer_rule(prefix: &str, days: u32) -> Result<LifecycleRule, StoreError> {
    let days = i32::try_from(days).map_err(|_| StoreError::Config(format!("{days} days is too many")))?;
    LifecycleRule::builder()
        .id(rule_id(prefix))
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        .expiration(LifecycleExpiration::builder().days(days).build())
        .build()
        .map_err(|e| StoreError::Config(format!("cannot build the lifecycle rule: {e}")))
}

/// What applying Observer's rules does to a bucket's rules.
#[derive(Debug)]
pub struct Merged {
    /// The whole configuration to put: the other rules first, in their
    /// order, then Observer's.
    pub rules: Vec<LifecycleRule>,
    /// IDs of Observer's rules that were already there (now replaced); the
    /// others of Observer's rules are new.
    pub replaced: Vec<String>,
    /// IDs (or `(no id)`) of the other rules, kept as they were.
    pub kept: Vec<String>,
}

/// `existing` with Observer's rules for `prefixes` put in (replacing rules
/// with the same IDs) and every other rule kept.
pub fn merge(existing: Vec<LifecycleRule>, prefixes: &[String], days: u32) -> Result<Merged, StoreError> {
    let ours: Vec<LifecycleRule> = prefixes.iter().map(|p| observer_rule(p, days)).collect::<Result<_, _>>()?;
    let is_ours = |rule: &LifecycleRule| ours.iter().any(|o| o.id().is_some() && o.id() == rule.id());
    let (replaced, others): (Vec<LifecycleRule>, Vec<LifecycleRule>) = existing.into_iter().partition(is_ours);
    let replaced: Vec<String> = replaced.iter().filter_map(|r| r.id().map(str::to_owned)).collect();
    let kept = others.iter().map(|r| r.id().unwrap_or("(no id)").to_owned()).collect();
    let mut rules = others;
    rules.extend(ours);
    Ok(Merged { rules, replaced, kept })
}

/// The prefix a rule applies to when it applies to every object under it;
/// `None` for rules that also filter on tags or sizes (Observer's objects
/// have no tags, and its index entries are empty, so such rules miss some).
pub fn rule_prefix(rule: &LifecycleRule) -> Option<&str> {
    let Some(filter) = rule.filter() else {
        // No filter: the deprecated rule-level prefix, or the whole bucket.
        #[allow(deprecated)]
        return Some(rule.prefix().unwrap_or(""));
    };
    if filter.tag().is_some() || filter.object_size_greater_than().is_some() || filter.object_size_less_than().is_some()
    {
        return None;
    }
    match filter.and() {
        Some(and) => {
            let conditions = !and.tags().is_empty()
                || and.object_size_greater_than().is_some()
                || and.object_size_less_than().is_some();
            (!conditions).then(|| and.prefix().unwrap_or(""))
        }
        None => Some(filter.prefix().unwrap_or("")),
    }
}

/// Whether the rule deletes objects after a time: enabled, with an
/// `Expiration` that has `Days` or `Date` (`ExpiredObjectDeleteMarker`
/// alone deletes nothing Observer wrote).
pub fn rule_expires(rule: &LifecycleRule) -> bool {
    *rule.status() == ExpirationStatus::Enabled
        && rule.expiration().is_some_and(|e| e.days().is_some() || e.date().is_some())
}

/// The first rule that expires every object under `prefix`.
pub fn covering_rule<'a>(rules: &'a [LifecycleRule], prefix: &str) -> Option<&'a LifecycleRule> {
    rules.iter().find(|rule| rule_expires(rule) && rule_prefix(rule).is_some_and(|p| prefix.starts_with(p)))
}

/// The prefixes no rule expires.
pub fn uncovered<'a>(rules: &[LifecycleRule], prefixes: &'a [String]) -> Vec<&'a str> {
    prefixes.iter().map(String::as_str).filter(|p| covering_rule(rules, p).is_none()).collect()
}

/// One line describing a rule, for `observer storage check`.
pub fn describe_rule(rule: &LifecycleRule) -> String {
    let id = rule.id().unwrap_or("(no id)");
    let status = rule.status().as_str();
    let applies = match rule_prefix(rule) {
        Some("") => "every object".to_owned(),
        Some(prefix) => format!("prefix {prefix:?}"),
        None => "objects matching tag or size conditions".to_owned(),
    };
    format!("{id}: {status}, {applies}, {}", describe_expiry(rule))
}

/// `expires after 30 days`, `expires on 2030-01-01T00:00:00Z`, `no expiration`.
pub fn describe_expiry(rule: &LifecycleRule) -> String {
    match rule.expiration() {
        Some(e) if e.days().is_some() => format!("expires after {} days", e.days().unwrap_or_default()),
        Some(e) if e.date().is_some() => format!("expires on {}", e.date().map(|d| d.to_string()).unwrap_or_default()),
        _ => "no expiration".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::types::{LifecycleRuleAndOperator, Tag};

    use super::*;

    fn rule(id: &str, filter: Option<LifecycleRuleFilter>, days: Option<i32>) -> LifecycleRule {
        let mut b = LifecycleRule::builder().id(id).status(ExpirationStatus::Enabled).set_filter(filter);
        if let Some(days) = days {
            b = b.expiration(LifecycleExpiration::builder().days(days).build());
        }
        b.build().unwrap()
    }

    fn prefix(p: &str) -> Option<LifecycleRuleFilter> {
        Some(LifecycleRuleFilter::builder().prefix(p).build())
    }

    #[test]
    fn prefixes_and_ids() {
        assert_eq!(observer_prefixes(""), ["replays/", "sessions/"]);
        assert_eq!(observer_prefixes("team-a/"), ["team-a/replays/", "team-a/sessions/"]);
        assert_eq!(rule_id("replays/"), "observer-expire-replays");
        assert_eq!(rule_id("team-a/sessions/"), "observer-expire-team-a/sessions");
        let long = format!("{}/replays/", "x".repeat(300));
        assert!(rule_id(&long).len() <= MAX_RULE_ID);
        assert_ne!(rule_id(&long), rule_id(&format!("{}/sessions/", "x".repeat(300))));
    }

    #[test]
    fn merge_replaces_ours_and_keeps_others() {
        let prefixes = observer_prefixes("");
        let existing = vec![
            rule("foreign", prefix("tmp/"), Some(1)),
            rule("observer-expire-replays", prefix("replays/"), Some(90)),
        ];
        let merged = merge(existing, &prefixes, 30).unwrap();
        assert_eq!(merged.replaced, ["observer-expire-replays"]);
        assert_eq!(merged.kept, ["foreign"]);
        let ids: Vec<_> = merged.rules.iter().map(|r| r.id().unwrap()).collect();
        assert_eq!(ids, ["foreign", "observer-expire-replays", "observer-expire-sessions"]);
        let ours = &merged.rules[1];
        assert_eq!(ours.filter().and_then(|f| f.prefix()), Some("replays/"));
        assert_eq!(ours.expiration().and_then(|e| e.days()), Some(30));
        #[allow(deprecated)]
        let rule_level = ours.prefix();
        assert_eq!(rule_level, None, "the prefix goes inside Filter");

        let again = merge(merged.rules, &prefixes, 30).unwrap();
        assert_eq!(again.rules.len(), 3, "idempotent");
        assert_eq!(again.replaced, ["observer-expire-replays", "observer-expire-sessions"]);
    }

    #[test]
    fn coverage() {
        let prefixes = observer_prefixes("p/");
        assert_eq!(uncovered(&[], &prefixes), ["p/replays/", "p/sessions/"]);
        let whole_bucket = rule("all", Some(LifecycleRuleFilter::builder().build()), Some(7));
        assert!(uncovered(&[whole_bucket], &prefixes).is_empty());
        let parent = rule("parent", prefix("p/"), Some(7));
        assert!(uncovered(&[parent], &prefixes).is_empty());
        let one = rule("one", prefix("p/replays/"), Some(7));
        assert_eq!(uncovered(&[one], &prefixes), ["p/sessions/"]);
        let deeper = rule("deeper", prefix("p/replays/abc"), Some(7));
        assert_eq!(uncovered(&[deeper], &prefixes).len(), 2, "covers only part of the prefix");
        let no_expiry = rule("none", prefix(""), None);
        assert_eq!(uncovered(&[no_expiry], &prefixes).len(), 2);
        let disabled = LifecycleRule::builder()
            .id("off")
            .status(ExpirationStatus::Disabled)
            .set_filter(prefix(""))
            .expiration(LifecycleExpiration::builder().days(1).build())
            .build()
            .unwrap();
        assert_eq!(uncovered(&[disabled], &prefixes).len(), 2);
        let tagged = rule("tag", Some(LifecycleRuleFilter::builder().tag(tag()).build()), Some(1));
        assert_eq!(uncovered(&[tagged], &prefixes).len(), 2);
        let and_prefix_only = LifecycleRuleAndOperator::builder().prefix("p/").build();
        let and = rule("and", Some(LifecycleRuleFilter::builder().and(and_prefix_only).build()), Some(1));
        assert!(uncovered(&[and], &prefixes).is_empty());
        let and_sized = LifecycleRuleAndOperator::builder().prefix("p/").object_size_greater_than(10).build();
        let sized = rule("sized", Some(LifecycleRuleFilter::builder().and(and_sized).build()), Some(1));
        assert_eq!(uncovered(&[sized], &prefixes).len(), 2);
        #[allow(deprecated)]
        let legacy = LifecycleRule::builder()
            .id("legacy")
            .prefix("p/")
            .status(ExpirationStatus::Enabled)
            .expiration(LifecycleExpiration::builder().days(3).build())
            .build()
            .unwrap();
        assert!(uncovered(&[legacy], &prefixes).is_empty());
    }

    fn tag() -> Tag {
        Tag::builder().key("k").value("v").build().unwrap()
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            describe_rule(&rule("observer-expire-replays", prefix("replays/"), Some(30))),
            "observer-expire-replays: Enabled, prefix \"replays/\", expires after 30 days"
        );
        assert_eq!(describe_rule(&rule("x", None, None)), "x: Enabled, every object, no expiration");
    }
}
