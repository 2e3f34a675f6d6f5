//! `ca application new --channel state-corporation …` (the State Corporation counter: consent,
//! the package checked, a representative by power of attorney, a numbered receipt) and
//! `ca application receipt <number> [--pdf FILE]`. See [`ca_core::ra::state_corporation`].

use std::path::{Path, PathBuf};

use ca_core::identity::Iin;
use ca_core::ra::receipt::{Receipt, ReceiptKind, ReceiptNumber};
use ca_core::ra::state_corporation::{Consent, Document, Intake, PowerOfAttorney, Representative, Taken};
use ca_core::ra::{RegistrationAuthority, Submission, Submitted};
use clap::Args;
use sha2::Digest;

use super::counter::{time_arg, CounterTimes};
use crate::context::Context;
use crate::failure::Failure;
use crate::output::print_json;

/// What the State Corporation operator records at the counter.
#[derive(Args, Debug, Default)]
pub struct CounterPaperArgs {
    /// The applicant gave his written consent to the use of protected data from information
    /// systems, taken by this operator (required at a State Corporation counter).
    #[arg(long)]
    pub consent: bool,
    /// When the consent was signed (RFC 3339; default now).
    #[arg(long, requires = "consent")]
    pub consent_at: Option<String>,
    /// The scanned consent: only its SHA-256 is recorded.
    #[arg(long, requires = "consent")]
    pub consent_scan: Option<PathBuf>,
    /// A document handed in (repeatable): identity-document, application-form, card-or-sim,
    /// revocation-form, representative-identity, power-of-attorney.
    #[arg(long = "document")]
    pub documents: Vec<String>,
    /// A representative acting by power of attorney: his IIN (with the name and the power of
    /// attorney's number, date and issuer).
    #[arg(long, requires_all = ["representative_name", "poa_number", "poa_date", "poa_issuer"])]
    pub representative_iin: Option<String>,
    /// The representative's full name.
    #[arg(long, requires = "representative_iin")]
    pub representative_name: Option<String>,
    /// The power of attorney's number.
    #[arg(long, requires = "representative_iin")]
    pub poa_number: Option<String>,
    /// The power of attorney's date (YYYY-MM-DD).
    #[arg(long, requires = "representative_iin")]
    pub poa_date: Option<String>,
    /// Who issued (certified) the power of attorney: the notary, or the legal entity.
    #[arg(long, requires = "representative_iin")]
    pub poa_issuer: Option<String>,
}

impl CounterPaperArgs {
    /// Whether any of the State Corporation's paperwork was given.
    pub fn given(&self) -> bool {
        self.consent || !self.documents.is_empty() || self.representative_iin.is_some()
    }
}

fn representative(args: &CounterPaperArgs) -> Result<Option<Representative>, Failure> {
    let Some(iin) = &args.representative_iin else { return Ok(None) };
    let iin: Iin = iin.parse().map_err(|e: ca_core::identity::IdNumberError| Failure::Input(e.to_string()))?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = args.poa_date.as_deref().unwrap_or_default();
    let date = time::Date::parse(date, format)
        .map_err(|_| Failure::Input(format!("--poa-date {date:?} is not a date (YYYY-MM-DD)")))?;
    Ok(Some(Representative {
        iin,
        name: args.representative_name.clone().unwrap_or_default(),
        power_of_attorney: PowerOfAttorney {
            number: args.poa_number.clone().unwrap_or_default(),
            date,
            issuer: args.poa_issuer.clone().unwrap_or_default(),
        },
    }))
}

fn scan_sha256(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display())))?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

/// Register `s` at a State Corporation counter: print the application and its receipt of
/// acceptance, or the receipt of refusal (and fail as refused).
pub fn submit(
    ctx: &Context,
    ra: &RegistrationAuthority<'_>,
    s: &Submission,
    args: &CounterPaperArgs,
    times: &CounterTimes<'_>,
) -> Result<Submitted, Failure> {
    let now = ca_core::clock::Clock::now(&ctx.clock);
    let consent = match args.consent {
        true => Some(Consent {
            taken_by: ctx.actor.clone(),
            taken_at: args.consent_at.as_deref().map(|t| time_arg("--consent-at", t)).transpose()?.unwrap_or(now),
            scan_sha256: args.consent_scan.as_deref().map(scan_sha256).transpose()?,
        }),
        false => None,
    };
    let documents =
        args.documents.iter().map(|d| d.parse::<Document>()).collect::<Result<Vec<_>, _>>().map_err(Failure::Input)?;
    let intake = Intake {
        operator: ctx.actor.clone(),
        consent,
        representative: representative(args)?,
        documents,
        steps: super::counter::steps(ctx, times)?,
    };
    match ra.submit_at_state_corporation(s, &intake)? {
        Taken::Registered { registered, receipt } => {
            if let (Some(r), false) = (&receipt, ctx.json) {
                print!("{}", r.text());
                println!();
            }
            Ok(registered.submitted)
        }
        Taken::Incomplete(receipt) => {
            if ctx.json {
                print_json(&serde_json::json!({ "receipt": receipt }));
            } else {
                print!("{}", receipt.text());
            }
            Err(Failure::Refused(if ctx.json {
                String::new()
            } else {
                format!("the package is incomplete: receipt of refusal {}", receipt.number)
            }))
        }
    }
}

/// `ca application receipt <number> [--pdf FILE]`.
pub fn show_receipt(ctx: &Context, number: &str, pdf: Option<&Path>) -> Result<(), Failure> {
    let number: ReceiptNumber = number.parse().map_err(Failure::Input)?;
    let receipt: Receipt =
        ctx.store.receipt(&number)?.ok_or_else(|| Failure::NotFound(format!("no receipt {number}")))?;
    if let Some(path) = pdf {
        let bytes = crate::receipt_pdf::render(&receipt)?;
        std::fs::write(path, bytes).map_err(|e| Failure::Input(format!("cannot write {}: {e}", path.display())))?;
    }
    if ctx.json {
        print_json(&receipt);
    } else if pdf.is_none() {
        print!("{}", receipt.text());
    } else {
        let what = match receipt.details.kind {
            ReceiptKind::Acceptance => "acceptance",
            ReceiptKind::Refusal => "refusal",
        };
        println!(
            "receipt of {what} {number} written to {}",
            pdf.map(Path::display).map(|d| d.to_string()).unwrap_or_default()
        );
    }
    Ok(())
}
