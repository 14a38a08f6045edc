//! The `wsaudit` command line. Only argument parsing and exit codes live here; everything else
//! is the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wsaudit::config::LoadedPolicy;
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
    /// Run the hardened reference server enforcing a policy.
    Serve(Box<ServeArgs>),
    /// Start the reference server in-process, audit it, then audit a weakened copy.
    Demo,
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
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Demo => {
            println!(
                "wsaudit demo: the attack runner is coming; for now run the reference server:"
            );
            println!("  cargo run --release -- serve --policy policies/fintech.yaml");
            ExitCode::SUCCESS
        }
    }
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
