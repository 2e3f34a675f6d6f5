//! One behavioural suite for the stores, run against SQLite and PostgreSQL: each case is a
//! generic function over [`backends::Backend`], instantiated once per backend by `suite!`.
//! PostgreSQL runs in one throwaway cluster per test binary (`fixtures::postgres`), a database
//! per test.

mod audit;
mod backends;
mod certificates;
mod common;
mod crls;
mod nonces;
mod ra;
mod ra_keys;
mod receipts;

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
    certificates::reserve_record_revoke_happy_path,
    certificates::duplicate_serial_is_rejected_and_nothing_written,
    certificates::recording_needs_a_reservation,
    certificates::revoke_unknown_reserved_and_already_revoked,
    certificates::find_filters_and_orders_newest_first,
    certificates::states_answer_a_whole_path_in_its_order,
    certificates::corrupt_certificate_row_is_reported_not_panicked,
    certificates::concurrent_issuers_keep_one_chain,
    audit::audit_chain_verifies_after_many_operations,
    audit::appended_entry_matches_what_is_stored,
    audit::entries_are_listed_by_time_range_and_actor,
    audit::append_only_refuses_update_and_delete,
    audit::edited_audit_row_is_detected_at_its_seq,
    audit::deleted_audit_row_is_detected,
    audit::unreadable_audit_row_is_a_problem_not_an_error,
    audit::concurrent_appends_from_several_connections_form_one_chain,
    crls::crl_numbers_only_increase_per_issuer,
    crls::full_snapshot_delta_changes_and_first_crl_number,
    crls::a_hold_can_become_final_and_keeps_its_date,
    crls::partitions_are_listed_separately,
    crls::a_large_snapshot_streams_every_entry,
    nonces::a_nonce_is_consumed_once_and_expires,
    nonces::a_request_id_is_used_once_and_forgotten_after_it_expires,
    nonces::concurrent_consumers_of_one_nonce_see_one_success,
    ra::a_second_submission_returns_the_open_application,
    ra::one_claim_wins_among_concurrent_workers,
    ra::a_transition_queues_its_notice_and_the_outbox_delivers_once,
    ra::registry_import_adds_updates_and_counts,
    ra_keys::a_key_is_in_use_by_an_open_application_or_a_live_certificate,
    ra_keys::certificates_recorded_without_a_key_digest_get_one_on_open,
    ra_keys::tokens_are_single_use_and_expire,
    ra_keys::a_claimed_message_is_leased_to_one_worker,
    ra_keys::steps_are_timed_by_the_configured_regulation,
    receipts::receipts_are_numbered_per_year_without_gaps_under_concurrent_counters,
    receipts::an_acceptance_is_stored_with_its_application_channel_and_paperwork,
}
