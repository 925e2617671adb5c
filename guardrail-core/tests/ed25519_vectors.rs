#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! External Ed25519 vectors against the server's verification path. See
//! `tests/data/ed25519/README.md` for their origin, licence and expected outcomes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use guardrail_core::request::{RequestSignature, verify_signature};
use serde_json::Value;

const WYCHEPROOF: &str = include_str!("data/ed25519/wycheproof_ed25519_test.json");
const SPECCHECK: &str = include_str!("data/ed25519/speccheck_cases.json");

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length in {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Parses a public key as registration does: 32 bytes, a canonical encoding of a curve point,
/// not of small order.
fn registered_key(bytes: &[u8]) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    let key = VerifyingKey::from_bytes(&bytes).ok()?;
    let canonical = key.to_edwards().compress().to_bytes() == bytes;
    (canonical && !key.is_weak()).then_some(key)
}

/// Runs the server's path: key check, base64 signature header, `verify_strict`.
fn server_accepts(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Some(key) = registered_key(public_key) else {
        return false;
    };
    let header = STANDARD.encode(signature);
    let Ok(signature) = RequestSignature::parse(header.as_bytes()) else {
        return false;
    };
    verify_signature(&key, message, &signature).is_ok()
}

#[test]
fn wycheproof_vectors_match() {
    let suite: Value = serde_json::from_str(WYCHEPROOF).unwrap();
    let mut checked = 0;
    for group in suite["testGroups"].as_array().unwrap() {
        let public_key = hex(group["publicKey"]["pk"].as_str().unwrap());
        for test in group["tests"].as_array().unwrap() {
            let id = test["tcId"].as_u64().unwrap();
            let expected = match test["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("test {id}: unexpected result `{other}`"),
            };
            let message = hex(test["msg"].as_str().unwrap());
            let signature = hex(test["sig"].as_str().unwrap());
            let accepted = server_accepts(&public_key, &message, &signature);
            assert_eq!(
                accepted, expected,
                "wycheproof test {id} ({}): accepted {accepted}, expected {expected}",
                test["comment"]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, suite["numberOfTests"].as_u64().unwrap());
}

#[test]
fn speccheck_cases_match_verify_strict() {
    // The "Dalek strict" row of speccheck_results.md: only case 3 verifies.
    const EXPECTED: [bool; 12] = [
        false, false, false, true, false, false, false, false, false, false, false, false,
    ];
    let cases: Vec<Value> = serde_json::from_str(SPECCHECK).unwrap();
    assert_eq!(cases.len(), EXPECTED.len());
    for (index, case) in cases.iter().enumerate() {
        let message = hex(case["message"].as_str().unwrap());
        let public_key = hex(case["pub_key"].as_str().unwrap());
        let signature = hex(case["signature"].as_str().unwrap());
        let accepted = server_accepts(&public_key, &message, &signature);
        assert_eq!(accepted, EXPECTED[index], "speccheck case {index}");

        // verify_strict alone, without the registration key check, decides the same way.
        let key = VerifyingKey::from_bytes(&public_key.clone().try_into().unwrap());
        let strict_alone = key.is_ok_and(|key| {
            let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
            key.verify_strict(&message, &signature).is_ok()
        });
        assert_eq!(
            strict_alone, EXPECTED[index],
            "speccheck case {index}, key unchecked"
        );
    }
}

#[test]
fn speccheck_results_row_is_the_expected_one() {
    // Guards the table above against a silently changed fixture.
    let table = include_str!("data/ed25519/speccheck_results.md");
    let row = table
        .lines()
        .find(|line| line.starts_with("|Dalek strict"))
        .unwrap();
    let cells: Vec<&str> = row
        .split('|')
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect();
    assert_eq!(cells[0], "Dalek strict");
    let accepted: Vec<bool> = cells[1..].iter().map(|cell| *cell == "V").collect();
    let mut expected = vec![false; 12];
    expected[3] = true;
    assert_eq!(accepted, expected);
}
