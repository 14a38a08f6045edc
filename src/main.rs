//! The `wsaudit` command line. Only argument parsing and exit codes live here; everything else
//! is the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wsaudit::attacks::TargetRuntime;
use wsaudit::config::LoadedPolicy;
use wsaudit::config::check::{check_file, load_suites};
use wsaudit::config::schema;
use wsaudit::plan::inputs::{compile_files, compile_inputs};
use wsaudit::report::Exit;
use wsaudit::report::outputs::ReportOutputs;
use wsaudit::report::partition::Partition;
use wsaudit::report::waivers::Waivers;
use wsaudit::run::RunOptions;
use wsaudit::run::progress::Progress;
use wsaudit::server::flaw::Flaws;
use wsaudit::server::variant::Variants;
use wsaudit::server::{self, EventLog, ServerOptions, Weakened};

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
    /// Start the reference server in-process, audit it, then audit a weakened copy (exit 3 if
    /// the audits do not show what the demo claims).
    Demo,
    /// Print the plan: every concrete case of a policy against a target, as YAML (secrets as ***).
    Compile(CompileArgs),
    /// Validate policy, target and suite files (told apart by their top-level key).
    Check(CheckArgs),
    /// Print the JSON Schemas of policy, target and suite files, or write them to a directory.
    Schema(SchemaArgs),
    /// Scan a page and its same-origin scripts for WebSocket endpoints: fail on plaintext ws://
    /// references, and probe each wss:// endpoint with a foreign Origin (CSWSH).
    Scan(Box<ScanArgs>),
    /// Fuzz a live target's message and frame handling after authentication.
    Fuzz(Box<FuzzArgs>),
    /// Probe an endpoint (subprotocols, Engine.IO, SignalR negotiate, graphql-ws, STOMP,
    /// credential demands) and write a commented starter target file.
    Init(InitArgs),
}

