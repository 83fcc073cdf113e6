//! Safe defaults, as a user meets them: what `eye-api --help` shows of the environment, the
//! binary's refusal to serve the public development secret beyond loopback, and what
//! `compose.yaml` publishes.

use std::process::{Command, Output};

/// `eye-api ARGS` with `env`, from a directory holding no `.env`, without the caller's
/// settings leaking in.
fn eye_api(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eye-api"));
    command.args(args).current_dir(std::env::temp_dir());
    for (key, _) in std::env::vars() {
        if key.starts_with("EYE_") || key == "DATABASE_URL" || key == "AMQP_URL" {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("run eye-api")
}

/// Every value holds `SeCrEt`, which help text never does.
const SECRETS: &[(&str, &str)] = &[
    ("EYE_JWT_SECRET", "jwt-SeCrEt-0123456789abcdef0123456789"),
    ("EYE_JWT_KEYS", "k1:keys-SeCrEt-0123456789abcdef01234567"),
    ("DATABASE_URL", "postgres://eye:db-SeCrEt@db/eye"),
    ("AMQP_URL", "amqp://eye:amqp-SeCrEt@mq/%2f"),
];

#[test]
fn help_never_prints_secret_values_from_the_environment() {
    for args in [
        &["serve", "--help"][..],
        &["token", "--help"],
        &["tokens", "issue", "--help"],
        &["apps", "--help"],
        &["replay", "--help"],
    ] {
        let out = eye_api(args, SECRETS);
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(!help.contains("SeCrEt"), "{args:?} shows a secret:\n{help}");
    }
    // The variables are still named.
    let help = eye_api(&["serve", "--help"], SECRETS);
    let help = String::from_utf8_lossy(&help.stdout);
    for name in ["EYE_JWT_SECRET", "EYE_JWT_KEYS", "DATABASE_URL", "AMQP_URL"] {
        assert!(help.contains(name), "{name} named");
    }
}

#[test]
fn serve_refuses_the_development_secret_on_every_interface() {
    let out = eye_api(
        &["serve"],
        &[
            ("EYE_HTTP_ADDR", "0.0.0.0:0"),
            ("EYE_METRICS_ADDR", "127.0.0.1:0"),
        ],
    );
    assert!(!out.status.success(), "refused to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("EYE_JWT_SECRET") && stderr.contains("EYE_HTTP_ADDR"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_scope_stops_the_command_naming_it() {
    let out = eye_api(
        &["token", "--app", "shop", "--scopes", "events:write,root"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'root'"), "{stderr}");
}

#[test]
fn compose_publishes_on_loopback_only_and_has_no_default_secret() {
    let compose = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../compose.yaml"))
        .expect("compose.yaml");
    assert!(!compose.contains(eye_api::settings::DEV_JWT_SECRET));
    assert!(
        compose.contains("EYE_JWT_SECRET: ${EYE_JWT_SECRET:?"),
        "compose requires the secret from the environment"
    );
    let mut in_ports = false;
    let mut published = 0;
    for line in compose.lines() {
        let item = line.trim();
        if item == "ports:" {
            in_ports = true;
        } else if in_ports && item.starts_with("- ") {
            published += 1;
            assert!(
                item.starts_with("- \"127.0.0.1:"),
                "published beyond loopback: {item}"
            );
        } else {
            in_ports = false;
        }
    }
    assert!(published >= 2, "the api's port is published");
}
