//! One module per subcommand.

pub mod application;
pub mod audit;
pub mod backup;
pub mod card;
pub mod counter;
pub mod crl;
pub mod delivery;
pub mod demo;
pub mod init;
pub mod issue;
pub mod ocsp;
pub mod pending;
pub mod registry;
pub mod report;
pub mod revoke;
pub mod rollover;
pub mod serve;
pub mod show;
pub mod state_corporation;
pub mod status;
pub mod store;
pub mod system;
pub mod tsa;
pub mod worker;

use crate::context::Context;
use crate::{Cli, Command, Outcome};

pub fn run(cli: Cli) -> Outcome {
    match &cli.command {
        Command::Init(args) => init::run(&cli, args),
        Command::Demo(args) => demo::run(&cli, args),
        Command::Issue(args) => issue::run(&Context::open(&cli)?, args),
        Command::Show(args) => show::show(&Context::open(&cli)?, args),
        Command::List(args) => show::list(&Context::open(&cli)?, args),
        Command::Revoke(args) => revoke::run(&Context::open(&cli)?, args),
        Command::Release(args) => revoke::release(&Context::open(&cli)?, args),
        Command::Audit(cmd) => audit::run(&Context::open(&cli)?, cmd),
        Command::Ocsp(cmd) => ocsp::run(&Context::open(&cli)?, cmd),
        Command::System(cmd) => system::run(&Context::open(&cli)?, cmd),
        Command::Tsa(cmd) => tsa::run(&Context::open(&cli)?, cmd),
        Command::Card(cmd) => card::run(&Context::open(&cli)?, cmd),
        Command::Crl(cmd) => crl::run(&Context::open(&cli)?, cmd),
        Command::Serve(args) => serve::run(&Context::open(&cli)?, args),
        Command::Rollover(cmd) => rollover::run(&Context::open(&cli)?, cmd),
        Command::Status => status::run(&Context::open(&cli)?),
        Command::Registry(cmd) => registry::run(&Context::open(&cli)?, cmd),
        Command::Application(cmd) => application::run(&Context::open(&cli)?, cmd),
        Command::Report(cmd) => report::run(&Context::open(&cli)?, cmd),
        Command::Backup(args) => backup::run(&cli, args),
        Command::Restore(args) => backup::restore(&cli.dir, args, cli.json),
        Command::Outbox(cmd) => report::outbox(&Context::open(&cli)?, cmd),
        Command::Store(cmd) => store::run(&cli, cmd),
        Command::Worker(args) => worker::run(&Context::open(&cli)?, args),
    }
}
