//! The admin API and the bootstrap endpoints over the in-memory store: authentication, vault
//! ownership, 400 messages, plan refusals, token and machine lifecycles, and the test clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod api_support;

use actix_web::test::TestRequest;
use api_support::{Owner, machine, register_request, send, send_from, state, token_of};
use ed25519_dalek::SigningKey;
use guardrail_core::plan::Plan;
use reference_server::vault_admin;
use serde_json::{Value, json};

#[actix_web::test]
async fn owner_key_is_required_and_scoped() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let other = Owner::create(&state, Plan::Pro);

    let missing = send(
        &app,
        TestRequest::get().uri(&format!("/admin/v1/vaults/{}/machines", owner.vault)),
    )
    .await;
    assert_eq!(missing.status, 401);
    let owner_key_message = "missing or invalid owner key: send `Authorization: Bearer <owner key>` with the key `guardrail-server vault create` printed";
    assert_eq!(missing.body, json!({ "error": owner_key_message }));

    let wrong = send(
        &app,
        TestRequest::get()
            .uri(&format!("/admin/v1/vaults/{}/machines", owner.vault))
            .insert_header(("Authorization", "Bearer gro_not-a-key")),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, json!({ "error": owner_key_message }));

    // Another owner's vault gets the same 404 as one that does not exist.
    let foreign = Owner {
        vault: other.vault.clone(),
        key: owner.key.clone(),
    };
    let hidden = send(&app, foreign.request("GET", "/machines")).await;
    assert_eq!(hidden.status, 404);
    assert_eq!(
        hidden.body,
        json!({"error": format!("vault `{}` not found", other.vault)})
    );

    let own = send(&app, owner.request("GET", "/machines")).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body, json!({"items": []}));
    assert_eq!(own.test_clock, None);

    // A suspended owner's key is refused with the reason.
    vault_admin::set_owner_active(state.store.as_ref(), &owner.vault, false).unwrap();
    let suspended = send(&app, owner.request("GET", "/machines")).await;
    assert_eq!(suspended.status, 403);
    assert!(
        suspended.body["error"]
            .as_str()
            .unwrap()
            .contains("is suspended")
    );
}

#[actix_web::test]
async fn bad_requests_name_field_and_value() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);

    let cases = [
        (
            json!({"name": "a", "lifetime": {"days": 1}, "guardrails": {"ipAllowlist": ["10.1.2.3/8"]}}),
            ["guardrails.ipAllowlist", "10.1.2.3/8"],
        ),
        (
            json!({"name": "a", "lifetime": {"days": 1}, "guardrails": {"countries": ["UK"]}}),
            ["guardrails.countries", "UK"],
        ),
        (
            json!({"name": "a", "lifetime": {"days": 1}, "guardrails": {"timeWindow": {"start": "7:05", "end": "17:00", "timezone": "Europe/Copenhagen", "days": ["mon"]}}}),
            ["guardrails.timeWindow", "7:05"],
        ),
        (
            json!({"name": "a", "lifetime": {"months": 12, "hours": 1}}),
            ["lifetime", "12 months, 0 days, 1 hour"],
        ),
        (
            json!({"name": "a", "lifetime": {"days": 1}, "tokenLifetimeHours": 0}),
            ["tokenLifetimeHours", "`0`"],
        ),
        (
            json!({"name": "a", "lifetme": {"days": 1}}),
            ["lifetme", "unknown field"],
        ),
    ];
    for (body, expected) in cases {
        let reply = send(&app, owner.post_json("/temp-tokens", body.clone())).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        let message = reply.body["error"].as_str().unwrap();
        for part in expected {
            assert!(message.contains(part), "{body}: `{message}` lacks `{part}`");
        }
    }

    let limit = send(&app, owner.request("GET", "/audit?limit=abc")).await;
    assert_eq!(limit.status, 400);
    assert_eq!(
        limit.body["error"],
        "invalid `limit` value `abc`: expected 1 to 1000"
    );
    let since = send(&app, owner.request("GET", "/audit?since=yesterday")).await;
    assert_eq!(since.status, 400);
    assert!(
        since.body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid `since` value `yesterday`")
    );
    let action = send(&app, owner.request("GET", "/audit?action=coffee")).await;
    assert_eq!(action.status, 400);
    assert!(action.body["error"].as_str().unwrap().contains("`coffee`"));

    let webhook = send(
        &app,
        owner.post_json(
            "/webhooks",
            json!({"url": "ftp://example.com/hook", "secret": "s"}),
        ),
    )
    .await;
    assert_eq!(webhook.status, 400);
    assert!(
        webhook.body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid `url`")
    );

    let allowlist = send(
        &app,
        owner
            .request("PUT", "/ip-allowlist")
            .set_payload(json!({"cidrs": ["10.0.0.01"]}).to_string()),
    )
    .await;
    assert_eq!(allowlist.status, 400);
    let message = allowlist.body["error"].as_str().unwrap();
    assert!(
        message.contains("`cidrs`") && message.contains("10.0.0.01"),
        "{message}"
    );
}

