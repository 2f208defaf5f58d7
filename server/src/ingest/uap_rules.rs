//! uap-core's three rule lists (user agent, OS, device), each rule compiled
//! the first time a `User-Agent` could match it.
//!
//! Why: the `ua-parser` crate compiles all 1,270 regexes up front, and they
//! took 30 MiB, three quarters of the server's idle memory, while real
//! traffic only ever reaches a small part of them (100 very varied user
//! agents of uap-core's test suite reach 169; see docs/benchmarks.md). Lazy
//! compilation is planned upstream (ua-parser/uap-rust issue #5) but not
//! available, so this builds the lists the way the crate does, minus the
//! compilation.
//!
//! The answer is the crate's, by construction: the crate takes, in list
//! order, the first rule that its prefilter lets through (regex-filtered's
//! literal "atoms", found by one Aho-Corasick scan) and whose regex matches.
//! This uses the same prefilter, from the same crate, over the same rules,
//! and runs each candidate through a one-rule `ua-parser` extractor, so the
//! regex rewriting, matching and `$1` replacements are the crate's own. One
//! difference: atoms come from each regex as written, the crate takes them
//! after its rewrite (`\d` to `[0-9]`, `{0,300}` to `*`). The rewrite can
//! only give more atoms (a 10-character class becomes a literal set, bounds
//! are ignored by the atom model), so this filter lets through every rule the
//! crate's does, and sometimes one more, which its regex then refuses. The
//! test `lazy_lists_agree_with_ua_parser` checks it on the user agents of
//! uap-core's test suite.
//!
//! A rule is compiled once per process (a fraction of a millisecond to a
//! few ms each): the first request from a new kind of client pays a few ms,
//! and a client cycling through crafted user agents can at most make the
//! server compile every rule once, which is what start-up used to do.
//!
//! regex-filtered's `mapper` and `model` modules are public but hidden from
//! its documentation, so its version is pinned in Cargo.toml: an update is
//! a deliberate step, checked by the same test.

use std::{borrow::Cow, sync::OnceLock};

use aho_corasick::AhoCorasick;
use regex_filtered::{mapper, model::Model};
use serde::Deserialize;
use serde_json::value::RawValue;
use ua_parser::{device, os, user_agent};

/// Shortest atoms the prefilter searches for: the `ua-parser` crate's
/// choices (`user_agent::Builder::new` and `os::Builder::new` use 3,
/// `device::Builder::new` 2). They only decide how sharp the filter is.
const UA_ATOM_LEN: usize = 3;
const OS_ATOM_LEN: usize = 3;
const DEVICE_ATOM_LEN: usize = 2;

/// The three lists of a uap-core `regexes.json`.
pub struct Rules {
    pub user_agent: RuleList<user_agent::Extractor<'static>>,
    pub os: RuleList<os::Extractor<'static>>,
    pub device: RuleList<device::Extractor<'static>>,
}

/// Why a rule list could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("regexes.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("regex {pattern:?}: {reason}")]
    Regex { pattern: String, reason: String },
    #[error("prefilter: {0}")]
    Prefilter(#[from] aho_corasick::BuildError),
}

/// `regexes.json` with each rule kept as its JSON text, to be parsed by
/// `ua-parser` when the rule is first needed.
#[derive(Deserialize)]
struct Lists<'a> {
    #[serde(borrow)]
    user_agent_parsers: Vec<&'a RawValue>,
    #[serde(borrow)]
    os_parsers: Vec<&'a RawValue>,
    #[serde(borrow)]
    device_parsers: Vec<&'a RawValue>,
}

/// What the prefilter needs of a rule.
#[derive(Deserialize)]
struct Pattern<'a> {
    #[serde(borrow)]
    regex: Cow<'a, str>,
    #[serde(borrow, default)]
    regex_flag: Option<Cow<'a, str>>,
}

impl Rules {
    /// Reads the lists and builds their prefilters; compiles no regex.
    pub fn from_json(json: &'static str) -> Result<Self, RulesError> {
        let lists: Lists<'static> = serde_json::from_str(json)?;
        Ok(Rules {
            user_agent: RuleList::new(&lists.user_agent_parsers, UA_ATOM_LEN, |json| {
                user_agent::Builder::new().push(serde_json::from_str(json).ok()?).ok()?.build().ok()
            })?,
            os: RuleList::new(&lists.os_parsers, OS_ATOM_LEN, |json| {
                os::Builder::new().push(serde_json::from_str(json).ok()?).ok()?.build().ok()
            })?,
            device: RuleList::new(&lists.device_parsers, DEVICE_ATOM_LEN, |json| {
                device::Builder::new().push(serde_json::from_str(json).ok()?).ok()?.build().ok()
            })?,
        })
    }
}

