//! `ca registry import|show`: the person registry (ГБД ФЛ / ГБД ЮЛ) held in the store.

use std::path::PathBuf;

use ca_core::identity::{Bin, Iin};
use clap::Subcommand;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::print_json;
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Import (insert or update) people and legal entities from a CSV file (format in README).
    Import {
        /// The CSV file (UTF-8; `person,…` and `entity,…` lines).
        file: PathBuf,
    },
    /// Show what the registry holds for an IIN or a BIN.
    Show {
        /// An IIN (person) or a BIN (legal entity), 12 digits.
        number: String,
    },
}

pub fn run(ctx: &Context, cmd: &RegistryCommand) -> Outcome {
    match cmd {
        RegistryCommand::Import { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure::Input(format!("cannot read {}: {e}", file.display())))?;
            let import = ca_core::ra::csv::parse(&text).map_err(|errors| {
                let shown: Vec<String> = errors.iter().take(50).map(|e| format!("{}: {e}", file.display())).collect();
                let more = errors.len().saturating_sub(50);
                let tail = if more > 0 { format!("\n… and {more} more bad lines") } else { String::new() };
                Failure::Input(format!("nothing imported, {} bad line(s):\n{}{tail}", errors.len(), shown.join("\n")))
            })?;
            let counts = ctx.store.import_registry(&import, &ctx.actor)?;
            if ctx.json {
                print_json(&counts);
            } else {
                println!(
                    "people: {} added, {} updated, {} unchanged; legal entities: {} added, {} updated, {} unchanged",
                    counts.persons_added,
                    counts.persons_updated,
                    counts.persons_unchanged,
                    counts.entities_added,
                    counts.entities_updated,
                    counts.entities_unchanged
                );
            }
            Ok(())
        }
        RegistryCommand::Show { number } => {
            if let Ok(iin) = number.parse::<Iin>() {
                if let Some(p) = ctx.store.registry_person(&iin)? {
                    if ctx.json {
                        print_json(&p);
                    } else {
                        println!("{}", ca_core::ra::csv::person_line(&p));
                    }
                    return Ok(());
                }
            }
            if let Ok(bin) = number.parse::<Bin>() {
                if let Some(e) = ctx.store.registry_entity(&bin)? {
                    if ctx.json {
                        print_json(&e);
                    } else {
                        println!("{}", ca_core::ra::csv::entity_line(&e));
                    }
                    return Ok(());
                }
            }
            Err(Failure::NotFound(format!("{number} is not in the person registry")))
        }
    }
}