#[actix_web::test]
async fn webhook_without_actions_gets_blocks() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let created = send(
        &app,
        owner.post_json(
            "/webhooks",
            json!({"url": "https://alerts.example.com/hook", "secret": "s3cret"}),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["actions"], json!(["temp_machine_blocked"]));
    assert!(!created.text.contains("s3cret"));
}

#[actix_web::test]
async fn free_plan_cannot_issue_tokens() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Free);
    let refused = send(
        &app,
        owner.post_json(
            "/temp-tokens",
            json!({"name": "a", "lifetime": {"days": 1}}),
        ),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body["error"],
        "the `free` plan does not allow temporary machines: move the vault to pro or enterprise"
    );
}

#[actix_web::test]
async fn token_lifecycle() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let issued = send(
        &app,
        owner.post_json(
            "/temp-tokens",
            json!({"name": "box", "lifetime": {"hours": 5}}),
        ),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    assert_eq!(
        api_support::keys(&issued.body),
        [
            "commands",
            "machineExpiresAtPreview",
            "tokenExpiresAt",
            "tokenId"
        ]
    );
    let token_id = issued.body["tokenId"].as_str().unwrap().to_owned();
    let token = token_of(&issued.body);
    assert!(
        issued.body["commands"]["windows"]
            .as_str()
            .unwrap()
            .contains(&token)
    );

    let listed = send(&app, owner.request("GET", "/temp-tokens")).await;
    assert_eq!(listed.body["items"][0]["state"], "unused");
    assert!(!listed.text.contains(&token), "a listing shows the token");

    let revoked = send(
        &app,
        owner.request("DELETE", &format!("/temp-tokens/{token_id}")),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["state"], "revoked");
    let again = send(
        &app,
        owner.request("DELETE", &format!("/temp-tokens/{token_id}")),
    )
    .await;
    assert_eq!(again.status, 409);

    // A revoked token neither serves a script nor registers.
    let script = send(
        &app,
        TestRequest::get().uri(&format!("/v1/{}/temp-bootstrap/{token}", owner.vault)),
    )
    .await;
    assert_eq!(script.status, 401);
    let key = SigningKey::from_bytes(&api_support::rand_seed());
    let registered = send(&app, register_request(&owner.vault, &token, &key)).await;
    assert_eq!(registered.status, 401);
    assert_eq!(registered.body, json!({"error": "authentication failed"}));
}

