//! `ca status`: the CA's own certificates — root, issuing CA, OCSP responder, system signing —
//! with the days each has left, and a warning for each that has fewer than `[expiry]` in
//! ca.toml allows (`ca_warn_days`, default 400, for the CAs; `service_warn_days`, default 21,
//! for the OCSP and system certificates). The same figures are on the server's `/metrics` as
//! `ca_certificate_expiry_seconds{role, name}`.

use ca_core::expiry::own_certificates;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::Outcome;

pub fn run(ctx: &Context) -> Outcome {
    let now = ctx.clock_now();
    let certificates = own_certificates(&ctx.dir, &ctx.config).map_err(|e| Failure::NotFound(e.to_string()))?;
    let warnings: Vec<String> = certificates.iter().filter_map(|c| c.warning(now, &ctx.config.expiry)).collect();
    if ctx.json {
        let listed: Vec<_> = certificates
            .iter()
            .map(|c| {
                serde_json::json!({
                    "role": c.role, "name": c.name, "serial": c.serial, "subject": c.subject,
                    "not_before": when(c.not_before), "not_after": when(c.not_after),
                    "days_left": c.days_left(now), "warn_days": c.role.warn_days(&ctx.config.expiry),
                    "warning": c.warning(now, &ctx.config.expiry), "certificate": c.path,
                })
            })
            .collect();
        print_json(&serde_json::json!({ "certificates": listed, "warnings": warnings }));
        return Ok(());
    }
    for c in &certificates {
        println!(
            "{:<8} {:<8} {:>6} days left  until {}  serial {}  {}",
            c.role.as_str(),
            c.name,
            c.days_left(now),
            when(c.not_after),
            c.serial,
            c.subject
        );
    }
    if !ctx.dir.ocsp_certificate().exists() {
        println!("no OCSP responder (ca ocsp init)");
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    Ok(())
}
