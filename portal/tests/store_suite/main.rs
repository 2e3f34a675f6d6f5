//! One behavioural suite for the portal's stores, run against SQLite and PostgreSQL: each case
//! is a generic function over [`backends::Backend`], instantiated once per backend by `suite!`.
//! PostgreSQL runs in one throwaway cluster per test binary (`fixtures::postgres`), a database
//! per test made from a migrated template.

mod accounts;
mod backends;
mod common;
mod documents;
mod lockout;
mod nonces;
mod otp;
mod outbox;
mod phone;
mod sessions;

macro_rules! suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { crate::$module::$case(&crate::backends::Sqlite::new()); } )*
        }
        mod postgres {
            $( #[test] fn $case() { crate::$module::$case(&crate::backends::Postgres::new()); } )*
        }
    };
}

suite! {
    accounts::accounts_are_unique_per_login_and_the_counter_resets_or_creates,
    accounts::a_blocked_account_is_not_unblocked_by_the_counter,
    accounts::the_challenge_key_is_made_once_and_kept,
    accounts::the_schema_is_at_the_latest_version,
    lockout::the_gate_counts_before_checking_locks_at_the_limit_and_lifts_after_the_time,
    lockout::fifty_concurrent_attempts_from_separate_connections_let_exactly_ten_through,
    lockout::the_journal_keeps_every_failure_in_order_and_is_append_only,
    otp::a_code_is_single_use_and_a_new_one_replaces_the_old,
    otp::wrong_codes_use_up_the_attempts_and_an_expired_code_is_refused,
    otp::concurrent_checks_of_the_right_code_accept_it_once,
    sessions::sessions_expire_idle_out_and_end_with_a_recovery_that_queues_mail,
    sessions::a_challenge_opens_one_session_even_under_concurrent_use,
    sessions::the_cabinet_journal_is_newest_first_with_ended_logins,
    nonces::a_challenge_is_consumed_once_and_expires,
    nonces::a_request_id_is_used_once_and_forgotten_after_it_expires,
    nonces::concurrent_consumers_of_one_challenge_see_one_success,
    phone::one_number_per_account_and_one_account_per_number_with_history,
    phone::codes_are_throttled_per_login_and_number,
    phone::the_counter_binds_for_a_person_without_an_account,
    phone::the_phone_journal_is_append_only,
    outbox::a_claimed_sms_waits_for_its_lease_and_is_sent_once,
    outbox::concurrent_senders_never_claim_the_same_sms,
    outbox::mail_is_leased_retried_and_its_body_erased_once_sent,
    outbox::concurrent_mailers_never_claim_the_same_message,
    documents::versions_supersede_numbers_are_unique_and_documents_are_never_deleted,
    documents::a_short_code_is_unique_among_live_grants_only,
    documents::wrong_codes_are_limited_and_lock_live_codes,
    documents::views_withdrawals_and_releases_are_journaled_for_the_cabinets,
}
