//! The command line.

/// Default `--messages`: latency samples per path (and throughput messages
/// per trial, times [`THROUGHPUT_FACTOR`]).
const DEFAULT_MESSAGES: u64 = 500_000;
/// `--quick`: messages, latency rounds and throughput trials.
const QUICK_MESSAGES: u64 = 20_000;
/// Latency rounds (interleaved across the paths) of a full run.
const ROUNDS: usize = 5;
/// Throughput trials of a full run; the median trial is reported.
const TRIALS: usize = 3;
/// Throughput messages per trial, in multiples of `--messages`.
pub const THROUGHPUT_FACTOR: u64 = 2;

/// Command line of a benchmark run.
pub struct Args {
    pub messages: u64,
    pub rounds: usize,
    pub trials: usize,
    pub json: bool,
    pub quick: bool,
    /// `--throughput-only`: no latency rounds (the latency table is empty).
    pub throughput_only: bool,
    /// `--only`: the peer keys whose paths run (all when `None`).
    pub only: Option<Vec<String>>,
}

/// One-line usage, for --help and argument errors.
const USAGE: &str =
    "usage: rust_peers [--messages N] [--quick] [--only KEY,..] [--throughput-only] [--json]";

/// Reads the command line (exits with status 2 on a bad one).
pub fn parse_args(args: &[String]) -> Args {
    let mut parsed = Args {
        messages: DEFAULT_MESSAGES,
        rounds: ROUNDS,
        trials: TRIALS,
        json: false,
        quick: false,
        throughput_only: false,
        only: None,
    };
    let mut messages = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--messages" => {
                let v = it.next().cloned().unwrap_or_default();
                match v.replace('_', "").parse::<u64>() {
                    Ok(n) if n > 0 => messages = Some(n),
                    _ => {
                        eprintln!("--messages needs a positive integer, got {v:?}");
                        std::process::exit(2);
                    }
                }
            }
            "--only" => {
                let v = it.next().cloned().unwrap_or_default();
                let keys: Vec<String> = v
                    .split(',')
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect();
                if keys.is_empty() {
                    eprintln!("--only needs a comma-separated list of peer keys, got {v:?}");
                    std::process::exit(2);
                }
                parsed.only = Some(keys);
            }
            "--throughput-only" => parsed.throughput_only = true,
            "--json" => parsed.json = true,
            "--quick" => parsed.quick = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                println!(
                    "  --messages N  latency samples per path (default {DEFAULT_MESSAGES}, in {ROUNDS} rounds);"
                );
                println!(
                    "                throughput trials move {THROUGHPUT_FACTOR} x N messages each ({TRIALS} trials)"
                );
                println!(
                    "  --quick       smoke run: {QUICK_MESSAGES} messages, 2 rounds, 1 trial (unless --messages)"
                );
                println!(
                    "  --only KEYS   measure only these peers (comma-separated keys, e.g. ringcast-bounded,disruptor)"
                );
                println!("  --throughput-only  skip the latency rounds");
                println!("  --json        print one JSON object instead of the tables");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other:?}; {USAGE}");
                std::process::exit(2);
            }
        }
    }
    if parsed.quick {
        parsed.messages = QUICK_MESSAGES;
        parsed.rounds = 2;
        parsed.trials = 1;
    }
    if let Some(n) = messages {
        parsed.messages = n;
    }
    parsed
}