/// One list: a prefilter over all its rules, and each rule's one-rule
/// extractor once something needed it.
pub struct RuleList<E> {
    prefilter: AhoCorasick,
    mapper: mapper::Mapper,
    rules: Box<[Rule<E>]>,
    compile: fn(&'static str) -> Option<E>,
}

struct Rule<E> {
    json: &'static str,
    /// `None` if the rule does not compile, which the test
    /// `every_rule_compiles` rules out for the vendored list.
    compiled: OnceLock<Option<E>>,
}

impl<E> RuleList<E> {
    fn new(
        rules: &[&'static RawValue],
        min_atom_len: usize,
        compile: fn(&'static str) -> Option<E>,
    ) -> Result<Self, RulesError> {
        let mut models = mapper::Builder::new(min_atom_len);
        for rule in rules {
            let pattern: Pattern<'_> = serde_json::from_str(rule.get())?;
            let regex_error = |reason: String| RulesError::Regex { pattern: pattern.regex.to_string(), reason };
            let hir = regex_syntax::ParserBuilder::new()
                .case_insensitive(pattern.regex_flag.as_deref() == Some("i"))
                .build()
                .parse(&pattern.regex)
                .map_err(|e| regex_error(e.to_string()))?;
            models.push(Model::new(&hir).map_err(|e| regex_error(e.to_string()))?);
        }
        let (mapper, atoms) = models.build();
        // As regex-filtered builds it (`Builder::build`).
        let prefilter = AhoCorasick::builder().ascii_case_insensitive(true).prefilter(true).build(atoms)?;
        let rules = rules.iter().map(|rule| Rule { json: rule.get(), compiled: OnceLock::new() }).collect();
        Ok(RuleList { prefilter, mapper, rules, compile })
    }

    /// What `extract` gives for the first rule, in list order, that answers
    /// for `ua`, compiling candidates as they come.
    pub fn first<'a, T>(&'a self, ua: &'a str, extract: impl Fn(&'a E) -> Option<T>) -> Option<T> {
        let atoms = self.prefilter.find_overlapping_iter(ua).map(|m| m.pattern().as_usize());
        // Ascending rule indices, rules without atoms included.
        let candidates = self.mapper.atom_to_re(atoms);
        candidates.into_iter().find_map(|index| self.rules.get(index)?.extractor(self.compile).and_then(&extract))
    }

    #[cfg(test)]
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Number of rules compiled so far.
    #[cfg(test)]
    pub fn compiled(&self) -> usize {
        self.rules.iter().filter(|rule| rule.compiled.get().is_some()).count()
    }

    /// Compiles every rule; returns how many compiled.
    #[cfg(test)]
    pub fn compile_all(&self) -> usize {
        self.rules.iter().filter(|rule| rule.extractor(self.compile).is_some()).count()
    }
}

impl<E> Rule<E> {
    fn extractor(&self, compile: fn(&'static str) -> Option<E>) -> Option<&E> {
        self.compiled.get_or_init(|| compile(self.json)).as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGEXES_JSON: &str = include_str!("../../vendor/uap-core/regexes.json");
    /// uap-core's test user agents (`server/vendor/uap-core/README.md`).
    const TEST_USER_AGENTS: &str = include_str!("../../vendor/uap-core/test_user_agents.txt");

    /// Everything the crate extracts (all fields, not only those Observer
    /// reports) must be the same as with the crate's eager extractor.
    #[test]
    fn lazy_lists_agree_with_ua_parser() {
        let lazy = Rules::from_json(REGEXES_JSON).unwrap();
        let regexes: ua_parser::Regexes<'_> = serde_json::from_str(REGEXES_JSON).unwrap();
        let eager = ua_parser::Extractor::try_from(regexes).unwrap();
        let mut count = 0;
        for ua in TEST_USER_AGENTS.lines() {
            let want = (
                eager.ua.extract(ua).map(|v| v.into_owned()),
                eager.os.extract(ua).map(|v| v.into_owned()),
                eager.dev.extract(ua).map(|v| v.into_owned()),
            );
            let got = (
                lazy.user_agent.first(ua, |rule| rule.extract(ua)).map(|v| v.into_owned()),
                lazy.os.first(ua, |rule| rule.extract(ua)).map(|v| v.into_owned()),
                lazy.device.first(ua, |rule| rule.extract(ua)).map(|v| v.into_owned()),
            );
            assert_eq!(got, want, "{ua}");
            count += 1;
        }
        assert!(count > 2000, "{count} test user agents");
    }

    #[test]
    fn rules_are_compiled_when_needed() {
        let rules = Rules::from_json(REGEXES_JSON).unwrap();
        assert_eq!((rules.user_agent.compiled(), rules.os.compiled(), rules.device.compiled()), (0, 0, 0));
        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let family = rules.user_agent.first(ua, |rule| rule.extract(ua)).map(|v| v.family.into_owned());
        assert_eq!(family.as_deref(), Some("Firefox"));
        let compiled = rules.user_agent.compiled();
        assert!((1..50).contains(&compiled), "{compiled} rules compiled for one user agent");
        // The same user agent again compiles nothing more.
        rules.user_agent.first(ua, |rule| rule.extract(ua));
        assert_eq!(rules.user_agent.compiled(), compiled);
    }
}
