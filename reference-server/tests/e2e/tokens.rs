//! Bootstrap tokens over HTTP: every token failure shares one 401, and a plan limit leaves the
//! token unused.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Admin, Server, generate_key, wait_for};

/// Maximum wait for `vault set-plan` to reach a running server, which promises 5 seconds.
const PLAN_CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("an RFC 3339 string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// Returns the listed state of one token.
fn token_state(admin: &Admin, token_id: &str) -> String {
    let listed = admin
        .vault(Method::GET, "/temp-tokens", None)
        .expect(200, "list tokens");
    let items = listed["items"].as_array().expect("items");
    for item in items {
        assert!(
            item.as_object().expect("an object").keys().all(|key| {
                ["tokenId", "name", "state", "tokenExpiresAt", "createdAt"].contains(&key.as_str())
            }),
            "a listed token carries only its public fields: {item}"
        );
    }
    items
        .iter()
        .find(|item| item["tokenId"] == token_id)
        .unwrap_or_else(|| panic!("token {token_id} not listed in {listed}"))["state"]
        .as_str()
        .expect("state")
        .to_owned()
}

fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).expect("random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn token_failures_share_one_answer() {
    // Token failures count as failed authentications; the limit is raised so that this test's
    // failures from one address do not lock it out.
    let server = Server::start(&["--test-clock", "--lockout-failures", "100"]);
    let admin = server.create_vault("tokens", "pro", None);
    let other = server.create_vault("tokens-other", "pro", None);
    let vault = admin.vault_id.as_str();

    let unknown = server.register(vault, &random_token(), &generate_key());
    assert_eq!(unknown.status, 401, "an unknown token: {}", unknown.text);
    assert!(!unknown.error_message().is_empty());
    let expect_same = |what: &str, reply: crate::support::Reply| {
        assert_eq!(reply.status, 401, "{what}: {}", reply.text);
        assert_eq!(
            reply.text, unknown.text,
            "{what} fails like an unknown token"
        );
    };

    // Issuance shows the default token lifetime of 7 days and the machine's preview expiry.
    let issued_at = Utc::now();
    let used = admin.issue("used", json!({"days": 1}), Value::Null);
    let token_expires = instant(&used.response["tokenExpiresAt"]);
    let preview = instant(&used.response["machineExpiresAtPreview"]);
    let near =
        |at: DateTime<Utc>, expected: DateTime<Utc>| (at - expected).num_seconds().abs() < 120;
    assert!(
        near(token_expires, issued_at + chrono::Duration::days(7)),
        "{token_expires}"
    );
    assert!(
        near(preview, issued_at + chrono::Duration::days(1)),
        "{preview}"
    );
    assert_eq!(token_state(&admin, &used.id), "unused");
    server.register_new_machine(vault, &used.plaintext);
    assert_eq!(token_state(&admin, &used.id), "used");
    expect_same(
        "a used token",
        server.register(vault, &used.plaintext, &generate_key()),
    );

    // The vault id is a second factor: the right token under another vault, existing or not,
    // fails like an unknown token and stays usable.
    let wrong_vault = admin.issue("wrong-vault", json!({"days": 1}), Value::Null);
    expect_same(
        "another vault's id",
        server.register(&other.vault_id, &wrong_vault.plaintext, &generate_key()),
    );
    expect_same(
        "a vault id that does not exist",
        server.register(
            "vault_doesnotexist0",
            &wrong_vault.plaintext,
            &generate_key(),
        ),
    );
    assert_eq!(token_state(&admin, &wrong_vault.id), "unused");
    server.register_new_machine(vault, &wrong_vault.plaintext);

    let revoked = admin.issue("revoked", json!({"days": 1}), Value::Null);
    let reply = admin.vault(
        Method::DELETE,
        &format!("/temp-tokens/{}", revoked.id),
        None,
    );
    assert!((200..300).contains(&reply.status), "revoke: {}", reply.text);
    assert_eq!(token_state(&admin, &revoked.id), "revoked");
    expect_same(
        "a revoked token",
        server.register(vault, &revoked.plaintext, &generate_key()),
    );
    let revokes = admin.audit("temp_machine_token_revoke");
    assert_eq!(revokes.len(), 1, "{revokes:?}");

    // A used token cannot be revoked; its machine is revoked instead.
    let reply = admin.vault(Method::DELETE, &format!("/temp-tokens/{}", used.id), None);
    assert!(
        (400..500).contains(&reply.status),
        "revoke a used token: {} {}",
        reply.status,
        reply.text
    );
    assert!(!reply.error_message().is_empty());

    let short = admin.issue_token(&json!({
        "name": "short",
        "lifetime": {"days": 1},
        "tokenLifetimeHours": 1,
    }));
    let short_expires = instant(&short.response["tokenExpiresAt"]);
    assert!(
        near(short_expires, Utc::now() + chrono::Duration::hours(1)),
        "{short_expires}"
    );
    admin.advance_clock(2 * 3600);
    assert_eq!(token_state(&admin, &short.id), "expired");
    expect_same(
        "an expired token",
        server.register(vault, &short.plaintext, &generate_key()),
    );

    // A malformed body or public key is a 400, not a token failure.
    let bad_key = server.send_json(
        Method::POST,
        &format!("/v1/{vault}/temp-bootstrap/register"),
        &json!({"token": random_token(), "publicKey": "not a key", "hostname": "h"}),
    );
    assert_eq!(bad_key.status, 400, "{}", bad_key.text);
    assert!(!bad_key.error_message().is_empty());
    let no_token = server.send_json(
        Method::POST,
        &format!("/v1/{vault}/temp-bootstrap/register"),
        &json!({"publicKey": "AAAA"}),
    );
    assert_eq!(no_token.status, 400, "{}", no_token.text);
}