#[actix_web::test]
async fn registration_paths() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let other = Owner::create(&state, Plan::Pro);
    let issued = send(
        &app,
        owner.post_json(
            "/temp-tokens",
            json!({"name": "box", "lifetime": {"days": 1}}),
        ),
    )
    .await;
    let token = token_of(&issued.body);

    // Serving the scripts does not consume the token.
    let sh = send(
        &app,
        TestRequest::get().uri(&format!("/v1/{}/temp-bootstrap/{token}", owner.vault)),
    )
    .await;
    assert_eq!(sh.status, 200);
    assert!(sh.text.starts_with("#!/bin/sh"), "{}", &sh.text[..40]);
    assert!(sh.text.contains(&token));
    let ps = send(
        &app,
        TestRequest::get().uri(&format!("/v1/{}/temp-bootstrap/{token}/ps", owner.vault)),
    )
    .await;
    assert_eq!(ps.status, 200);
    assert_eq!(
        ps.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );

    let key = SigningKey::from_bytes(&api_support::rand_seed());
    let bad_key = send(
        &app,
        TestRequest::post()
            .uri(&format!("/v1/{}/temp-bootstrap/register", owner.vault))
            .set_payload(json!({"token": token, "publicKey": "AAAA"}).to_string()),
    )
    .await;
    assert_eq!(bad_key.status, 400);
    assert!(
        bad_key.body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid `publicKey`")
    );

    // The right token under another vault id gets the same 401 as an unknown token.
    let wrong_vault = send_from(
        &app,
        register_request(&other.vault, &token, &key),
        "198.51.100.20:1",
    )
    .await;
    assert_eq!(wrong_vault.status, 401);
    assert_eq!(wrong_vault.body, json!({"error": "authentication failed"}));

    // Moved to free: 403 with the reason, and the token stays unused.
    vault_admin::set_plan(state.store.as_ref(), &owner.vault, Plan::Free, None).unwrap();
    let refused = send(&app, register_request(&owner.vault, &token, &key)).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("`free` plan")
    );
    vault_admin::set_plan(state.store.as_ref(), &owner.vault, Plan::Pro, None).unwrap();

    let registered = send(&app, register_request(&owner.vault, &token, &key)).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(
        api_support::keys(&registered.body),
        ["apiUrl", "expiresAt", "machineId", "machineName", "vaultId"]
    );
    assert_eq!(registered.body["machineName"], "box");
    assert_eq!(registered.body["apiUrl"], "http://localhost:8080");
    let machine_id = registered.body["machineId"].as_str().unwrap().to_owned();

    let reused = send(&app, register_request(&owner.vault, &token, &key)).await;
    assert_eq!(reused.status, 401);

    let shown = send(
        &app,
        owner.request("GET", &format!("/machines/{machine_id}")),
    )
    .await;
    assert_eq!(shown.body["state"], "pending");
    assert_eq!(
        api_support::keys(&shown.body),
        [
            "createdAt",
            "expiresAt",
            "extensions",
            "guardrails",
            "kind",
            "machineId",
            "name",
            "state"
        ]
    );
    let approved = send(
        &app,
        owner.request("POST", &format!("/machines/{machine_id}/approve")),
    )
    .await;
    assert_eq!(approved.body["state"], "active");
    let twice = send(
        &app,
        owner.request("POST", &format!("/machines/{machine_id}/approve")),
    )
    .await;
    assert_eq!(twice.status, 409);
}

#[actix_web::test]
async fn token_guessing_is_locked_out() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let key = SigningKey::from_bytes(&api_support::rand_seed());
    let guess = "A".repeat(43);
    for _ in 0..3 {
        let reply = send(&app, register_request(&owner.vault, &guess, &key)).await;
        assert_eq!(reply.status, 401);
    }
    let locked = send(&app, register_request(&owner.vault, &guess, &key)).await;
    assert_eq!(locked.status, 429);
    assert!(locked.retry_after.is_some());
}

