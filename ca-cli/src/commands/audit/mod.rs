//! `ca audit`: the journal's hash chain and signed checkpoints of its head (`verify`,
//! `init-key`, `checkpoint`), and reading it (`list`, `export`).

mod checkpoint;
pub(crate) mod key;
mod list;

use clap::Subcommand;

use crate::context::Context;
use crate::Outcome;

pub(crate) use checkpoint::print_checkpoint;
pub use checkpoint::{InitKeyArgs, VerifyArgs};
pub use list::{ExportArgs, ListArgs};

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check that no audit entry was edited, deleted or reordered, and that the journal still
    /// holds the latest signed checkpoint (catches truncation and a recomputed chain).
    Verify(VerifyArgs),
    /// Make the audit key that signs checkpoints (encrypted under the CA passphrase, or on a
    /// token), pin its public key and write the first checkpoint.
    InitKey(InitKeyArgs),
    /// Sign a checkpoint of the journal's head now and publish it beside the CRLs.
    Checkpoint,
    /// List journal entries by time range and actor (JSON lines with --json).
    List(ListArgs),
    /// Export journal entries as JSON lines (to a file or stdout).
    Export(ExportArgs),
}

pub fn run(ctx: &Context, cmd: &AuditCommand) -> Outcome {
    match cmd {
        AuditCommand::Verify(args) => checkpoint::verify(ctx, args),
        AuditCommand::InitKey(args) => checkpoint::init_key(ctx, args),
        AuditCommand::Checkpoint => checkpoint::checkpoint(ctx).map(|_| ()),
        AuditCommand::List(args) => list::list(ctx, args),
        AuditCommand::Export(args) => list::export(ctx, args),
    }
}
