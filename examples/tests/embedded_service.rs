#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

//! Runs the `embedded_service` binary in `--demo` mode and checks what it prints.

use std::process::Command;

fn run_demo() -> (std::process::ExitStatus, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_embedded_service"))
        .arg("--demo")
        .output()
        .expect("the embedded_service binary runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    (output.status, stdout, stderr)
}

fn line_starting<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with `{prefix}` in:\n{stdout}"))
}

#[test]
fn demo_shows_each_status() {
    let (status, stdout, stderr) = run_demo();
    assert!(status.success(), "exit {status}\n{stdout}\n{stderr}");

    let expected = [
        ("demo: allowed read: ", "200 OK, a value of 25 bytes"),
        (
            "demo: ip allowlist block: ",
            r#"403 Forbidden, {"error":"access denied"}"#,
        ),
        (
            "demo: ip allowlist block again: ",
            r#"403 Forbidden, {"error":"access denied"}"#,
        ),
        (
            "demo: replayed request: ",
            r#"401 Unauthorized, {"error":"authentication failed"}"#,
        ),
        (
            "demo: bad signature: ",
            r#"401 Unauthorized, {"error":"authentication failed"}"#,
        ),
        (
            "demo: unknown machine: ",
            r#"401 Unauthorized, {"error":"authentication failed"}"#,
        ),
        (
            "demo: locked out: ",
            r#"429 Too Many Requests (Retry-After: 900), {"error":"too many failed attempts, retry later"}"#,
        ),
    ];
    for (prefix, rest) in expected {
        let line = line_starting(&stdout, prefix);
        assert_eq!(&line[prefix.len()..], rest, "{prefix}");
    }
    assert!(stdout.contains("demo finished: every response had the expected status"));
}

#[test]
fn demo_prints_listening_address() {
    let (_, stdout, _) = run_demo();
    let line = line_starting(&stdout, "listening on http://127.0.0.1:");
    let port: u16 = line["listening on http://127.0.0.1:".len()..]
        .parse()
        .unwrap();
    assert_ne!(port, 0);
}

#[test]
fn demo_audits_each_denial() {
    let (_, stdout, _) = run_demo();
    let audit: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("audit #"))
        .collect();

    let blocked: Vec<&&str> = audit
        .iter()
        .filter(|line| line.contains(" temp_machine_blocked [high] "))
        .collect();
    // The second, identical block updates the first block's entry instead of adding one.
    assert_eq!(blocked.len(), 2, "{audit:#?}");
    let number = |line: &str| line.split(' ').next().unwrap().to_owned();
    assert_eq!(number(blocked[0]), number(blocked[1]));
    // Compare the detail as JSON: its key order depends on serde_json's features, which other
    // workspace members can switch on.
    let detail = |line: &str| -> serde_json::Value {
        let json = line.split_once(" detail=").unwrap().1;
        serde_json::from_str(json).unwrap()
    };
    assert_eq!(detail(blocked[0])["axis"], "ip", "{}", blocked[0]);
    assert_eq!(detail(blocked[0])["count"], 1, "{}", blocked[0]);
    assert_eq!(detail(blocked[1])["axis"], "ip", "{}", blocked[1]);
    assert_eq!(detail(blocked[1])["count"], 2, "{}", blocked[1]);
    assert!(blocked[1].contains("source=127.0.0.1"), "{}", blocked[1]);

    let failures: Vec<&&str> = audit
        .iter()
        .filter(|line| line.contains(" auth_failure [medium] "))
        .collect();
    // The unknown machine has no vault to file an entry under, so two of the three 401s
    // are audited: the replay and the bad signature.
    assert_eq!(failures.len(), 2, "{audit:#?}");
    assert!(
        failures[0].contains(r#""reason":"replayed nonce `"#),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].contains(r#""reason":"invalid signature""#),
        "{}",
        failures[1]
    );

    for action in [
        "temp_machine_token_create",
        "temp_machine_create",
        "machine_approve",
    ] {
        let count = audit
            .iter()
            .filter(|line| line.contains(&format!(" {action} ")))
            .count();
        assert_eq!(count, 2, "{action}");
    }
}

#[test]
fn demo_never_prints_secret_value() {
    let (_, stdout, stderr) = run_demo();
    for output in [&stdout, &stderr] {
        assert!(!output.contains("example-database-password"));
        assert!(!output.contains("\"value\""));
    }
}

#[test]
fn invalid_argument_is_rejected() {
    let output = Command::new(env!("CARGO_BIN_EXE_embedded_service"))
        .arg("not-a-port")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "error: invalid port `not-a-port`: expected 0 to 65535\nusage: embedded_service [PORT] [--demo]\n"
    );
}