#[actix_web::test]
async fn extensions_and_guardrails() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let machine = machine(&app, &owner, Value::Null).await;
    let path = format!("/machines/{}", machine.id);
    let shown = send(&app, owner.request("GET", &path)).await;
    let expires: chrono::DateTime<chrono::Utc> =
        shown.body["expiresAt"].as_str().unwrap().parse().unwrap();

    let later = (expires + chrono::TimeDelta::days(3)).to_rfc3339();
    let extended = send(
        &app,
        owner.post_json(
            &format!("{path}/extensions"),
            json!({"newExpiresAt": later, "reason": "engagement extended"}),
        ),
    )
    .await;
    assert_eq!(extended.status, 200, "{}", extended.text);
    assert_eq!(
        extended.body["extensions"][0]["reason"],
        "engagement extended"
    );
    assert_eq!(extended.body["extensions"][0]["reverted"], false);

    let earlier = (expires - chrono::TimeDelta::hours(1)).to_rfc3339();
    let refused = send(
        &app,
        owner.post_json(
            &format!("{path}/extensions"),
            json!({"newExpiresAt": earlier}),
        ),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid `newExpiresAt`")
    );

    let reverted = send(
        &app,
        owner.request("POST", &format!("{path}/extensions/revert")),
    )
    .await;
    assert_eq!(reverted.status, 200, "{}", reverted.text);
    assert_eq!(reverted.body["extensions"][0]["reverted"], true);
    assert_eq!(reverted.body["expiresAt"], shown.body["expiresAt"]);
    let nothing = send(
        &app,
        owner.request("POST", &format!("{path}/extensions/revert")),
    )
    .await;
    assert_eq!(nothing.status, 409);

    let window = json!({"start": "09:00", "end": "17:00", "timezone": "Europe/Copenhagen", "days": ["mon", "tue"]});
    let updated = send(
        &app,
        owner
            .request("PUT", &format!("{path}/guardrails"))
            .set_payload(json!({"countries": ["dk"], "timeWindow": window}).to_string()),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(
        updated.body["guardrails"],
        json!({"ipAllowlist": null, "countries": ["DK"], "timeWindow": window})
    );

    let revoked = send(&app, owner.request("DELETE", &path)).await;
    assert_eq!(revoked.status, 204);
    let gone = send(&app, owner.request("GET", &path)).await;
    assert_eq!(gone.status, 404);
}

#[actix_web::test]
async fn test_clock_route_needs_the_flag() {
    let state = state(false);
    let app = api_support::app(state.clone(), false).await;
    let owner = Owner::create(&state, Plan::Pro);
    let absent = send(
        &app,
        TestRequest::post()
            .uri("/admin/v1/test-clock/advance")
            .insert_header(("Authorization", format!("Bearer {}", owner.key)))
            .set_payload(r#"{"seconds":60}"#),
    )
    .await;
    assert_eq!(absent.status, 404);
    assert_eq!(absent.test_clock, None);
}

#[actix_web::test]
async fn test_clock_moves_forward_only() {
    let state = state(true);
    let app = api_support::app(state.clone(), true).await;
    let owner = Owner::create(&state, Plan::Pro);
    let advance = |body: Value| {
        TestRequest::post()
            .uri("/admin/v1/test-clock/advance")
            .insert_header(("Authorization", format!("Bearer {}", owner.key)))
            .set_payload(body.to_string())
    };

    let unauthenticated = send(
        &app,
        TestRequest::post()
            .uri("/admin/v1/test-clock/advance")
            .set_payload(r#"{"seconds":60}"#),
    )
    .await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.test_clock.as_deref(), Some("enabled"));

    let moved = send(&app, advance(json!({"seconds": 86_400}))).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.test_clock.as_deref(), Some("enabled"));
    let now: chrono::DateTime<chrono::Utc> = moved.body["now"].as_str().unwrap().parse().unwrap();
    assert!(now > chrono::Utc::now() + chrono::TimeDelta::hours(23));

    let back = send(&app, advance(json!({"to": "2020-01-01T00:00:00Z"}))).await;
    assert_eq!(back.status, 400);
    assert!(
        back.body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid `to` value")
    );

    // Every admin response carries the test clock header.
    let listed = send(&app, owner.request("GET", "/machines")).await;
    assert_eq!(listed.test_clock.as_deref(), Some("enabled"));

    // A machine registered now expires by the moved clock.
    let machine = machine(&app, &owner, Value::Null).await;
    let moved = send(&app, advance(json!({"seconds": 3 * 86_400}))).await;
    assert_eq!(moved.status, 200);
    let expired = send(
        &app,
        api_support::signed(&machine, "GET", "/v1/secrets", ""),
    )
    .await;
    assert_eq!(expired.status, 401);
    let shown = send(
        &app,
        owner.request("GET", &format!("/machines/{}", machine.id)),
    )
    .await;
    assert_eq!(shown.body["state"], "expired");
}
