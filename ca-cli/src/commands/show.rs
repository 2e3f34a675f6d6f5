//! `ca show` and `ca list`.

use ca_core::identity::{Bin, CertificateIdentity, Iin};
use ca_core::serial::SerialNumber;
use ca_core::store::{CertificateQuery, CertificateRecord, CertificateStatus};
use clap::Args;
use der::Decode;
use serde::Serialize;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::Outcome;

#[derive(Args, Debug, Clone)]
pub struct ShowArgs {
    /// Serial number in hex.
    pub serial: String,
    /// Also print the certificate in PEM.
    #[arg(long)]
    pub pem: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// Only certificates of this person (IIN).
    #[arg(long)]
    pub iin: Option<String>,
    /// Only certificates for this organisation (BIN).
    #[arg(long)]
    pub bin: Option<String>,
    /// reserved, issued or revoked.
    #[arg(long)]
    pub status: Option<String>,
    /// Only certificates of this CA (by its name in ca.toml).
    #[arg(long)]
    pub issuer: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Serialize)]
struct ShowReport<'a> {
    #[serde(flatten)]
    record: &'a CertificateRecord,
    identity: Option<CertificateIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pem: Option<String>,
}

pub fn parse_serial(s: &str) -> Result<SerialNumber, Failure> {
    s.parse().map_err(|e: ca_core::serial::SerialError| Failure::Input(e.to_string()))
}

pub fn show(ctx: &Context, args: &ShowArgs) -> Outcome {
    let serial = parse_serial(&args.serial)?;
    let record = ctx
        .store
        .certificate(&serial)?
        .ok_or_else(|| Failure::NotFound(format!("no certificate with serial {serial} in this CA")))?;
    let identity = record
        .der
        .as_deref()
        .and_then(|d| x509_cert::Certificate::from_der(d).ok())
        .map(|c| CertificateIdentity::from_certificate(&c));
    let pem = if args.pem {
        record.der.as_deref().and_then(|d| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, d).ok())
    } else {
        None
    };
    if ctx.json {
        print_json(&ShowReport { record: &record, identity, pem });
        return Ok(());
    }
    print_record(&record);
    if let Some(id) = identity {
        if let Some(cn) = &id.common_name {
            println!("  name         {cn}{}", id.patronymic.as_deref().map(|g| format!(" {g}")).unwrap_or_default());
        }
        if let Some(o) = &id.organisation {
            println!("  organisation {o}");
        }
        if let Some(e) = &id.email {
            println!("  email        {e}");
        }
        if let Some(k) = id.key_type {
            println!("  key type     {k}");
        }
        if !id.roles.is_empty() {
            let roles: Vec<&str> = id.roles.iter().map(|r| r.name()).collect();
            println!("  roles        {}", roles.join(", "));
        }
    }
    if let Some(p) = pem {
        print!("{p}");
    }
    Ok(())
}

fn print_record(r: &CertificateRecord) {
    println!("serial {}", r.serial);
    println!("  status       {}", r.status.as_str());
    if let Some(rev) = &r.revocation {
        println!("  revoked      {} ({})", when(rev.revoked_at), rev.reason);
        if let Some(d) = rev.invalidity_date {
            println!("  invalid from {}", when(d));
        }
        match r.first_crl_number {
            Some(n) => println!("  first CRL    number {n}"),
            None => println!("  first CRL    not yet published"),
        }
    }
    println!("  profile      {}", r.profile);
    println!("  issuer       {}", r.issuer);
    println!("  subject      {}", r.subject_dn);
    if let Some(iin) = r.iin {
        println!("  IIN          {iin}");
    }
    if let Some(bin) = r.bin {
        println!("  BIN          {bin}");
    }
    println!("  valid        {} .. {}", when(r.not_before), when(r.not_after));
}

pub fn list(ctx: &Context, args: &ListArgs) -> Outcome {
    let input = |e: ca_core::identity::IdNumberError| Failure::Input(e.to_string());
    let status = match args.status.as_deref() {
        None => None,
        Some("reserved") => Some(CertificateStatus::Reserved),
        Some("issued") => Some(CertificateStatus::Issued),
        Some("revoked") => Some(CertificateStatus::Revoked),
        Some(other) => {
            return Err(Failure::Input(format!("unknown status {other:?}; use reserved, issued or revoked")))
        }
    };
    let query = CertificateQuery {
        iin: args.iin.as_deref().map(str::parse::<Iin>).transpose().map_err(input)?,
        bin: args.bin.as_deref().map(str::parse::<Bin>).transpose().map_err(input)?,
        status,
        issuer: args.issuer.clone(),
        limit: Some(args.limit),
    };
    let rows = ctx.store.find(&query)?;
    if ctx.json {
        print_json(&rows);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no certificates match");
    }
    for r in &rows {
        println!(
            "{}  {:<8}  {:<15}  {}  until {}",
            r.serial,
            r.status.as_str(),
            r.profile,
            r.subject_dn,
            when(r.not_after)
        );
    }
    Ok(())
}