/// The files a plan is compiled from.
#[derive(clap::Args)]
struct PlanInputs {
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
struct RunArgs {
    #[command(flatten)]
    inputs: PlanInputs,
    /// Run only these controls or cases (comma-separated IDs; a case ID may omit its `[item]`).
    #[arg(long, value_name = "ID,..", value_delimiter = ',')]
    only: Vec<String>,
    #[command(flatten)]
    outputs: ReportOutputs,
    /// Waivers file: failures of these controls or cases are reported as waived.
    #[arg(long, value_name = "FILE")]
    waivers: Option<PathBuf>,
    /// Run only share K of N of the cases (stable by case ID), to spread a plan over CI jobs.
    #[arg(long, value_name = "K/N")]
    partition: Option<Partition>,
    /// End the run at the first case after which the target stops accepting connections,
    /// instead of waiting `limits.recovery` for it to come back (the remaining destructive
    /// cases are reported not run).
    #[arg(long)]
    stop_on_crash: bool,
}

#[derive(clap::Args)]
struct CompileArgs {
    #[command(flatten)]
    inputs: PlanInputs,
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
struct ScanArgs {
    /// The page to scan (http:// or https://).
    url: String,
    /// Origin of the app's legitimate clients, for the positive control (default: the page's
    /// own origin; set it when the page is served from another host than the app's origin).
    #[arg(long)]
    origin: Option<String>,
    /// Origin sent by the CSWSH probe.
    #[arg(long, default_value = wsaudit::scan::DEFAULT_FOREIGN_ORIGIN)]
    foreign_origin: String,
    /// Extra trust root (PEM), such as a staging CA.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Same-origin scripts fetched at most.
    #[arg(long, default_value_t = 50)]
    max_scripts: usize,
    /// Bytes read per page or script (e.g. 2MiB); the rest is not scanned and the report says so.
    #[arg(long, default_value = "2MiB", value_parser = parse_size)]
    max_script_bytes: usize,
    /// Time budget of the whole scan (fetching and probing).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// Time limit of each request and handshake.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    request_timeout: std::time::Duration,
    /// References reported one by one; further ones are summed up.
    #[arg(long, default_value_t = 200)]
    max_references: usize,
    /// wss:// endpoints probed at most.
    #[arg(long, default_value_t = 20)]
    max_endpoints: usize,
    /// Do not probe discovered endpoints (report references only).
    #[arg(long)]
    no_probe: bool,
    #[command(flatten)]
    outputs: ReportOutputs,
}

fn parse_size(text: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = text.parse()?;
    usize::try_from(size.as_u64()).map_err(|e| e.to_string())
}

#[derive(clap::Args)]
struct InitArgs {
    /// The endpoint: ws://, wss://, http:// or https://.
    url: String,
    /// Write the target file here instead of stdout (an existing file is not overwritten).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The Origin legitimate clients send [default: the endpoint's own site].
    #[arg(long)]
    origin: Option<String>,
    /// Extra trust root (PEM), such as a staging CA.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Time limit of each handshake and request.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
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
    #[command(flatten)]
    outputs: ReportOutputs,
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
    /// With `--weaken tls` it serves the app, on a free port of the --listen host when absent.
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
    /// cookie-auth, unauth-timeout, schema, rate-limit, max-size, deflate, heartbeat,
    /// cookie-samesite, protocol-strict.
    #[arg(long, value_name = "DEFENCE,..", default_value = "")]
    weaken: Weakened,
    /// Secure variations a correct audit must still pass (comma-separated): app-close-codes,
    /// user-bound-tickets, no-cookie, strict, unsolicited-updates.
    #[arg(long, value_name = "VARIANT,..", default_value = "")]
    variant: Variants,
    /// Make defences subtly wrong (comma-separated), so attack variants can be shown to catch
    /// them: plain-no-origin, origin-substring, origin-any-header, origin-host-only,
    /// url-api-key, url-subprotocol, ticket-jwt-unverified, ticket-race, ticket-verbose,
    /// ticket-ttl-loose, ticket-prefix, unauth-idle-timer, unauth-silent, schema-bool-number,
    /// schema-unanchored, rate-after-validation, rate-loose, rate-fixed-window,
    /// rate-pings-free, size-per-frame, size-inflated-unchecked, heartbeat-no-terminate,
    /// heartbeat-slow, cookie-lax, protocol-close-codes.
    #[arg(long, value_name = "FLAW,..", default_value = "")]
    flaw: Flaws,
    /// The application protocol spoken: raw (JSON messages, the default), socketio,
    /// graphql-transport-ws, stomp or signalr-json (see docs/dialects.md).
    #[arg(long, value_name = "DIALECT", default_value = "raw")]
    dialect: wsaudit::dialect::DialectName,
    /// Write a target file describing this server (its CA certificate goes beside it).
    #[arg(long, value_name = "FILE")]
    emit_target: Option<PathBuf>,
    /// Bearer token of the ticket endpoint (random when absent).
    #[arg(long, env = "WSAUDIT_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// A second user's bearer token (random when absent): the emitted target's second identity.
    #[arg(long, env = "WSAUDIT_SECOND_API_TOKEN", hide_env_values = true)]
    second_api_token: Option<String>,
}

fn main() -> ExitCode {
    wsaudit::crypto::install_crypto_provider();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Invalid.into();
        }
    };
    match cli.command {
        Command::Run(args) => {
            let code = runtime.block_on(run(*args));
            // An interrupted run abandons its cases, which may leave a DNS lookup running on a
            // blocking thread: the reports are written, so do not wait for it.
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            code
        }
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Compile(args) => compile(&args),
        Command::Check(args) => check(&args),
        Command::Schema(args) => schema(&args),
        Command::Scan(args) => runtime.block_on(scan(*args)),
        Command::Fuzz(args) => runtime.block_on(fuzz(*args)),
        Command::Init(args) => runtime.block_on(init(args)),
        Command::Demo => match runtime.block_on(wsaudit::demo::tour()) {
            Ok(tour) => {
                print!("{}", tour.text);
                if tour.problems.is_empty() {
                    return Exit::Passed.into();
                }
                for p in &tour.problems {
                    eprintln!("error: demo: {p}");
                }
                eprintln!(
                    "error: the demo's audits did not show what the demo claims (a wsaudit bug, or a machine too loaded for the policy's timings)"
                );
                Exit::Inconclusive.into()
            }
            Err(e) => {
                eprintln!("error: {e}");
                Exit::Inconclusive.into()
            }
        },
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
    // Everything that can be wrong with the invocation is reported before any attack runs:
    // first the input files and selections (so a typo leaves no report file behind), then the
    // report paths.
    let waivers = match &args.waivers {
        Some(path) => match Waivers::load(path) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("{e}");
                return Exit::Invalid.into();
            }
        },
        None => None,
    };
    let i = &args.inputs;
    let compiled = match compile_inputs(&i.policy, &i.target, &i.suites, &env_var) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid.into();
        }
    };
    let plan = &compiled.plan;
    let unknown = wsaudit::run::unknown_selections(plan, &args.only);
    if !unknown.is_empty() {
        eprintln!(
            "error: --only names no control or case of the plan: {} (see `wsaudit compile` for the IDs)",
            unknown.join(", ")
        );
        return Exit::Invalid.into();
    }
    let rt = match TargetRuntime::new(&compiled.target) {
        Ok(rt) => std::sync::Arc::new(rt),
        Err(e) => {
            eprintln!("error: {}: {e}", i.target.display());
            return Exit::Invalid.into();
        }
    };
    if let Err(e) = args.outputs.check_writable() {
        eprintln!("error: {e}");
        return Exit::Invalid.into();
    }
    if let Some(w) = &waivers {
        // Waivers are read as `--only` reads IDs; unlike `--only`, a stale waiver is not an
        // error (a control may leave the policy before its waiver is removed), but a typo must
        // not go unnoticed.
        let ids: Vec<String> = w.waivers.iter().map(|w| w.id.clone()).collect();
        for id in wsaudit::run::unknown_selections(plan, &ids) {
            eprintln!(
                "warning: {}: the waiver for {id} matches no control or case of the plan (see `wsaudit compile` for the IDs)",
                w.path.display()
            );
        }
    }
    let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let interrupted = cancel.clone();
    let interrupt = match on_interrupt(cancel_tx) {
        Ok(task) => task,
        Err(e) => {
            eprintln!("error: cannot watch for Ctrl-C: {e}");
            return Exit::Invalid.into();
        }
    };
    let cases = wsaudit::run::select(plan, &args.only, args.partition.as_ref());
    let selected = cases.len();
    // The progress counts the gates the selected cases depend on, which run too.
    let gates = wsaudit::run::dependencies(plan, &cases).len();
    let opts = RunOptions {
        only: args.only.clone(),
        partition: args.partition,
        max_parallel: None,
        cancel,
        progress: Progress::for_stderr(selected + gates),
        stop_on_crash: args.stop_on_crash,
    };
    let mut report = wsaudit::run::run(plan, &compiled.policy, rt.clone(), opts).await;
    let was_interrupted = *interrupted.borrow();
    if let Some(w) = &waivers {
        let today = time::OffsetDateTime::now_utc().date();
        for warning in wsaudit::report::waivers::apply(&mut report, w, today) {
            eprintln!("warning: {warning}");
        }
    }
    // The shares of a partitioned run keep apart in code scanning: the default SARIF category
    // names the share.
    let outputs = ReportOutputs {
        partition: args.partition,
        ..args.outputs.clone()
    };
    let published = publish(&report, &rt.secrets(), &outputs);
    interrupt.abort();
    let redacted = match published {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Invalid.into();
        }
    };
    if was_interrupted {
        eprintln!(
            "interrupted: {} of {selected} cases not run; the reports hold what finished",
            redacted.not_run.len()
        );
    }
    // The report's own exit code (130 when cases were not run), so the JSON report and the
    // process agree; an interrupt that came after every case finished changes nothing.
    redacted.exit().into()
}

