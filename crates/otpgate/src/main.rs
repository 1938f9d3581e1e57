//! `otpgate` command line entry point.

use anyhow::Context;
use clap::Parser;
use otpgate::cli::{AdminCommand, Cli, Command, ImportCommand, KeysCommand, PolicyCommand};
use otpgate::config::Config;
use otpgate::{bootstrap, serve};
use std::io::BufRead;
use std::process::ExitCode;

fn init_tracing(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&c.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a terminal: a log file or journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if c.log.format == "json" {
        // Each line carries the request's span: its id, method and route.
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.resolve_config()?;
    let problems = config.validate();
    if let Command::CheckConfig = cli.command {
        if problems.is_empty() {
            println!("configuration OK");
            return Ok(ExitCode::SUCCESS);
        }
        for p in &problems {
            eprintln!("error: {p}");
        }
        return Ok(ExitCode::from(1));
    }
    if let Some(p) = problems.first() {
        anyhow::bail!("invalid configuration: {p}");
    }
    init_tracing(&config);
    match cli.command {
        Command::Serve { .. } => {
            let loaded = bootstrap::load(config).await?;
            bootstrap::initial_admin(&loaded.services, &loaded.config.server.data_dir).await?;
            let listener = tokio::net::TcpListener::bind(loaded.config.server.listen)
                .await
                .with_context(|| format!("binding {}", loaded.config.server.listen))?;
            let radius = match loaded.config.radius.listen {
                Some(addr) => {
                    let socket = tokio::net::UdpSocket::bind(addr)
                        .await
                        .with_context(|| format!("binding RADIUS on {addr}"))?;
                    tracing::info!(listen = %socket.local_addr()?, clients = loaded.config.radius.clients.len(), "RADIUS serving");
                    Some(socket)
                }
                None => None,
            };
            let app = otpgate::state::App::new(loaded.services, loaded.config);
            app.warn_about_sinks().await;
            let local = listener.local_addr()?;
            let scheme = if app.config.server.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            let url = if local.ip().is_unspecified() || local.ip().is_loopback() {
                format!("{scheme}://localhost:{}/", local.port())
            } else {
                format!("{scheme}://{local}/")
            };
            tracing::info!(listen = %local, "otpgate serving: admins open {url}ui/admin/login, users sign in at {url}");
            serve::serve_all(listener, radius, app, serve::shutdown_signal()).await?;
            tracing::info!("otpgate stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin {
            command:
                AdminCommand::Add {
                    name,
                    password_stdin,
                    email,
                    mobile,
                },
        } => {
            if !password_stdin {
                anyhow::bail!("give the password on standard input with --password-stdin");
            }
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\n', '\r']);
            let loaded = bootstrap::load(config).await?;
            loaded
                .services
                .add_admin(&name, password)
                .await
                .context("saving the admin")?;
            if email.is_some() || mobile.is_some() {
                loaded
                    .services
                    .set_admin_contact(&name, email.as_deref(), mobile.as_deref())
                    .await
                    .context("saving the admin's contact data")?;
            }
            if name == "admin" {
                bootstrap::forget_initial_password(&loaded.config.server.data_dir);
            }
            println!("admin {name} saved");
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig => Ok(ExitCode::SUCCESS),
        Command::Backup { file } => {
            // A backup of an installation that is not there must not make one.
            let dir = &config.server.data_dir;
            let sqlite_missing = config.server.database_url.is_empty()
                && !dir.join(otpgate::backup::DATABASE_FILE).exists();
            if !dir.join(bootstrap::KEY_FILE).exists() || sqlite_missing {
                anyhow::bail!(
                    "{} holds no otpgate installation (no {} or no database): give --data-dir or --config",
                    dir.display(),
                    bootstrap::KEY_FILE
                );
            }
            let loaded = bootstrap::load(config).await?;
            let written = otpgate::backup::write(&loaded, &file).await?;
            for (name, bytes) in &written.files {
                println!("{name}: {bytes} bytes");
            }
            if written.database_included {
                println!("backup written to {}", file.display());
            } else {
                println!(
                    "keys written to {}; the PostgreSQL database itself: pg_dump (see the README)",
                    file.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let loaded = bootstrap::load(config).await?;
            println!(
                "database schema is up to date ({:?} at {})",
                loaded.services.store().backend(),
                otpgate_store::redact_url(&loaded.config.database_url())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::CopyDb { to } => {
            let loaded = bootstrap::load(config).await?;
            let opts = otpgate_store::ConnectOptions {
                max_connections: 2,
                wait: std::time::Duration::from_secs(loaded.config.server.database_wait_secs),
                // A copy is checked and then used: every commit on disk.
                sqlite_full_sync: true,
                timeout: None,
            };
            let target = otpgate_store::Store::connect_with(&to, &opts)
                .await
                .with_context(|| {
                    format!(
                        "opening the target database {}",
                        otpgate_store::redact_url(&to)
                    )
                })?;
            let report = loaded
                .services
                .store()
                .copy_into(&target)
                .await
                .context("copying the database")?;
            for (table, rows) in report {
                println!("{table}: {rows}");
            }
            println!("copied into {}", otpgate_store::redact_url(&to));
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy { command } => {
            let loaded = bootstrap::load(config).await?;
            let store = loaded.services.store();
            match command {
                PolicyCommand::List => {
                    for p in store.policy_list().await.context("reading the policies")? {
                        let field = |k: &str, v: &str| {
                            if v.is_empty() {
                                String::new()
                            } else {
                                format!(" {k}={v}")
                            }
                        };
                        println!(
                            "{}\tscope={} active={} priority={}{}{}{}{}{}{}\taction={}",
                            p.name,
                            p.scope,
                            p.active,
                            p.priority,
                            field("adminuser", &p.adminuser),
                            field("adminrealm", &p.adminrealm),
                            field("realm", &p.realm),
                            field("resolver", &p.resolver),
                            field("user", &p.user),
                            field("client", &p.client),
                            p.action
                        );
                    }
                }
                PolicyCommand::Disable { name } => {
                    if store.policy_set_active(&name, false).await?.is_none() {
                        anyhow::bail!("there is no policy {name}");
                    }
                    println!("policy {name} disabled");
                }
                PolicyCommand::Delete { name } => {
                    if store.policy_delete(&name).await?.is_none() {
                        anyhow::bail!("there is no policy {name}");
                    }
                    println!("policy {name} deleted");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            command:
                ImportCommand::Privacyidea {
                    pi_config,
                    pi_database_url,
                    pi_enckey,
                    pi_pepper,
                    dry_run,
                },
        } => {
            let source = otpgate::import::Source {
                pi_config,
                database_url: pi_database_url,
                enckey: pi_enckey,
                pepper: pi_pepper,
            };
            let pi = otpgate::import::read(&source).await?;
            let loaded = bootstrap::load(config).await?;
            let dir = loaded.config.server.data_dir.clone();
            let options = otpgate_service::import::ImportOptions {
                dry_run,
                replaceable_admins: otpgate::import::replaceable_admins(&dir, &loaded.services)
                    .await?,
            };
            let report = loaded
                .services
                .import_privacyidea(&pi, &options)
                .await
                .context("importing (nothing was written)")?;
            print!("{}", report.render());
            if !dry_run && report.replaced_admins.iter().any(|a| a == "admin") {
                bootstrap::forget_initial_password(&dir);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            // Loading checks that the current key file opens this database.
            let loaded = bootstrap::load(config).await?;
            let dir = loaded.config.server.data_dir.clone();
            // The new file (old keys plus the new active one) is written first: if the
            // re-encryption fails, every value still opens with it.
            let (text, id) = bootstrap::add_key(&dir, &otpgate_core::OsRandom)?;
            let ring = otpgate_core::secret::KeyRing::parse(&text)?;
            let report = loaded
                .services
                .rotate_keys(&ring)
                .await
                .context("re-encrypting the secrets (the key file already has the new key; run the command again)")?;
            println!(
                "re-encrypted {} OTP seeds, {} gateway secrets, {} SMTP passwords, {} LDAP passwords and {} RADIUS secrets with the new key {id}",
                report.token_keys,
                report.gateway_secrets,
                report.smtp_passwords,
                report.resolver_passwords,
                report.radius_secrets
            );
            println!(
                "copy {} to every node before starting them; the older lines can be removed once no backup made before now is needed",
                dir.join(bootstrap::KEY_FILE).display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    otpgate_gateways::install_crypto_provider();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
