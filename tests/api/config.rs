//! The binary refuses bad configuration with a message naming the variable.

use std::process::Command;

fn signoff(envs: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signoff"));
    cmd.env_clear().args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("signoff runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn serve_without_database_url_names_the_variable() {
    let (ok, out) = signoff(&[], &["serve"]);
    assert!(!ok);
    assert!(out.contains("DATABASE_URL"), "{out}");
}

#[test]
fn unknown_signoff_variable_stops_start_up() {
    let (ok, out) = signoff(
        &[("DATABASE_URL", "postgres://x/y"), ("SIGNOFF_BIN", "oops")],
        &["serve"],
    );
    assert!(!ok);
    assert!(out.contains("SIGNOFF_BIN"), "{out}");
}

#[test]
fn token_subcommand_mints_a_verifiable_token() {
    let env = [
        (
            "SIGNOFF_JWT_HS256_SECRET",
            "0123456789abcdef0123456789abcdef",
        ),
        ("SIGNOFF_JWT_ISSUER", "iss"),
        ("SIGNOFF_JWT_AUDIENCE", "aud"),
    ];
    let (ok, out) = signoff(
        &env,
        &["token", "--tenant", "acme", "--scope", "approvals:read"],
    );
    assert!(ok, "{out}");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["aud"]);
    v.set_issuer(&["iss"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        out.trim(),
        &jsonwebtoken::DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        &v,
    )
    .unwrap();
    assert_eq!(data.claims["tenant"], "acme");
    assert_eq!(data.claims["scope"], "approvals:read");

    let (ok, out) = signoff(
        &env,
        &[
            "token",
            "--tenant",
            "acme",
            "--scope",
            "approvals:everything",
        ],
    );
    assert!(!ok);
    assert!(out.contains("unknown scope"), "{out}");
}

#[test]
fn openapi_subcommand_prints_the_spec() {
    let (ok, out) = signoff(&[], &["openapi"]);
    assert!(ok);
    assert_eq!(out, signoff::api::openapi_json());
}