/// Flips `cancel` on the first SIGINT (the run stops launching cases and abandons running ones,
/// which are then reported as not run); a second SIGINT exits at once. The handler is installed
/// before this returns, so a Ctrl-C right after the first progress line is never missed.
fn on_interrupt(
    cancel: tokio::sync::watch::Sender<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        #[cfg(unix)]
        let first = sigint.recv().await.is_some();
        #[cfg(not(unix))]
        let first = tokio::signal::ctrl_c().await.is_ok();
        if !first {
            return;
        }
        eprintln!(
            "interrupted: stopping; finished cases will be reported (Ctrl-C again to quit now)"
        );
        let _ = cancel.send(true);
        #[cfg(unix)]
        let again = sigint.recv().await.is_some();
        #[cfg(not(unix))]
        let again = tokio::signal::ctrl_c().await.is_ok();
        if again {
            std::process::exit(i32::from(Exit::Interrupted.code()));
        }
    }))
}

fn compile(args: &CompileArgs) -> ExitCode {
    let i = &args.inputs;
    match compile_files(&i.policy, &i.target, &i.suites, &env_var) {
        Ok(plan) => {
            print!("{}", plan.to_yaml());
            Exit::Passed.into()
        }
        Err(e) => {
            eprintln!("{e}");
            Exit::Invalid.into()
        }
    }
}

