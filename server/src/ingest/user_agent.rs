//! `User-Agent` → browser, major version, OS and device class, with a
//! bounded cache in front.
//!
//! Parsing uses the `ua-parser` crate (the ua-parser project's Rust port)
//! with the project's shared regex list, vendored in `server/vendor/uap-core/`
//! (see its README for the upstream commit and how to update it). Its rules
//! are compiled one by one when a user agent first needs them
//! (`uap_rules.rs`: compiled all at once they took 30 MiB); a parse is a
//! prefiltered regex scan of tens of µs, and the cache turns the common case
//! (the same few hundred browsers sending many requests) into one hash
//! lookup of well under a microsecond.
//!
//! Device class is derived here, because uap only names devices: bots come
//! from uap's `Spider` device, tablets and phones from the tokens browsers use
//! to say so (`iPad`, `Mobi`, Android without `Mobile`), desktops from the OS.
//! iPadOS Safari in its default "desktop website" mode sends exactly the
//! macOS Safari string, so it is reported as a Mac desktop: no parser can tell
//! them apart from the header alone.

use std::sync::{Arc, LazyLock};

use quick_cache::sync::Cache;
use serde::Serialize;

use super::uap_rules::Rules;

/// Longer user agents are parsed (and cached) by their first 512 bytes:
/// real browsers send about 150, and the cache must not hold unbounded keys.
const MAX_USER_AGENT_BYTES: usize = 512;

/// uap-core's regex list, converted to JSON (`server/vendor/uap-core/`).
const REGEXES_JSON: &str = include_str!("../../vendor/uap-core/regexes.json");

/// The rule lists, with their prefilters; each regex is compiled on first
/// use. Built from data embedded at compile time, so it either always works
/// or never does, and the test `every_rule_compiles` catches the second
/// case before a release.
static RULES: LazyLock<Rules> =
    LazyLock::new(|| Rules::from_json(REGEXES_JSON).expect("vendored uap-core regexes.json is valid (tested)"));

/// Broad class of the device that sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    #[default]
    Unknown,
}

/// What a `User-Agent` header says about the client. Names are uap-core's
/// families (`Chrome`, `Chrome Mobile`, `Mobile Safari`, `Edge`, `Firefox`,
/// `Googlebot`, …; `Windows`, `Mac OS X`, `iOS`, `Android`, `Linux`, …);
/// uap's catch-all `Other` becomes `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ClientInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Major version only: minor versions split dashboards without telling
    /// anything useful, and Chrome's reduced UA string freezes them anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    pub device_type: DeviceType,
}

/// Parses `User-Agent` headers, caching results by header value.
/// Built once at start-up and shared (`Send + Sync`) behind an `Arc`.
pub struct UserAgentParser {
    cache: Cache<String, Arc<ClientInfo>>,
}

impl UserAgentParser {
    /// Reads the rule lists (once per process, about 0.1 s, no regex
    /// compiled yet) and creates a cache of `cache_entries` results.
    pub fn new(cache_entries: usize) -> Self {
        LazyLock::force(&RULES);
        UserAgentParser { cache: Cache::new(cache_entries.max(1)) }
    }

