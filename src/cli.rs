//! The command line: `serve`, `migrate`, `users create`, `check-config`, `keys generate` and `demo`.
//! Each command reads the configuration from the environment, does one thing, and maps failures to
//! a clear message on stderr and a non-zero exit.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::app::{open_database, App};
use crate::auth::keys;
use crate::auth::roles::Role;
use crate::config::Config;
use crate::logging::{self, Sink};
use crate::users::accounts::{self, Actor, NewAccount};

#[derive(Parser)]
#[command(
    name = "ims",
    version,
    about = "IMS: production management for electronics factories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, web UI and background workers (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Validate the configuration and secrets; print the effective configuration (secrets redacted).
    CheckConfig,
    /// Signing-key utilities.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Load a demo electronics factory into a database without production data: lines, products,
    /// orders, a history of output and stops, this week's schedule, a shift under way, and one
    /// user per role (their passwords are printed once). Exits with status 3 when the database
    /// already has production data.
    Demo {
        /// Production lines (1 to 50).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
        lines: u16,
        /// Days of history before today (0 to 1000).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(0..=1000))]
        days: u16,
        /// Minutes between two output reports of a running line (1 to 240).
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u16).range(1..=240))]
        report_every_minutes: u16,
        /// Do not create the demo users.
        #[arg(long)]
        no_users: bool,
        /// Seed of the generator: the same seed gives the same factory.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Exit status of `ims demo` when the database already has production data.
const DEMO_NOT_EMPTY: u8 = 3;

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an active, email-verified user; prints the new user's id.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// ADMIN, MANAGER or LINE_LEADER; repeat for several.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// Read the password from standard input (one trailing newline is stripped).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a JWT_SIGNING_KEYS document: the one in IMS_JWT_SIGNING_KEYS(_FILE) plus a new key
    /// (rotation), or a new one-key document.
    Generate {
        /// Seconds until the new key starts signing (roll the set out to every instance first).
        /// Defaults to 3600 when adding to an existing set, 0 for a new set.
        #[arg(long)]
        activate_in: Option<u32>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("'{text}' is not a role; use ADMIN, MANAGER or LINE_LEADER"))
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&std::env::vars().collect()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let sink = if matches!(cli.command, Command::Serve) {
        Sink::Stdout
    } else {
        Sink::Stderr
    };
    logging::init(config.log_format, sink);
    let result = match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Users {
            command:
                UsersCommand::Create {
                    email,
                    name,
                    roles,
                    password_stdin: _,
                },
        } => create_user(config, email, name, roles).await,
        Command::CheckConfig => check_config(config),
        Command::Keys {
            command: KeysCommand::Generate { activate_in },
        } => generate_keys(&config, activate_in),
        Command::Demo {
            lines,
            days,
            report_every_minutes,
            no_users,
            seed,
        } => {
            let spec = crate::production::demo::Spec {
                lines: usize::from(lines),
                days: i64::from(days),
                report_every_minutes: i64::from(report_every_minutes),
                with_users: !no_users,
                seed,
            };
            return demo(&config, &spec).await;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    app.run_until(shutdown_signal()).await
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = crate::db::Db::connect(&config.database_url, 2).await?;
    let applied = crate::db::migrate::run(&db).await?;
    db.close().await;
    eprintln!("migrations applied: {applied}");
    Ok(())
}

async fn create_user(
    config: Config,
    email: String,
    name: String,
    roles: Vec<Role>,
) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {}", e.kind()))?;
    let password = input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(&input)
        .to_owned();
    let password = SecretString::from(password);
    // Validate before touching the database, so a bad input writes nothing.
    let normalized = crate::users::email::normalize(&email)
        .ok_or_else(|| anyhow::anyhow!("{}", accounts::AccountError::InvalidEmail))?;
    let clean = accounts::clean_name(&name)?;
    accounts::check_password(&password, &normalized, &clean)?;
    let db = open_database(&config).await?;
    let hasher = crate::auth::password::Hasher::new()?;
    let user = accounts::create(
        &db,
        &hasher,
        None,
        NewAccount {
            email,
            name,
            roles,
            password: Some(password),
            email_verified: true,
        },
        Actor { id: None, ip: None },
    )
    .await;
    db.close().await;
    let user = user?;
    println!("{}", user.id);
    Ok(())
}

async fn demo(config: &Config, spec: &crate::production::demo::Spec) -> ExitCode {
    match load_demo(config, spec).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<crate::production::demo::NotEmpty>() => {
            eprintln!("error: {e}");
            ExitCode::from(DEMO_NOT_EMPTY)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn load_demo(config: &Config, spec: &crate::production::demo::Spec) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let db = open_database(config).await?;
    let hasher = crate::auth::password::Hasher::new()?;
    let clock = crate::production::calendar::FactoryClock::new(config.factory_offset);
    let summary = crate::production::demo::load(&db, &hasher, clock, spec).await;
    db.close().await;
    let s = summary?;
    println!(
        "Demo factory loaded in {:.1} s: {} lines, {} products, {} orders, {} work orders, \
         {} work order events, {} output reports, {} stops, {} alert rules.",
        started.elapsed().as_secs_f64(),
        s.lines,
        s.products,
        s.orders,
        s.work_orders,
        s.work_order_events,
        s.output_reports,
        s.downtimes,
        s.alert_rules
    );
    if !s.users.is_empty() {
        println!("Demo users (these passwords are shown only now and stored nowhere in clear):");
        for u in &s.users {
            println!(
                "  {:<12} {:<22} {}",
                u.role.as_str(),
                u.email,
                u.password.expose_secret()
            );
        }
    }
    Ok(())
}

fn check_config(config: Config) -> anyhow::Result<()> {
    if let Some(keys) = &config.secrets.jwt_signing_keys {
        keys::parse_key_set(&keys.value)?;
    }
    if let Some(pepper) = &config.secrets.otp_pepper {
        if pepper.value.expose_secret().len() < 32 {
            anyhow::bail!("secret OTP_PEPPER must be at least 32 characters");
        }
    }
    if config
        .mail_from
        .parse::<lettre::message::Mailbox>()
        .is_err()
    {
        anyhow::bail!(
            "IMS_MAIL_FROM: not a valid mailbox such as 'IMS <no-reply@factory.example>'"
        );
    }
    if config.mail_transport == crate::config::MailTransport::Smtp {
        crate::mail::smtp::SmtpTransport::new(&config)?;
    }
    if let Some(rest) = config.storage_url.strip_prefix("s3://") {
        crate::storage::s3::parse_location(rest)?;
    }
    if let Some(queue) = &config.queue_url {
        crate::aws::queue_http_url(queue, config.aws_endpoint_url.as_ref())?;
    }
    if config
        .alerts_topic_arn
        .as_deref()
        .is_some_and(|a| !a.starts_with("arn:"))
    {
        anyhow::bail!("IMS_ALERTS_TOPIC_ARN must be an SNS topic ARN (arn:aws:sns:…)");
    }
    crate::auth::oidc::Oidc::from_config(&config)?;
    println!("{}", config.describe());
    eprintln!("configuration OK");
    Ok(())
}

fn generate_keys(config: &Config, activate_in: Option<u32>) -> anyhow::Result<()> {
    let existing = config.secrets.jwt_signing_keys.as_ref().map(|r| &r.value);
    let delay = activate_in.unwrap_or(if existing.is_some() { 3600 } else { 0 });
    let doc = keys::generate_key_set_at(existing, crate::clock::now() + i64::from(delay))?;
    println!("{}", doc.expose_secret());
    Ok(())
}