fn check(args: &CheckArgs) -> ExitCode {
    let suites = match load_suites(&args.suites) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid.into();
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
        Exit::Invalid.into()
    } else {
        Exit::Passed.into()
    }
}

fn schema(args: &SchemaArgs) -> ExitCode {
    if let Some(dir) = &args.write {
        return match schema::write_all(dir) {
            Ok(()) => {
                println!("schemas written to {}", dir.display());
                Exit::Passed.into()
            }
            Err(e) => {
                eprintln!("error: cannot write schemas to {}: {e}", dir.display());
                Exit::Invalid.into()
            }
        };
    }
    let value = match args.kind.as_str() {
        "target" => schema::target_schema(),
        "suite" => schema::suite_schema(),
        _ => schema::policy_schema(),
    };
    print!("{}", schema::render(&value));
    Exit::Passed.into()
}

async fn fuzz(args: FuzzArgs) -> ExitCode {
    use wsaudit::fuzzing::FuzzOptions;
    let invalid = |e: &dyn std::fmt::Display| {
        eprintln!("{e}");
        Exit::Invalid.into()
    };
    // Inputs first, so a typo leaves no report file behind; then the report paths, still
    // before any connection.
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
    if let Err(e) = args.outputs.check_writable() {
        return invalid(&format!("error: {e}"));
    }
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
    match publish(&report, &rt.secrets(), &args.outputs) {
        Ok(redacted) => redacted.exit().into(),
        Err(e) => invalid(&format!("error: {e}")),
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let policy = match LoadedPolicy::load(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Invalid.into();
        }
    };
    let opts = ServerOptions {
        policy,
        listen: args.listen,
        plain_listen: args.plain_listen,
        cert: args.cert.zip(args.key),
        weakened: args.weaken,
        api_token: args.api_token,
        second_api_token: args.second_api_token,
        variants: args.variant,
        flaws: args.flaw,
        log: EventLog::stderr(),
        dialect: args.dialect,
    };
    let handle = match server::start(opts).await {
        Ok(h) => h,
        // Located policy errors print like the loader's, without a second `error:`.
        Err(server::ServerError::Policy(e)) => {
            eprintln!("{e}");
            return Exit::Invalid.into();
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Invalid.into();
        }
    };
    if let Some(path) = &args.emit_target {
        if let Err(e) = handle.write_target(path) {
            eprintln!("error: {e}");
            return Exit::Invalid.into();
        }
        println!("target file written to {}", path.display());
    }
    println!("reference server listening on {}", handle.ws_url());
    if let Some(p) = handle.plain_ws_url() {
        if handle.shared.weakened.is(server::Defence::Tls) {
            println!("plaintext listener (tls weakened: serves WebSocket upgrades) on {p}");
        } else {
            println!("plaintext listener (refuses upgrades) on {p}");
        }
    }
    println!("ticket endpoint: POST {}", handle.ticket_url());
    match tokio::signal::ctrl_c().await {
        Ok(()) => Exit::Passed.into(),
        Err(e) => {
            eprintln!("error: cannot wait for Ctrl-C: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn init(args: InitArgs) -> ExitCode {
    use wsaudit::init::{Given, InitError, init, websocket_url};
    let invalid = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        Exit::Invalid.into()
    };
    let url = match websocket_url(&args.url) {
        Ok(u) => u,
        Err(e) => return invalid(&e),
    };
    if let Some(path) = &args.output
        && path.exists()
    {
        return invalid(&format_args!(
            "{}: already exists; init does not overwrite a target file",
            path.display()
        ));
    }
    let mut tls = wsaudit::client::TlsOptions::default();
    if let Some(ca) = &args.ca_file {
        tls = match tls.with_ca_file(ca) {
            Ok(t) => t,
            Err(e) => return invalid(&format_args!("--ca-file {}: {e}", ca.display())),
        };
    }
    let tls = match wsaudit::client::TlsClient::new(&tls) {
        Ok(t) => t,
        Err(e) => return invalid(&e),
    };
    let given = Given {
        origin: args.origin,
        ca_file: args.ca_file,
    };
    match init(&url, &given, tls, args.timeout).await {
        Ok(text) => match &args.output {
            Some(path) => match std::fs::write(path, &text) {
                Ok(()) => {
                    eprintln!("wrote {}", path.display());
                    Exit::Passed.into()
                }
                Err(e) => invalid(&format_args!("{}: {e}", path.display())),
            },
            None => {
                print!("{text}");
                Exit::Passed.into()
            }
        },
        Err(e @ (InitError::Url(_) | InitError::Tls(_))) => invalid(&e),
        Err(e @ InitError::Unreachable { .. }) => {
            eprintln!("error: {e}");
            Exit::Inconclusive.into()
        }
    }
}

async fn scan(args: ScanArgs) -> ExitCode {
    use wsaudit::scan::{self, Bounds, ScanOptions};
    let invalid = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        Exit::Invalid.into()
    };
    let url = match scan::parse_page_url(&args.url) {
        Ok(u) => u,
        Err(e) => return invalid(&e),
    };
    let mut opts = ScanOptions::new(url);
    if let Some(ca) = &args.ca_file {
        opts.tls = match opts.tls.with_ca_file(ca) {
            Ok(t) => t,
            Err(e) => return invalid(&format_args!("--ca-file {}: {e}", ca.display())),
        };
    }
    // After the inputs (a typo leaves no report file behind), before any connection.
    if let Err(e) = args.outputs.check_writable() {
        return invalid(&e);
    }
    opts.origin = args.origin;
    opts.foreign_origin = args.foreign_origin;
    opts.probe = !args.no_probe;
    opts.bounds = Bounds {
        max_scripts: args.max_scripts,
        max_bytes: args.max_script_bytes,
        total_time: args.timeout,
        request_timeout: args.request_timeout,
        max_references: args.max_references,
        max_endpoints: args.max_endpoints,
    };
    let report = match scan::scan(&opts).await {
        Ok(r) => r,
        Err(e) => return invalid(&e),
    };
    match publish(&report, &scan::secrets(&opts.url), &args.outputs) {
        Ok(redacted) => redacted.exit().into(),
        Err(e) => invalid(&e),
    }
}

/// Redacts a report once, prints it, and writes every requested report file from the same
/// redacted copy (what `run`, `fuzz` and `scan` all end with).
fn publish(
    report: &wsaudit::report::RunReport,
    secrets: &wsaudit::config::Secrets,
    outputs: &ReportOutputs,
) -> Result<wsaudit::report::Redacted, wsaudit::report::outputs::OutputError> {
    let redacted = report.redact(|s| secrets.redact(s));
    print!("{}", wsaudit::report::terminal::render(&redacted));
    outputs.write_all(&redacted)?;
    Ok(redacted)
}
