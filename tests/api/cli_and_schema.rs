//! The command line and the checked-in schema.

use std::process::Command;

use crate::helpers::{spawn, SEED};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
}

#[test]
fn the_checked_in_schema_is_the_sdl_the_server_prints() {
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql");
    let printed = kyc_gateway::graphql::sdl();
    assert!(checked_in == printed, "schema.graphql is stale: run `cargo run -q -- sdl > schema.graphql`");
    let output = bin().arg("sdl").output().expect("the binary runs");
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).expect("utf-8"), printed);
}

#[test]
fn the_sdl_marks_static_scope_requirements() {
    let sdl = kyc_gateway::graphql::sdl();
    assert!(sdl.contains(r#"verificationStats: VerificationStats @requiresScopes(scopes: [["client.stats:read"]])"#));
    assert!(sdl.contains(r#"emails: [Email!] @requiresScopes(scopes: [["contact:read"]])"#));
    assert!(sdl.contains(r#"id: ID @requiresScopes(scopes: [["uid:read"]])"#));
}

#[tokio::test]
async fn the_token_command_mints_tokens_the_sandbox_server_accepts() {
    let app = spawn().await;
    let user = bin().args(["token", "--sub", SEED, "--scope", "uid:read contact:read"]).output().expect("runs");
    assert!(user.status.success());
    let token = String::from_utf8(user.stdout).expect("utf-8").trim().to_owned();
    let answer = app.query(&token, "{ me { id } }").await.ok();
    assert_eq!(answer.data("me.id"), SEED);

    let client =
        bin().args(["token", "--client", "mesh", "--scope", "client.users:read uid:read"]).output().expect("runs");
    let token = String::from_utf8(client.stdout).expect("utf-8").trim().to_owned();
    let answer = app.query(&token, &format!(r#"{{ user(id: "{SEED}") {{ id }} me {{ id }} }}"#)).await;
    assert_eq!(answer.data("user.id"), SEED);
    assert_eq!(answer.codes(), ["NOT_A_USER_TOKEN"], "a client token speaks for no user");
}

#[test]
fn the_token_command_needs_a_subject() {
    let output = bin().args(["token", "--scope", "uid:read"]).output().expect("runs");
    assert!(!output.status.success());
}
