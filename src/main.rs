//! The `zachetka` binary: logging, the allocator, and the exit status of the command that
//! `cli` runs. Not the commands (`cli/`): every verb's flags are documented by `--help`.
mod cli;

use clap::Parser;

/// mimalloc: the pipeline allocates per event on every core; glibc's malloc spent ~15% of a
/// run in malloc/free and page zeroing, and the appends/s figure rose ~15% with mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        // The reader of our stdout left (`zachetka ... | head`): what it read was printed whole,
        // the rest has no one to go to. Quiet, with the status of a writer killed by SIGPIPE.
        Err(e) if e.chain().any(|c| c.is::<cli::StdoutClosed>()) => {
            std::process::ExitCode::from(cli::STDOUT_CLOSED_STATUS)
        }
        Err(e) => {
            eprintln!("zachetka: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
