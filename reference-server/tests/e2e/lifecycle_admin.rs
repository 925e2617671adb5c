//! Administrative switches of a running server: `vault suspend` and `vault resume`, and the
//! test clock flag.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Admin, Reply, Server, wait_for};

/// Maximum wait for `vault suspend` or `vault resume` to reach a running server, which promises
/// 5 seconds.
const OWNER_CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The header that marks every admin response of a server started with `--test-clock`.
const TEST_CLOCK_HEADER: &str = "x-guardrail-test-clock";

/// Runs `vault ACTION VAULT_ID` against the server's database and asserts that it succeeded.
fn run_vault_command(server: &Server, action: &str, vault_id: &str) {
    let output = server.cli(&["vault", action, vault_id]);
    assert!(
        output.status.success(),
        "vault {action}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn suspended_owner_fails_step_one() {
    // Every poll while the owner is suspended is a failed authentication from 127.0.0.1 (about
    // 25 in 5 seconds), so the limit is raised to its maximum of 100.
    let server = Server::start(&["--lockout-failures", "100"]);
    let admin = server.create_vault("suspended", "pro", None);
    let machine = admin.active_machine(&server, "worker", json!({"days": 1}), Value::Null);
    let project = admin.create_project("suspension");
    admin.add_member(&project, &machine.id);
    let secret = admin.create_secret(&project, "api-key", json!("kept"));
    admin.grant(&secret, &machine.id);
    let path = format!("/v1/secret/{secret}");
    let read = || server.signed(&machine, Method::GET, &path, b"");

    let before = read();
    assert_eq!(
        before.status, 200,
        "a read before the suspension: {}",
        before.text
    );

    run_vault_command(&server, "suspend", &admin.vault_id);
    let refused = wait_for("the suspension to apply", OWNER_CHANGE_TIMEOUT, || {
        let reply = read();
        (reply.status != 200).then_some(reply)
    });
    assert_eq!(
        refused.status, 401,
        "a read while suspended: {}",
        refused.text
    );
    assert_eq!(refused.error_message(), "authentication failed");
    let admin_refused = admin.vault(Method::GET, "/machines", None);
    assert_eq!(
        admin_refused.status, 403,
        "the admin API of a suspended owner: {}",
        admin_refused.text
    );

    run_vault_command(&server, "resume", &admin.vault_id);
    let resumed = wait_for("the resumption to apply", OWNER_CHANGE_TIMEOUT, || {
        let reply = read();
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(resumed.body, json!({"value": "kept"}));

    // The client saw only the generic 401, but the audit log names the reason of step 1.
    let failures = admin.audit("auth_failure");
    let reasons: Vec<&str> = failures
        .iter()
        .filter_map(|entry| entry["detail"]["reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(
            |reason| reason.starts_with("vault owner `") && reason.ends_with("` is not active")
        ),
        "an auth failure naming the inactive owner: {failures:?}"
    );
}

/// Sends the admin requests whose responses must carry the test clock header, or must not.
/// Covers success, a 400, a 401 and a 404.
fn admin_replies(admin: &Admin) -> Vec<(&'static str, Reply)> {
    let mut stranger = admin.clone();
    stranger.owner_key = "gro_not-a-real-key".to_owned();
    vec![
        (
            "list tokens",
            admin.vault(Method::GET, "/temp-tokens", None),
        ),
        (
            "issue a token",
            admin.vault(
                Method::POST,
                "/temp-tokens",
                Some(&json!({"name": "marked", "lifetime": {"days": 1}})),
            ),
        ),
        (
            "an invalid body",
            admin.vault(Method::POST, "/temp-tokens", Some(&json!({"name": 5}))),
        ),
        (
            "an unknown owner key",
            stranger.vault(Method::GET, "/temp-tokens", None),
        ),
        (
            "an unknown route",
            admin.request(Method::GET, "/no-such-route", None),
        ),
    ]
}

#[test]
fn test_clock_marks_admin_responses() {
    let server = Server::start(&["--test-clock"]);
    let admin = server.create_vault("clocked", "pro", None);
    let advanced = admin.request(
        Method::POST,
        "/test-clock/advance",
        Some(&json!({"seconds": 60})),
    );
    assert_eq!(advanced.status, 200, "advance the clock: {}", advanced.text);

    let mut replies = admin_replies(&admin);
    replies.push(("advance the clock", advanced));
    for (what, reply) in &replies {
        assert_eq!(
            reply
                .headers
                .get(TEST_CLOCK_HEADER)
                .map(|value| value.as_bytes()),
            Some(&b"enabled"[..]),
            "{what} ({}) carries {TEST_CLOCK_HEADER}",
            reply.status
        );
    }
    let statuses: Vec<u16> = replies.iter().map(|(_, reply)| reply.status).collect();
    assert_eq!(statuses, [200, 201, 400, 401, 404, 200], "{replies:?}");

    let health = server.send(
        Method::GET,
        "/healthz",
        reqwest::header::HeaderMap::new(),
        Vec::new(),
    );
    assert!(
        health.headers.get(TEST_CLOCK_HEADER).is_none(),
        "only admin responses carry the header"
    );
}

#[test]
fn test_clock_route_absent_without_flag() {
    let server = Server::start(&[]);
    let admin = server.create_vault("unclocked", "pro", None);
    let reply = admin.request(
        Method::POST,
        "/test-clock/advance",
        Some(&json!({"seconds": 60})),
    );
    assert_eq!(
        reply.status, 404,
        "advance without --test-clock: {}",
        reply.text
    );
    assert!(!reply.error_message().is_empty());

    for (what, reply) in admin_replies(&admin) {
        assert!(
            reply.headers.get(TEST_CLOCK_HEADER).is_none(),
            "{what} ({}) carries {TEST_CLOCK_HEADER} without --test-clock",
            reply.status
        );
    }
}
