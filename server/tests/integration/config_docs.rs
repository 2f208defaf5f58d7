//! `observer --help` and docs/configuration.md describe the same settings,
//! and a bad setting stops start-up naming it.

use std::process::Command;

#[test]
fn every_setting_in_help_is_documented() {
    let help = Command::new(env!("CARGO_BIN_EXE_observer")).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md")).unwrap();
    let mut names: Vec<&str> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("OBSERVER_"))
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        assert!(docs.contains(&format!("`{name}`")), "{name} is in --help but not in docs/configuration.md");
    }
}

#[test]
fn invalid_settings_stop_startup_naming_them() {
    for (name, value) in [
        ("OBSERVER_LISTEN", "not-an-address"),
        ("OBSERVER_MAX_REPLAY_BODY", "huge"),
        ("OBSERVER_LOKI_URL", "loki:3100"),
        ("OBSERVER_ALLOWED_ORIGINS", "app.example.com/path"),
        ("OBSERVER_LOG", "info,[bad"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_observer")).env(name, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}
