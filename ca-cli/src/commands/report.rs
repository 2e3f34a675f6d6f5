//! `ca report sla` (time of each step against the regulation's budget; `--open`: open
//! applications already past the deadline of the step they wait for) and `ca outbox send`.

use std::path::PathBuf;

use ca_core::ra::outbox::{send_due, Maildir};
use clap::{Args, Subcommand};

use crate::context::Context;
use crate::output::{print_json, when};
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Every timed step with its duration and budget; breaches listed at the end.
    Sla(SlaArgs),
}

#[derive(Args, Debug)]
pub struct SlaArgs {
    /// Instead: the open applications already past the deadline of the step they wait for.
    #[arg(long)]
    pub open: bool,
    /// With --open: overdue as of this time (RFC 3339; default now), to see what will be late.
    #[arg(long, requires = "open")]
    pub at: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Deliver the due notices (to a maildir) and mark them sent; failures are retried later.
    Send(SendArgs),
    /// List the notices, newest first.
    List,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The maildir to deliver to; default mail/ in the CA directory.
    #[arg(long, conflicts_with = "smtp_url")]
    pub maildir: Option<PathBuf>,
    /// Deliver over SMTP instead: smtp://host:25, smtp://user@host:587?tls=required, smtps://host:465
    /// (password in CA_SMTP_PASSWORD).
    #[arg(long, env = "CA_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The From address.
    #[arg(long, default_value = "nca-noreply@pki.gov.kz")]
    pub from: String,
    /// At most this many messages per run.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
}

#[derive(serde::Serialize)]
struct SlaRow {
    application: String,
    kind: String,
    /// Where it was taken: the State Corporation's budgets differ.
    channel: String,
    step: String,
    actor: String,
    started_at: String,
    at: String,
    seconds: i64,
    budget: Option<String>,
    breached: bool,
}

/// Open applications past the deadline of the step they wait for, oldest deadline first.
fn open_overdue(ctx: &Context, args: &SlaArgs) -> Outcome {
    let now = match &args.at {
        Some(t) => super::counter::time_arg("--at", t)?,
        None => ctx.clock_now(),
    };
    let timing = ctx.store.timing();
    let mut events: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
    for e in ctx.store.application_events(None)? {
        events.entry(e.number.clone()).or_default().push(e);
    }
    let mut late: Vec<_> = ctx
        .store
        .applications(&ca_core::ra::store::ApplicationQuery::default())?
        .iter()
        .filter(|a| !a.state.is_final())
        .filter_map(|a| {
            let events = events.get(&a.number).map_or(&[][..], Vec::as_slice);
            ca_core::ra::regulation::overdue(&timing, a, events, now)
        })
        .collect();
    late.sort_by_key(|o| o.deadline);
    if ctx.json {
        print_json(&late);
        return Ok(());
    }
    for o in &late {
        println!(
            "{} {:<14} {:<17} {:<17} waits for {:<24} since {} ({}), due {}, late {} min",
            o.number,
            o.kind,
            o.channel,
            o.state,
            o.waiting_for.name(),
            when(o.since),
            o.budget.describe(),
            when(o.deadline),
            (now - o.deadline).whole_minutes()
        );
    }
    println!("{} open applications overdue at {}", late.len(), when(now));
    Ok(())
}

pub fn run(ctx: &Context, cmd: &ReportCommand) -> Outcome {
    match cmd {
        ReportCommand::Sla(args) if args.open => open_overdue(ctx, args),
        ReportCommand::Sla(_) => {
            let channels: std::collections::HashMap<_, _> = ctx
                .store
                .applications(&ca_core::ra::store::ApplicationQuery::default())?
                .into_iter()
                .map(|a| (a.number, a.channel))
                .collect();
            let rows: Vec<SlaRow> = ctx
                .store
                .application_events(None)?
                .into_iter()
                .filter(|e| e.budget.is_some())
                .map(|e| SlaRow {
                    channel: channels.get(&e.number).copied().unwrap_or_default().to_string(),
                    application: e.number.to_string(),
                    kind: e.kind.to_string(),
                    step: e.step.to_string(),
                    actor: format!("{}:{}", e.actor_role.name(), e.actor),
                    started_at: when(e.started_at),
                    at: when(e.at),
                    seconds: (e.at - e.started_at).whole_seconds(),
                    budget: e.budget.map(|b| b.describe()),
                    breached: e.breached,
                })
                .collect();
            if ctx.json {
                print_json(&rows);
                return Ok(());
            }
            for r in &rows {
                println!(
                    "{} {:<14} {:<17} {:<24} {:>8}s / {:<14} {}",
                    r.application,
                    r.kind,
                    r.channel,
                    r.step,
                    r.seconds,
                    r.budget.as_deref().unwrap_or("-"),
                    if r.breached { "BREACHED" } else { "ok" }
                );
            }
            let breaches: Vec<&SlaRow> = rows.iter().filter(|r| r.breached).collect();
            println!("{} timed steps, {} breaches", rows.len(), breaches.len());
            for r in breaches {
                println!(
                    "  breach: {} {} by {} ({}s against {})",
                    r.application,
                    r.step,
                    r.actor,
                    r.seconds,
                    r.budget.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
    }
}

pub fn outbox(ctx: &Context, cmd: &OutboxCommand) -> Outcome {
    match cmd {
        OutboxCommand::Send(args) => {
            let report = match &args.smtp_url {
                Some(url) => {
                    let smtp = crate::smtp::Smtp::new(url, &args.from)?;
                    send_due(ctx.store.as_ref(), &smtp, &ctx.clock, args.limit)?
                }
                None => {
                    let dir = args.maildir.clone().unwrap_or_else(|| ctx.dir.root.join("mail"));
                    send_due(ctx.store.as_ref(), &Maildir::new(dir, args.from.clone()), &ctx.clock, args.limit)?
                }
            };
            if ctx.json {
                print_json(&report);
            } else {
                println!("{} sent, {} failed (will be retried)", report.sent, report.failed);
                for f in &report.failures {
                    println!("  {f}");
                }
            }
            Ok(())
        }
        OutboxCommand::List => {
            let messages = ctx.store.outbox(1000)?;
            if ctx.json {
                print_json(&messages);
            } else {
                for m in &messages {
                    let state = m
                        .sent_at
                        .map_or_else(|| format!("pending ({} attempts)", m.attempts), |t| format!("sent {}", when(t)));
                    println!("{} {} {} — {}", m.id, m.to, state, m.subject);
                }
            }
            Ok(())
        }
    }
}
