//! The `smrt` command: balance CSV and NPY files, train and reuse models, measure, demonstrate.

mod cli;

use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use smrt::Error;

use clap::{Parser, Subcommand};

use cli::balance::BalanceArgs;
use cli::bench::BenchArgs;
use cli::demo::DemoArgs;
use cli::models::{FitArgs, GenerateArgs};

/// Repair class imbalance in tabular data with variational auto-encoders.
#[derive(Parser)]
#[command(name = "smrt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resample a CSV or NPY file: input rows first and unchanged, then synthetic rows
    /// (random-under drops rows instead).
    Balance(BalanceArgs),
    /// Make one digit of the embedded digits data rare, balance it with SMRT and with SMOTE, print
    /// counts and timings (--out DIR also draws the digits as a PNG).
    Demo(DemoArgs),
    /// Train and save one model per class that needs rows (or per --class), without generating.
    Fit(FitArgs),
    /// Stream N synthetic rows of one class from saved models into a CSV file.
    Generate(GenerateArgs),
    /// Compare the synthetic rows of a balanced table with its real rows, class by class:
    /// fidelity per feature, correlations, near-copies, coverage and class overlap, a verdict;
    /// --json for pipelines, --out DIR for a picture per class.
    Report(cli::report::ReportArgs),
    /// Print the version, the GPU adapters found, the engine `auto` picks, and its limits.
    Info,
    /// Measure each engine: matrix products (GFLOP/s), training and generation (rows/s),
    /// SMOTE and SMRT (synthetic rows/s). Progress on stderr, the table on stdout.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    // Mesa's implicit Vulkan layer VK_LAYER_MESA_device_select connects to a Wayland and an X
    // display while the adapters are listed, and on a headless machine (no XDG_RUNTIME_DIR)
    // libwayland prints an error line for each try. smrt ranks the adapters itself, so the
    // layer is off unless the user asks for it by its own variables. Set before any thread
    // starts.
    if std::env::var_os("NODEVICE_SELECT").is_none()
        && std::env::var_os("MESA_VK_DEVICE_SELECT").is_none()
    {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's message, with any list under it (the missing arguments) joined
            // on, and without the usage and help text.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            match message.is_empty() {
                true => eprintln!("error: invalid arguments"),
                false => eprintln!("{}", message.join(" ")),
            }
            return ExitCode::from(2);
        }
    };
    let signal = watch_signals();
    let result = match cli.command {
        Command::Balance(args) => cli::balance::balance(args),
        Command::Demo(args) => cli::demo::demo(args),
        Command::Fit(args) => cli::models::fit(args),
        Command::Generate(args) => cli::models::generate(args),
        Command::Report(args) => cli::report::run(args),
        Command::Info => cli::demo::info(),
        Command::Bench(args) => cli::bench::bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Interrupted) if signal.load(Ordering::Relaxed) != 0 => {
            let number = signal.load(Ordering::Relaxed);
            let name = if number == SIGTERM {
                "SIGTERM"
            } else {
                "SIGINT"
            };
            eprintln!("error: stopped by {name}; no output written");
            ExitCode::from(128 + number as u8)
        }
        Err(Error::InvalidConfig { name, reason }) => {
            eprintln!("error: invalid setting `{}`: {reason}", cli::flag_of(name));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// SIGINT and SIGTERM ask smrt's work to stop at its next check (between epochs, chunks and
/// blocks of rows), so that temporary files are removed and nothing partial is written; the
/// returned cell holds the signal's number once one came. A second signal of either kind ends
/// the process at once.
fn watch_signals() -> Arc<AtomicI32> {
    let signal = Arc::new(AtomicI32::new(0));
    for number in [SIGINT, SIGTERM] {
        let seen = Arc::clone(&signal);
        // Safety: the handler only loads and stores atomics (async-signal-safe), or restores
        // the default action and re-raises through signal-hook's own safe helper.
        let registered = unsafe {
            signal_hook::low_level::register(number, move || {
                if seen.swap(number, Ordering::Relaxed) != 0 {
                    let _ = signal_hook::low_level::emulate_default_handler(number);
                }
                smrt::interrupt::request();
            })
        };
        if let Err(e) = registered {
            eprintln!("smrt: cannot watch signal {number}: {e}");
        }
    }
    signal
}