#[test]
fn plan_limit_keeps_token_unused() {
    let server = Server::start(&["--lockout-failures", "100"]);
    let admin = server.create_vault("limited", "pro", Some(1));
    let vault = admin.vault_id.as_str();
    let first = admin.issue("first", json!({"days": 1}), Value::Null);
    let second = admin.issue("second", json!({"days": 1}), Value::Null);
    let third = admin.issue("third", json!({"days": 1}), Value::Null);
    server.register_new_machine(vault, &first.plaintext);

    let key = generate_key();
    let full = server.register(vault, &second.plaintext, &key);
    assert_eq!(full.status, 403, "a full vault: {}", full.text);
    let message = full.error_message();
    assert!(
        message.contains("limit"),
        "the message names the machine limit: {message}"
    );
    assert_eq!(token_state(&admin, &second.id), "unused");

    let raised = server.cli(&[
        "vault",
        "set-plan",
        vault,
        "--plan",
        "pro",
        "--machine-limit",
        "2",
    ]);
    assert!(
        raised.status.success(),
        "vault set-plan: {}",
        String::from_utf8_lossy(&raised.stderr)
    );
    let registered = wait_for("the raised limit to apply", PLAN_CHANGE_TIMEOUT, || {
        let reply = server.register(vault, &second.plaintext, &key);
        (reply.status != 403).then_some(reply)
    });
    assert_eq!(
        registered.status, 201,
        "after raising the limit: {}",
        registered.text
    );
    assert_eq!(token_state(&admin, &second.id), "used");

    // A vault moved to Free keeps its issued tokens unused, and they fail with a 403 naming
    // the plan.
    let free = server.cli(&["vault", "set-plan", vault, "--plan", "free"]);
    assert!(
        free.status.success(),
        "{}",
        String::from_utf8_lossy(&free.stderr)
    );
    let key = generate_key();
    let on_free = wait_for("the Free plan to apply", PLAN_CHANGE_TIMEOUT, || {
        let reply = server.register(vault, &third.plaintext, &key);
        (reply.status == 403).then_some(reply)
    });
    let message = on_free.error_message();
    assert!(
        message.to_lowercase().contains("free"),
        "the message names the plan: {message}"
    );
    assert_eq!(token_state(&admin, &third.id), "unused");
}

#[test]
fn free_plan_cannot_issue_tokens() {
    let server = Server::start(&[]);
    let admin = server.create_vault("free", "free", None);
    let reply = admin.vault(
        Method::POST,
        "/temp-tokens",
        Some(&json!({"name": "nope", "lifetime": {"days": 1}})),
    );
    assert_eq!(reply.status, 403, "{}", reply.text);
    let message = reply.error_message();
    assert!(
        message.to_lowercase().contains("free"),
        "the message names the plan: {message}"
    );
}
