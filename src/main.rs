//! The `wsaudit` command line. Only argument parsing and exit codes live here; everything else
//! is the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wsaudit::attacks::TargetRuntime;
use wsaudit::config::LoadedPolicy;
use wsaudit::config::check::{check_file, compile_files, compile_inputs, load_suites};
use wsaudit::config::schema;
use wsaudit::run::RunOptions;
use wsaudit::run::progress::Progress;
use wsaudit::server::{self, EventLog, ServerOptions, Weakened};

/// Exit code for an invalid invocation or file.
const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(
    name = "wsaudit",
    version,
    about = "Policy-as-code conformance harness for WebSocket security"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a policy's attack suites against a target and report a verdict per control.
    Run(Box<RunArgs>),
    /// Run the hardened reference server enforcing a policy.
    Serve(Box<ServeArgs>),
    /// Start the reference server in-process, audit it, then audit a weakened copy.
    Demo,
    /// Print the plan: every concrete case of a policy against a target, as YAML (secrets as ***).
    Compile(CompileArgs),
    /// Validate policy, target and suite files (told apart by their top-level key).
    Check(CheckArgs),
    /// Print the JSON Schemas of policy, target and suite files, or write them to a directory.
    Schema(SchemaArgs),
    /// Fuzz a live target's message and frame handling after authentication.
    Fuzz(Box<FuzzArgs>),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Policy file.
    #[arg(long)]
    policy: PathBuf,
    /// Target file; `${VAR}` reads the environment.
    #[arg(long)]
    target: PathBuf,
    /// A directory of extra suite files (repeatable).
    #[arg(long, value_name = "DIR")]
    suites: Vec<PathBuf>,
    /// Run only these controls or cases (comma-separated IDs; a case ID may omit its `[item]`).
    #[arg(long, value_name = "ID,..", value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(clap::Args)]
struct CompileArgs {
    /// Policy file.
    #[arg(long)]
    policy: PathBuf,
    /// Target file; `${VAR}` reads the environment.
    #[arg(long)]
    target: PathBuf,
    /// A directory of extra suite files (repeatable).
    #[arg(long, value_name = "DIR")]
    suites: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Files to validate.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A directory of extra suite files whose checks policies may use (repeatable).
    #[arg(long, value_name = "DIR")]
    suites: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct SchemaArgs {
    /// Which schema to print: policy, target or suite.
    #[arg(long, default_value = "policy", value_parser = ["policy", "target", "suite"])]
    kind: String,
    /// Write every schema file into this directory instead (e.g. `schemas`).
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
}

#[derive(clap::Args)]
struct FuzzArgs {
    /// Target file; `${VAR}` reads the environment.
    #[arg(long)]
    target: PathBuf,
    /// Policy whose `messages.schema` decides which messages are invalid (without it only
    /// binary, non-UTF-8 and malformed JSON messages are); its rate and size limits pace the
    /// fuzzer and bound its messages.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// How long to fuzz, e.g. 60s or 10m.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// Seed of every mutation; random (and printed) when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// Business messages per second [default: half the policy's rate limit, else 10].
    #[arg(long, value_parser = positive_rate)]
    rate: Option<f64>,
    /// Cases per batch; after each batch a fresh client checks the target is still healthy.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Run only this batch of the seed, whatever the duration (reproduces a finding).
    #[arg(long, value_name = "BATCH")]
    replay_batch: Option<u64>,
    /// Stop after this many findings.
    #[arg(long, default_value_t = 20)]
    max_findings: usize,
    /// After a case, how long to wait for an answer or a close before it is a hang [default: 3s].
    #[arg(long, value_parser = humantime::parse_duration)]
    hang_after: Option<std::time::Duration>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a SARIF report here.
    #[arg(long, value_name = "FILE")]
    sarif: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Policy file to enforce.
    #[arg(long)]
    policy: PathBuf,
    /// TLS listen address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Plaintext listen address; it refuses WebSocket upgrades (426) and redirects to https.
    #[arg(long)]
    plain_listen: Option<SocketAddr>,
    /// PEM certificate chain; a CA and certificate are generated when absent.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Switch off defences (comma-separated): tls, tls-version, tls-cert, origin, url-token,
    /// ticket-replay, ticket-expiry, ticket-validation, ticket-binding, auth-required,
    /// cookie-auth, unauth-timeout, schema, rate-limit, max-size, heartbeat, cookie-samesite,
    /// protocol-strict.
    #[arg(long, value_name = "DEFENCE,..", default_value = "")]
    weaken: Weakened,
    /// Write a target file describing this server (its CA certificate goes beside it).
    #[arg(long, value_name = "FILE")]
    emit_target: Option<PathBuf>,
    /// Bearer token of the ticket endpoint (random when absent).
    #[arg(long, env = "WSAUDIT_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
}

fn main() -> ExitCode {
    wsaudit::tls::install_crypto_provider();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match cli.command {
        Command::Run(args) => runtime.block_on(run(*args)),
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Compile(args) => compile(&args),
        Command::Check(args) => check(&args),
        Command::Schema(args) => schema(&args),
        Command::Fuzz(args) => runtime.block_on(fuzz(*args)),
        Command::Demo => {
            println!(
                "wsaudit demo: the attack runner is coming; for now run the reference server:"
            );
            println!("  cargo run --release -- serve --policy policies/fintech.yaml");
            ExitCode::SUCCESS
        }
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "`{text}` is not a positive number of messages per second"
        )),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

async fn run(args: RunArgs) -> ExitCode {
    let compiled = match compile_inputs(&args.policy, &args.target, &args.suites, &env_var) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let unknown = wsaudit::run::unknown_selections(&compiled.plan, &args.only);
    if !unknown.is_empty() {
        eprintln!(
            "error: --only names no control or case of the plan: {} (see `wsaudit compile` for the IDs)",
            unknown.join(", ")
        );
        return ExitCode::from(EXIT_INVALID);
    }
    let rt = match TargetRuntime::new(&compiled.target) {
        Ok(rt) => std::sync::Arc::new(rt),
        Err(e) => {
            eprintln!("error: {}: {e}", args.target.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let (_cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let selected = compiled
        .plan
        .cases
        .iter()
        .filter(|c| wsaudit::run::selected(c, &args.only))
        .count();
    let opts = RunOptions {
        only: args.only.clone(),
        max_parallel: None,
        cancel,
        progress: Progress::for_stderr(selected),
    };
    let report = wsaudit::run::run(&compiled.plan, &compiled.policy, rt.clone(), opts).await;
    let secrets = rt.secrets();
    let redacted = report.redact(|s| secrets.redact(s));
    print!("{}", wsaudit::report::terminal::render(&redacted));
    ExitCode::from(redacted.exit_code())
}

fn compile(args: &CompileArgs) -> ExitCode {
    match compile_files(&args.policy, &args.target, &args.suites, &env_var) {
        Ok(plan) => {
            print!("{}", plan.to_yaml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn check(args: &CheckArgs) -> ExitCode {
    let suites = match load_suites(&args.suites) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut failed = false;
    for file in &args.files {
        match check_file(file, &suites, &env_var) {
            Ok(_) => println!("{}: ok", file.display()),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    }
}

fn schema(args: &SchemaArgs) -> ExitCode {
    if let Some(dir) = &args.write {
        return match schema::write_all(dir) {
            Ok(()) => {
                println!("schemas written to {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write schemas to {}: {e}", dir.display());
                ExitCode::from(EXIT_INVALID)
            }
        };
    }
    let value = match args.kind.as_str() {
        "target" => schema::target_schema(),
        "suite" => schema::suite_schema(),
        _ => schema::policy_schema(),
    };
    print!("{}", schema::render(&value));
    ExitCode::SUCCESS
}

async fn fuzz(args: FuzzArgs) -> ExitCode {
    use wsaudit::fuzzing::{FuzzOptions, report};
    let invalid = |e: &dyn std::fmt::Display| {
        eprintln!("{e}");
        ExitCode::from(EXIT_INVALID)
    };
    let target = match wsaudit::config::LoadedTarget::load(&args.target) {
        Ok(t) => t,
        Err(e) => return invalid(&e),
    };
    let policy = match args.policy.as_deref().map(LoadedPolicy::load).transpose() {
        Ok(p) => p,
        Err(e) => return invalid(&e),
    };
    let rt = match TargetRuntime::new(&target) {
        Ok(rt) => std::sync::Arc::new(rt),
        Err(e) => return invalid(&format!("error: {}: {e}", args.target.display())),
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut command = format!("wsaudit fuzz --target {}", args.target.display());
    if let Some(p) = &args.policy {
        command += &format!(" --policy {}", p.display());
    }
    let mut opts = FuzzOptions::for_policy(policy.as_ref(), seed, command);
    opts.duration = args.duration;
    opts.batch_size = args.batch_size;
    opts.replay_batch = args.replay_batch;
    opts.max_findings = args.max_findings;
    opts.rate = args.rate.unwrap_or(opts.rate);
    opts.hang_after = args.hang_after.unwrap_or(opts.hang_after);
    eprintln!(
        "fuzzing {} for {:?} with seed {seed} at {} messages/s",
        wsaudit::client::display_url(&rt.target.url.0),
        opts.duration,
        opts.rate
    );
    let report = match wsaudit::fuzzing::run(rt.clone(), policy.as_ref(), &opts).await {
        Ok(r) => r,
        Err(e) => return invalid(&format!("error: {e}")),
    };
    let secrets = rt.secrets();
    let redacted = report.redact(|s| secrets.redact(s));
    print!("{}", wsaudit::report::terminal::render(&redacted));
    let files = report::ReportFiles {
        junit: args.junit.as_deref(),
        json: args.json.as_deref(),
        sarif: args.sarif.as_deref(),
    };
    if let Err(e) = report::write_files(&redacted, &files) {
        return invalid(&format!("error: {e}"));
    }
    ExitCode::from(redacted.exit_code())
}

async fn serve(args: ServeArgs) -> ExitCode {
    let policy = match LoadedPolicy::load(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let opts = ServerOptions {
        policy,
        listen: args.listen,
        plain_listen: args.plain_listen,
        cert: args.cert.zip(args.key),
        weakened: args.weaken,
        api_token: args.api_token,
        log: EventLog::stderr(),
    };
    let handle = match server::start(opts).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Some(path) = &args.emit_target {
        if let Err(e) = handle.write_target(path) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
        println!("target file written to {}", path.display());
    }
    println!("reference server listening on {}", handle.ws_url());
    if let Some(p) = handle.plain_ws_url() {
        println!("plaintext listener (refuses upgrades) on {p}");
    }
    println!("ticket endpoint: POST {}", handle.ticket_url());
    match tokio::signal::ctrl_c().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot wait for Ctrl-C: {e}");
            ExitCode::FAILURE
        }
    }
}
