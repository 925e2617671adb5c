//! The machine API over the in-memory store: exact response shapes, each status path, lockout
//! and coalescing of guardrail blocks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod api_support;

use api_support::{Owner, keys, machine, send, send_from, signed, signed_at, state};
use guardrail_core::plan::Plan;
use serde_json::{Value, json};

/// Creates a project and a structured secret granted to `machine`, and adds the machine to the
/// project. Returns the project and secret ids.
async fn grant_secret<S, B>(app: &S, owner: &Owner, machine_id: &str) -> (String, String)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let project = send(app, owner.post_json("/projects", json!({"name": "infra"}))).await;
    assert_eq!(project.status, 201, "{}", project.text);
    let project_id = project.body["projectId"].as_str().unwrap().to_owned();
    let secret = send(
        app,
        owner.post_json(
            "/secrets",
            json!({"projectId": project_id, "name": "db", "value": {"user": "u", "pass": "p4ss"}}),
        ),
    )
    .await;
    assert_eq!(secret.status, 201, "{}", secret.text);
    let secret_id = secret.body["secretId"].as_str().unwrap().to_owned();
    let granted = send(
        app,
        owner.post_json(
            &format!("/secrets/{secret_id}/grants"),
            json!({"machineId": machine_id}),
        ),
    )
    .await;
    assert_eq!(granted.status, 204, "{}", granted.text);
    let member = send(
        app,
        owner.request(
            "POST",
            &format!("/projects/{project_id}/machines/{machine_id}"),
        ),
    )
    .await;
    assert_eq!(member.status, 204, "{}", member.text);
    (project_id, secret_id)
}

fn audit_items(reply: &api_support::Reply, action: &str) -> Vec<Value> {
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["action"] == action)
        .cloned()
        .collect()
}

#[actix_web::test]
async fn responses_have_exact_keys() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let machine = machine(&app, &owner, Value::Null).await;
    let (project_id, secret_id) = grant_secret(&app, &owner, &machine.id).await;

    let read = send(
        &app,
        signed(&machine, "GET", &format!("/v1/secret/{secret_id}"), ""),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.content_type.as_deref(), Some("application/json"));
    assert_eq!(keys(&read.body), ["value"]);
    let value: Value = serde_json::from_str(read.body["value"].as_str().unwrap()).unwrap();
    assert_eq!(value, json!({"user": "u", "pass": "p4ss"}));

    let list = send(&app, signed(&machine, "GET", "/v1/secrets", "")).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(keys(&list.body), ["secrets"]);
    let entry = &list.body["secrets"][0];
    assert_eq!(keys(entry), ["fieldNames", "id", "name", "projectId"]);
    assert_eq!(entry["fieldNames"], json!("[\"pass\",\"user\"]"));
    assert_eq!(entry["projectId"], json!(project_id));

    let body = json!({"projectId": project_id}).to_string();
    let by_project = send(&app, signed(&machine, "POST", "/v1/secrets/list", &body)).await;
    assert_eq!(by_project.status, 200, "{}", by_project.text);
    assert_eq!(by_project.body, list.body);

    let export = send(&app, signed(&machine, "POST", "/v1/secrets/export", "")).await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert_eq!(
        keys(&export.body["secrets"][0]),
        ["fieldNames", "id", "name", "value"]
    );

    let projects = send(&app, signed(&machine, "GET", "/v1/cli/projects", "")).await;
    assert_eq!(projects.status, 200, "{}", projects.text);
    assert_eq!(
        keys(&projects.body["projects"][0]),
        [
            "applicationId",
            "applicationName",
            "projectId",
            "projectName"
        ]
    );
    let cli = send(&app, signed(&machine, "GET", "/v1/cli/secrets", "")).await;
    assert_eq!(cli.status, 200, "{}", cli.text);
    assert_eq!(
        keys(&cli.body["secrets"][0]),
        [
            "applicationId",
            "applicationName",
            "fieldNames",
            "id",
            "name",
            "projectId",
            "projectName",
            "type"
        ]
    );
    assert_eq!(cli.body["secrets"][0]["type"], "structured");
    assert_eq!(cli.body["secrets"][0]["applicationId"], Value::Null);
}

