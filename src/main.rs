//! `ayt`: the command line. Subcommands run headless; the terminal UI is the default. The
//! grammar is `cli.rs`, what each command does is `commands/`, the work is the `ayt` library.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // In the HDF5 checker process this serves checks and exits (store/sandbox.rs).
    ayt::store::sandbox::serve_if_asked(ayt::data::checker::read);
    ayt::store::sandbox::enable(ayt::store::sandbox::Limits::from_env());
    ayt::runtime::tune_cpu();
    match commands::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