    pub fn parse(&self, user_agent: &str) -> Arc<ClientInfo> {
        let key = truncate(user_agent.trim(), MAX_USER_AGENT_BYTES);
        if let Some(hit) = self.cache.get(key) {
            return hit;
        }
        let info = Arc::new(parse_uncached(key));
        self.cache.insert(key.to_owned(), Arc::clone(&info));
        info
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

fn parse_uncached(ua: &str) -> ClientInfo {
    if ua.is_empty() {
        return ClientInfo::default();
    }
    let rules: &Rules = &RULES;
    let browser = rules.user_agent.first(ua, |rule| rule.extract(ua));
    let os = rules.os.first(ua, |rule| rule.extract(ua));
    let device = rules.device.first(ua, |rule| rule.extract(ua));

    let os_name = os.as_ref().map(|o| o.os.as_ref()).filter(|name| *name != "Other");
    let device_name = device.as_ref().map(|d| d.device.as_ref()).unwrap_or("Other");
    ClientInfo {
        browser: browser.as_ref().map(|b| b.family.as_ref()).filter(|f| *f != "Other").map(str::to_owned),
        browser_version: browser.as_ref().and_then(|b| b.major).filter(|v| !v.is_empty()).map(str::to_owned),
        os: os_name.map(str::to_owned),
        device_type: device_type(ua, os_name, device_name),
    }
}

/// Operating systems whose browsers are desktop unless a token says otherwise.
const DESKTOP_OSES: &[&str] = &[
    "Windows",
    "Mac OS X",
    "Linux",
    "Ubuntu",
    "Fedora",
    "Debian",
    "Red Hat",
    "SUSE",
    "openSUSE",
    "Mandriva",
    "Gentoo",
    "Slackware",
    "Arch Linux",
    "Linux Mint",
    "Chrome OS",
    "ChromeOS",
    "FreeBSD",
    "OpenBSD",
    "NetBSD",
    "Solaris",
];

fn device_type(ua: &str, os: Option<&str>, device: &str) -> DeviceType {
    if device == "Spider" {
        return DeviceType::Bot;
    }
    if device == "iPad" || ua.contains("iPad") || device.starts_with("Kindle") || device == "Generic Tablet" {
        return DeviceType::Tablet;
    }
    // "Mobi" is the token every current mobile browser sends (MDN's advice
    // for sniffing); phones without it are caught by uap's device names.
    if ua.contains("Mobi")
        || matches!(device, "iPhone" | "iPod" | "Generic Smartphone" | "Generic Feature Phone")
        || matches!(os, Some("Windows Phone" | "BlackBerry OS" | "KaiOS"))
    {
        return DeviceType::Mobile;
    }
    // Android browsers drop "Mobile" on tablets (Chrome's reduced string
    // included), so an Android UA that got this far is a tablet, unless it is
    // a TV.
    if os == Some("Android") {
        let tv = ["TV", "AFT", "CrKey", "BRAVIA"].iter().any(|token| ua.contains(token));
        return if tv { DeviceType::Unknown } else { DeviceType::Tablet };
    }
    if os.is_some_and(|os| DESKTOP_OSES.contains(&os)) {
        return DeviceType::Desktop;
    }
    DeviceType::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ua: &str) -> ClientInfo {
        UserAgentParser::new(16).parse(ua).as_ref().clone()
    }

    fn info(browser: Option<&str>, version: Option<&str>, os: Option<&str>, device_type: DeviceType) -> ClientInfo {
        ClientInfo {
            browser: browser.map(str::to_owned),
            browser_version: version.map(str::to_owned),
            os: os.map(str::to_owned),
            device_type,
        }
    }

    #[test]
    fn every_rule_compiles() {
        let rules = Rules::from_json(REGEXES_JSON).unwrap();
        assert!(rules.user_agent.rule_count() > 400);
        assert_eq!(rules.user_agent.compile_all(), rules.user_agent.rule_count());
        assert_eq!(rules.os.compile_all(), rules.os.rule_count());
        assert_eq!(rules.device.compile_all(), rules.device.rule_count());
    }

    #[test]
    fn parser_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<UserAgentParser>();
    }