#[actix_web::test]
async fn empty_containers_are_present() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let machine = machine(&app, &owner, Value::Null).await;

    let list = send(&app, signed(&machine, "GET", "/v1/secrets", "")).await;
    assert_eq!(list.body, json!({"secrets": []}));
    let poll = send(
        &app,
        signed(&machine, "POST", "/v1/secrets/poll", r#"{"watch":[]}"#),
    )
    .await;
    assert_eq!(poll.body, json!({"changes": {}}));
    let projects = send(&app, signed(&machine, "GET", "/v1/cli/projects", "")).await;
    assert_eq!(projects.body, json!({"projects": []}));
}

#[actix_web::test]
async fn poll_reports_only_real_changes() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let machine = machine(&app, &owner, Value::Null).await;
    let (_, secret_id) = grant_secret(&app, &owner, &machine.id).await;
    let watch = json!({"watch": [secret_id, "sk_doesnotexist1"]}).to_string();

    // Never read: not reported; an id that names no secret is deleted.
    let poll = send(&app, signed(&machine, "POST", "/v1/secrets/poll", &watch)).await;
    assert_eq!(poll.status, 200, "{}", poll.text);
    assert_eq!(
        poll.body,
        json!({"changes": {"sk_doesnotexist1": {"status": "deleted"}}})
    );

    let read = send(
        &app,
        signed(&machine, "GET", &format!("/v1/secret/{secret_id}"), ""),
    )
    .await;
    assert_eq!(read.status, 200);
    let poll = send(&app, signed(&machine, "POST", "/v1/secrets/poll", &watch)).await;
    assert_eq!(poll.body["changes"].get(&secret_id), None);

    let updated = send(
        &app,
        owner
            .request("PUT", &format!("/secrets/{secret_id}"))
            .set_payload(json!({"value": {"user": "u", "pass": "new"}}).to_string()),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["version"], 2);
    let poll = send(&app, signed(&machine, "POST", "/v1/secrets/poll", &watch)).await;
    assert_eq!(
        poll.body["changes"][&secret_id],
        json!({"status": "changed"})
    );

    // Reading the new version clears the change.
    let read = send(
        &app,
        signed(&machine, "GET", &format!("/v1/secret/{secret_id}"), ""),
    )
    .await;
    let value: Value = serde_json::from_str(read.body["value"].as_str().unwrap()).unwrap();
    assert_eq!(value["pass"], "new");
    let poll = send(&app, signed(&machine, "POST", "/v1/secrets/poll", &watch)).await;
    assert_eq!(poll.body["changes"].get(&secret_id), None);
}

#[actix_web::test]
async fn failures_answer_their_status() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let machine = machine(&app, &owner, Value::Null).await;
    let (_, secret_id) = grant_secret(&app, &owner, &machine.id).await;
    let other_peer = |n: u8| format!("198.51.100.{n}:5000");

    // Unsigned: step 3 (no machine id), generic 401.
    let unsigned = send_from(
        &app,
        actix_web::test::TestRequest::get().uri("/v1/secrets"),
        &other_peer(1),
    )
    .await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.body, json!({"error": "authentication failed"}));

    // A wrong signature fails step 8 with the same body.
    let mut forged = signed(&machine, "GET", "/v1/secrets", "");
    forged = forged.insert_header(("X-Signature", "A".repeat(86) + "=="));
    let forged = send_from(&app, forged, &other_peer(2)).await;
    assert_eq!(forged.status, 401);
    assert_eq!(forged.body, json!({"error": "authentication failed"}));

    // A stale timestamp fails step 8.
    let stale = signed_at(
        &machine,
        "GET",
        "/v1/secrets",
        "",
        chrono::Utc::now().timestamp() - 3600,
        &api_support::fresh_nonce(),
    );
    assert_eq!(send_from(&app, stale, &other_peer(3)).await.status, 401);

    // A replayed nonce fails step 8 the second time.
    let nonce = api_support::fresh_nonce();
    let now = chrono::Utc::now().timestamp();
    let first = signed_at(&machine, "GET", "/v1/secrets", "", now, &nonce);
    assert_eq!(send_from(&app, first, &other_peer(4)).await.status, 200);
    let again = signed_at(&machine, "GET", "/v1/secrets", "", now, &nonce);
    assert_eq!(send_from(&app, again, &other_peer(4)).await.status, 401);

    // Step 9: an unknown secret is 404, a secret without grant 403, a project the machine is
    // not in 403, and a malformed body 400 after authentication.
    let missing = send(
        &app,
        signed(&machine, "GET", "/v1/secret/sk_doesnotexist1", ""),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, json!({"error": "not found"}));
    let project = send(&app, owner.post_json("/projects", json!({"name": "other"}))).await;
    let other_project = project.body["projectId"].as_str().unwrap().to_owned();
    let ungranted = send(
        &app,
        owner.post_json(
            "/secrets",
            json!({"projectId": other_project, "name": "api", "value": "plain"}),
        ),
    )
    .await;
    let ungranted_id = ungranted.body["secretId"].as_str().unwrap();
    let denied = send(
        &app,
        signed(&machine, "GET", &format!("/v1/secret/{ungranted_id}"), ""),
    )
    .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body, json!({"error": "access denied"}));
    let body = json!({"projectId": other_project}).to_string();
    let not_member = send(&app, signed(&machine, "POST", "/v1/secrets/list", &body)).await;
    assert_eq!(not_member.status, 403);
    let malformed = send(&app, signed(&machine, "POST", "/v1/secrets/list", "{")).await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body")
    );

    // A disabled machine fails step 3 with the generic 401.
    let disabled = send(
        &app,
        owner.request("POST", &format!("/machines/{}/disable", machine.id)),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    let refused = send_from(
        &app,
        signed(&machine, "GET", &format!("/v1/secret/{secret_id}"), ""),
        &other_peer(5),
    )
    .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, json!({"error": "authentication failed"}));

    // The audit log keeps the precise reasons.
    let audit = send(&app, owner.request("GET", "/audit?action=auth_failure")).await;
    let reasons: Vec<String> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["detail"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|reason| reason.contains("is disabled")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|reason| reason == "invalid signature"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|reason| reason.starts_with("replayed nonce")),
        "{reasons:?}"
    );
    assert_eq!(audit_items(&audit, "auth_failure").len(), reasons.len());
}

