//! `ca revoke`: a status change and an audit entry; the CRL picks it up when published.

use ca_core::profile::ProfileId;
use ca_core::revocation::{revoke, RevocationReason, RevokeError};
use ca_core::store::RevokeOutcome;
use clap::Args;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::commands::show::parse_serial;
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::Outcome;

#[derive(Args, Debug, Clone)]
pub struct RevokeArgs {
    /// Serial number in hex.
    pub serial: String,
    /// Why (RFC 5280), required: keyCompromise, cACompromise, affiliationChanged, superseded,
    /// cessationOfOperation, certificateHold (a hold, lifted by `ca release`),
    /// privilegeWithdrawn, aACompromise, or unspecified when no reason applies.
    #[arg(long, value_name = "REASON")]
    pub reason: String,
    /// When the key is known or suspected to have been compromised (RFC 3339).
    #[arg(long)]
    pub invalidity_date: Option<String>,
}

pub fn run(ctx: &Context, args: &RevokeArgs) -> Outcome {
    let serial = parse_serial(&args.serial)?;
    let reason: RevocationReason =
        args.reason.parse().map_err(|e: ca_core::revocation::UnknownReason| Failure::Input(e.to_string()))?;
    let invalidity = args
        .invalidity_date
        .as_deref()
        .map(|d| OffsetDateTime::parse(d, &Rfc3339))
        .transpose()
        .map_err(|e| Failure::Input(format!("invalid --invalidity-date (RFC 3339 expected): {e}")))?;
    let outcome =
        revoke(ctx.store.as_ref(), &ctx.clock, &serial, reason, invalidity, &ctx.actor).map_err(|e| match e {
            RevokeError::Store(s) => Failure::from(s),
            other => Failure::Input(other.to_string()),
        })?;
    match outcome {
        RevokeOutcome::Revoked(record) => {
            let rev = record.revocation.as_ref().expect("a revoked record carries its revocation");
            let meaning = what_it_means(&record.profile);
            if ctx.json {
                print_json(&serde_json::json!({
                    "revoked": true, "already": false, "certificate": record, "meaning": meaning,
                }));
            } else {
                println!("Revoked {} ({}) at {}", record.serial, rev.reason, when(rev.revoked_at));
                println!("  subject {}", record.subject_dn);
                println!("  {meaning}");
            }
            Ok(())
        }
        RevokeOutcome::AlreadyRevoked(record) => {
            let rev = record.revocation.as_ref().expect("a revoked record carries its revocation");
            let published = match record.first_crl_number {
                Some(n) => format!("first listed in CRL number {n}"),
                None => "not yet in a published CRL".to_owned(),
            };
            let message = format!(
                "certificate {} was already revoked at {} ({}, {published}); nothing changed",
                record.serial,
                when(rev.revoked_at),
                rev.reason
            );
            if ctx.json {
                print_json(&serde_json::json!({ "revoked": true, "already": true, "certificate": record }));
                return Err(Failure::Already(String::new()));
            }
            Err(Failure::Already(message))
        }
    }
}

/// What a revocation of a certificate of `profile` does, in plain words.
fn what_it_means(profile: &str) -> &'static str {
    match profile.parse::<ProfileId>() {
        Ok(ProfileId::IssuingCa) => {
            "This is a CA certificate. Its CA now signs nothing more (every issuing command refuses), \
             OCSP answers revoked for every certificate that CA issued, and relying parties reject the CA \
             and everything under it once the root's CRL lists it: publish that now with the root key, \
             `ca crl publish --root`."
        }
        Ok(ProfileId::CrossCa) => {
            "This is a cross certificate: relying parties who trust only the previous root no longer reach \
             the new root's hierarchy through it once the previous root's CRL lists it: publish that now, \
             `ca crl publish --root`."
        }
        Ok(ProfileId::RootCa) => {
            "This is the root certificate, a trust anchor: no CRL or OCSP answer can withdraw it from \
             relying parties, who must remove it from their trust stores. Nothing is signed under it any \
             more (every issuing command refuses); `ca crl publish --root` records it in the root's CRL."
        }
        _ => "OCSP answers revoked now; the next `ca crl publish` lists it (delta and full CRL)",
    }
}

#[derive(Args, Debug, Clone)]
pub struct ReleaseArgs {
    /// Serial number in hex of a certificate on hold (certificateHold).
    pub serial: String,
}

/// `ca release`: lift a certificateHold; the next delta CRL lists the certificate with
/// removeFromCRL and the next full CRL no longer lists it.
pub fn release(ctx: &Context, args: &ReleaseArgs) -> Outcome {
    use ca_core::store::{AuditEvent, ReleaseOutcome};
    let serial = parse_serial(&args.serial)?;
    let event = AuditEvent::new(&ctx.actor, "certificate.release-hold").target(serial.to_hex());
    match ctx.store.release_hold(&serial, &event)? {
        ReleaseOutcome::Released(record) => {
            if ctx.json {
                print_json(&serde_json::json!({ "released": true, "certificate": record }));
            } else {
                println!("Released the hold on {}: valid again", record.serial);
            }
            Ok(())
        }
        ReleaseOutcome::NotOnHold(record) => Err(Failure::Already(format!(
            "certificate {} is not on hold ({}); nothing changed",
            record.serial,
            record.revocation.as_ref().map_or("valid".to_owned(), |r| format!("revoked: {}", r.reason))
        ))),
    }
}
