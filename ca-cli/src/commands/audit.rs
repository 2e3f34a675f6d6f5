//! `ca audit verify`: walk the hash chain of the audit journal.

use ca_core::store::Store;
use clap::Subcommand;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::print_json;
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check that no audit entry was edited, deleted or reordered.
    Verify,
}

pub fn run(ctx: &Context, cmd: &AuditCommand) -> Outcome {
    match cmd {
        AuditCommand::Verify => {
            let v = ctx.store.verify_audit()?;
            if ctx.json {
                print_json(&v);
            } else if v.is_intact() {
                println!("audit journal intact: {} entries, head {}", v.entries, v.head);
            } else {
                println!("audit journal BROKEN: {} entries, {} problems", v.entries, v.problems.len());
                for p in &v.problems {
                    println!("  entry {}: {}", p.seq, p.problem);
                }
            }
            if v.is_intact() {
                Ok(())
            } else {
                Err(Failure::Integrity(format!("the audit journal has {} problem(s)", v.problems.len())))
            }
        }
    }
}
