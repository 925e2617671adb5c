//! The conformance suite: one set of checks that every backend must pass.
//!
//! Each check is a function taking a fresh, empty store. `conformance_tests!` instantiates all
//! of them as `#[test]`s for one backend, given an expression that opens a fresh store (or
//! returns `None` to skip, as the PostgreSQL tests do without a database URL).

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

pub mod checks;
pub mod fixtures;

/// Instantiates every conformance check as a test. `$open` evaluates to
/// `Option<impl std::ops::Deref<Target = dyn guardrail_store::Store>>`.
#[macro_export]
macro_rules! conformance_tests {
    ($open:expr) => {
        $crate::conformance_tests!(@each $open;
            vault_and_owner_round_trip,
            vault_errors_name_the_record,
            token_insert_list_revoke,
            registration_uses_token_once,
            registration_failure_keeps_token_unused,
            unknown_token_is_rejected_like_used,
            machine_transitions_are_audited,
            guardrails_update_round_trips,
            extend_and_revert_persist_chain,
            revoke_deletes_dependents,
            sweep_marks_once_then_purges,
            sweep_follows_expiry_changes,
            projects_secrets_and_grants,
            secret_reads_keep_newest_version,
            secret_reads_repeat_same_version,
            audited_secret_read_writes_both,
            audit_query_filters_newest_first,
            blocked_events_coalesce,
            nonce_insert_if_absent,
            lockout_counter_updates,
            webhook_subscriptions,
            lease_has_one_holder,
            concurrent_redemption_has_one_winner,
            concurrent_registration_respects_limit,
            concurrent_secret_updates_have_one_winner,
        );
    };
    (@each $open:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                let Some(store) = $open else { return };
                conformance::checks::$name(&*store);
            }
        )+
    };
}
