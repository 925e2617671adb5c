//! Replay protection: a captured signed request is rejected when sent again, also after the
//! server restarts on the same SQLite database.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{Reply, Server, SignedRequest};

/// The replays must arrive inside the default 60-second freshness window, so that only the
/// nonce store can reject them.
const FRESH_FOR: Duration = Duration::from_secs(50);

#[track_caller]
fn assert_replay_rejected(server: &Server, request: &SignedRequest, what: &str) {
    let reply: Reply = server.send_signed(request, HeaderMap::new());
    assert!(
        request.signed_at.elapsed() < FRESH_FOR,
        "{what}: the replay came too late to test the nonce store"
    );
    assert_eq!(reply.status, 401, "{what}: {}", reply.text);
    assert!(!reply.error_message().is_empty());
}

#[test]
fn replayed_request_is_rejected() {
    // Four replays fail authentication from one address; the limit is raised above that.
    let mut server = Server::start(&["--lockout-failures", "10"]);
    let admin = server.create_vault("replay", "pro", None);
    let machine = admin.active_machine(&server, "replayed", json!({"days": 1}), Value::Null);

    let list = machine.sign(Method::GET, "/v1/secrets", b"");
    let export = machine.sign(Method::POST, "/v1/secrets/export", b"{}");
    let first = server.send_signed(&list, HeaderMap::new());
    assert_eq!(first.status, 200, "{}", first.text);
    let first = server.send_signed(&export, HeaderMap::new());
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body, json!({"secrets": []}));

    assert_replay_rejected(&server, &list, "a replayed GET");
    assert_replay_rejected(&server, &export, "a replayed POST");

    server.restart();
    let fresh = server.signed(&machine, Method::GET, "/v1/secrets", b"");
    assert_eq!(
        fresh.status, 200,
        "a fresh request after the restart: {}",
        fresh.text
    );
    assert_replay_rejected(&server, &list, "a GET replayed after a restart");
    assert_replay_rejected(&server, &export, "a POST replayed after a restart");
}