#[actix_web::test]
async fn third_failure_locks_source_out() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let machine = machine(&app, &owner, Value::Null).await;
    let attacker = "192.0.2.50:1234";

    for _ in 0..3 {
        let mut forged = signed(&machine, "GET", "/v1/secrets", "");
        forged = forged.insert_header(("X-Signature", "B".repeat(86) + "=="));
        assert_eq!(send_from(&app, forged, attacker).await.status, 401);
    }
    // Locked: even a correctly signed request from that source gets 429, not evaluated.
    let locked = send_from(&app, signed(&machine, "GET", "/v1/secrets", ""), attacker).await;
    assert_eq!(locked.status, 429);
    let retry: u64 = locked.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((899..=900).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        locked.body["error"],
        format!("too many failed attempts, retry in {retry} seconds")
    );
    // Another source is unaffected.
    let fine = send(&app, signed(&machine, "GET", "/v1/secrets", "")).await;
    assert_eq!(fine.status, 200);
}

#[actix_web::test]
async fn repeated_blocks_coalesce_and_lock_only_the_pair() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    // The machine may connect from 10.0.0.0/8 only.
    let machine = machine(&app, &owner, json!({"ipAllowlist": ["10.0.0.0/8"]})).await;
    let outsider = "192.0.2.77:999";

    for _ in 0..3 {
        let blocked = send_from(&app, signed(&machine, "GET", "/v1/secrets", ""), outsider).await;
        assert_eq!(blocked.status, 403);
        assert_eq!(blocked.body, json!({"error": "access denied"}));
    }
    let locked = send_from(&app, signed(&machine, "GET", "/v1/secrets", ""), outsider).await;
    assert_eq!(locked.status, 429);
    assert!(locked.retry_after.is_some());

    let audit = send(
        &app,
        owner.request("GET", "/audit?action=temp_machine_blocked"),
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let blocks = audit_items(&audit, "temp_machine_blocked");
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!(blocks[0]["severity"], "high");
    assert_eq!(blocks[0]["detail"]["axis"], "ip");
    assert_eq!(blocks[0]["detail"]["count"], 3);
    assert_eq!(blocks[0]["sourceIp"], "192.0.2.77");

    // The lock is on the machine and that source: the machine from its own network works.
    let inside = send_from(
        &app,
        signed(&machine, "GET", "/v1/secrets", ""),
        "10.1.2.3:4000",
    )
    .await;
    assert_eq!(inside.status, 200, "{}", inside.text);
}
