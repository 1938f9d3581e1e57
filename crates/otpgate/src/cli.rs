//! The command line (SPEC §4): `serve`, `admin add NAME --password-stdin`, `check-config`,
//! `import privacyidea`,
//! with the global `--config`, `--data-dir` and `--database-url` and their `OTPGATE_*`
//! environment equivalents.

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// otpgate: a privacyIDEA-compatible SMS one-time-password server.
#[derive(Debug, Parser)]
#[command(name = "otpgate", version, about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "OTPGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (default ./otpgate-data).
    #[arg(long, global = true, env = "OTPGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (default: SQLite file in the data directory).
    #[arg(long, global = true, env = "OTPGATE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (default 127.0.0.1:5000).
    Serve {
        /// Listen address: IP:PORT or HOST:PORT (`localhost:5000`).
        #[arg(long, env = "OTPGATE_LISTEN", value_name = "ADDR", value_parser = crate::config::parse_listen)]
        listen: Option<SocketAddr>,
    },
    /// Manage administrators.
    Admin {
        /// The admin command.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Validate the configuration and exit.
    CheckConfig,
    /// Create or upgrade the database schema and exit (every node also does it at start).
    Migrate,
    /// Write a consistent snapshot of this installation (the SQLite database, taken while the
    /// server runs, and the key files) to FILE, a tar archive readable by its owner only.
    /// Restore: unpack it into an empty data directory. On PostgreSQL the database is
    /// pg_dump's; FILE then holds the keys.
    Backup {
        /// The file to write (it must not exist).
        file: std::path::PathBuf,
    },
    /// Copy the whole database (e.g. the SQLite default) into an empty database at URL
    /// (e.g. PostgreSQL, for several nodes). Ids, secrets and the key check are kept, so the
    /// nodes need this data directory's key files.
    CopyDb {
        /// The target database URL.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// The way back from any set of policies (also one that locks every admin out): list
    /// them, disable or delete one. Works on the database directly, without signing in.
    Policy {
        /// The policy command.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Manage the encryption keys.
    Keys {
        /// The keys command.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Move in from another server.
    Import {
        /// The import command.
        #[command(subcommand)]
        command: ImportCommand,
    },
}

/// Import commands.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a privacyIDEA installation, read from its own database and key file: SMS
    /// tokens (seeds, PINs, counters), realms, user stores, SMS gateways, SMTP and RADIUS
    /// servers, policies, event handlers, settings and admins, in one transaction. Prints
    /// what it imported and everything it did not, with the reason. Running it again imports
    /// only what is new and moves token counters forward.
    Privacyidea {
        /// privacyIDEA's pi.cfg: its SQLALCHEMY_DATABASE_URI, PI_ENCFILE and PI_PEPPER.
        #[arg(long, value_name = "PI_CFG")]
        pi_config: Option<PathBuf>,
        /// privacyIDEA's database (its SQLALCHEMY_DATABASE_URI; sqlite, mysql or
        /// postgresql). Overrides pi.cfg.
        #[arg(long, value_name = "URL")]
        pi_database_url: Option<String>,
        /// privacyIDEA's encryption key file (PI_ENCFILE). Overrides pi.cfg.
        #[arg(long, value_name = "FILE")]
        pi_enckey: Option<PathBuf>,
        /// privacyIDEA's PI_PEPPER, which admin passwords need. Overrides pi.cfg.
        #[arg(
            long,
            env = "OTPGATE_PI_PEPPER",
            value_name = "P",
            hide_env_values = true
        )]
        pi_pepper: Option<String>,
        /// Print the report and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// One line per policy: name, scope, active, priority, who and where it applies, actions.
    List,
    /// Disable the policy NAME.
    Disable {
        /// The policy's name.
        name: String,
    },
    /// Delete the policy NAME.
    Delete {
        /// The policy's name.
        name: String,
    },
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new active key to encryption.keys and re-encrypt every secret in the database
    /// with it (one transaction). Nodes on this data directory follow the file while they
    /// run; nodes on other hosts need the new file before they meet a re-encrypted secret.
    Rotate,
}

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create or replace an admin; the password is the first line of standard input.
    Add {
        /// The admin's login name.
        name: String,
        /// Read the password from standard input (the only way: it never appears in `ps`).
        #[arg(long)]
        password_stdin: bool,
        /// The admin's mail address, for notifications "To: internal admin".
        #[arg(long)]
        email: Option<String>,
        /// The admin's mobile number, for SMS notifications "To: internal admin".
        #[arg(long)]
        mobile: Option<String>,
    },
}

impl Cli {
    /// The configuration: the file (or defaults), then flags and environment on top.
    pub fn resolve_config(&self) -> Result<Config, crate::config::ConfigError> {
        let mut c = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            c.server.data_dir = d.clone();
        }
        if let Some(u) = &self.database_url {
            c.server.database_url = u.clone();
        }
        if let Command::Serve { listen: Some(l) } = &self.command {
            c.server.listen = *l;
        }
        Ok(c)
    }
}