    #[test]
    fn chrome_desktop_windows() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(parse(ua), info(Some("Chrome"), Some("131"), Some("Windows"), DeviceType::Desktop));
    }

    #[test]
    fn chrome_android_mobile_reduced() {
        // Chrome's reduced UA string: model "K", Android version frozen at 10.
        let ua = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
        assert_eq!(parse(ua), info(Some("Chrome Mobile"), Some("131"), Some("Android"), DeviceType::Mobile));
    }

    #[test]
    fn chrome_android_tablet_reduced() {
        let ua =
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let got = parse(ua);
        assert_eq!(got.os.as_deref(), Some("Android"));
        assert_eq!(got.device_type, DeviceType::Tablet);
    }

    #[test]
    fn safari_iphone() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(parse(ua), info(Some("Mobile Safari"), Some("17"), Some("iOS"), DeviceType::Mobile));
    }

    #[test]
    fn safari_ipad() {
        let ua = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
        assert_eq!(parse(ua), info(Some("Mobile Safari"), Some("16"), Some("iOS"), DeviceType::Tablet));
    }

    #[test]
    fn ipados_desktop_mode_reads_as_mac() {
        // Byte for byte what macOS Safari sends: see the module docs.
        let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
        assert_eq!(parse(ua), info(Some("Safari"), Some("17"), Some("Mac OS X"), DeviceType::Desktop));
    }

    #[test]
    fn firefox_linux() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(parse(ua), info(Some("Firefox"), Some("133"), Some("Linux"), DeviceType::Desktop));
    }

    #[test]
    fn firefox_ubuntu() {
        let ua = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(parse(ua), info(Some("Firefox"), Some("128"), Some("Ubuntu"), DeviceType::Desktop));
    }

    #[test]
    fn edge_windows() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";
        assert_eq!(parse(ua), info(Some("Edge"), Some("131"), Some("Windows"), DeviceType::Desktop));
    }

    #[test]
    fn chrome_mac() {
        let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(parse(ua), info(Some("Chrome"), Some("131"), Some("Mac OS X"), DeviceType::Desktop));
    }

    #[test]
    fn chrome_ios() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1";
        assert_eq!(parse(ua), info(Some("Chrome Mobile iOS"), Some("131"), Some("iOS"), DeviceType::Mobile));
    }

    #[test]
    fn samsung_internet() {
        let ua = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36";
        assert_eq!(parse(ua), info(Some("Samsung Internet"), Some("26"), Some("Android"), DeviceType::Mobile));
    }

    #[test]
    fn googlebot() {
        let ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let got = parse(ua);
        assert_eq!(got.browser.as_deref(), Some("Googlebot"));
        assert_eq!(got.browser_version.as_deref(), Some("2"));
        assert_eq!(got.device_type, DeviceType::Bot);
    }

    #[test]
    fn googlebot_smartphone_is_a_bot_not_a_phone() {
        let ua = "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert_eq!(parse(ua).device_type, DeviceType::Bot);
    }

    #[test]
    fn gptbot() {
        let ua =
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; +https://openai.com/gptbot";
        assert_eq!(parse(ua).device_type, DeviceType::Bot);
    }

    #[test]
    fn curl() {
        assert_eq!(parse("curl/8.5.0"), info(Some("curl"), Some("8"), None, DeviceType::Unknown));
    }

    #[test]
    fn empty_and_garbage() {
        assert_eq!(parse(""), ClientInfo::default());
        assert_eq!(parse("   "), ClientInfo::default());
        assert_eq!(parse("definitely not a browser"), ClientInfo::default());
    }

    #[test]
    fn device_type_names() {
        assert_eq!(serde_json::to_string(&DeviceType::Bot).unwrap(), "\"bot\"");
        let json = serde_json::to_value(info(Some("Edge"), Some("131"), None, DeviceType::Desktop)).unwrap();
        assert_eq!(json["device_type"], "desktop");
    }

    #[test]
    fn cache_returns_the_same_result() {
        let parser = UserAgentParser::new(4);
        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let first = parser.parse(ua);
        let second = parser.parse(ua);
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn long_user_agents_are_cut_before_caching() {
        let parser = UserAgentParser::new(4);
        let base = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 ";
        let long_a = format!("{base}{}", "a".repeat(2000));
        let long_b = format!("{base}{}", "é".repeat(2000));
        assert_eq!(parser.parse(&long_a).browser.as_deref(), Some("Firefox"));
        assert_eq!(parser.parse(&long_b).browser.as_deref(), Some("Firefox"));
        assert!(parser.cache.iter().all(|(key, _)| key.len() <= MAX_USER_AGENT_BYTES));
    }
}
