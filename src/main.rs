//! `ayt`: the command line. Subcommands run headless; the terminal UI is the default. The
//! grammar is `cli.rs`, what each command does is `commands/`, the work is the `ayt` library.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ayt::runtime::tune_cpu();
    match commands::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
