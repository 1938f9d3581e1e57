//! The configuration file (TOML, strict): process settings only. Runtime settings (gateways,
//! realms, policies, `sms.*`) live in the database and are managed through the API.

use otpgate_core::pin::PinParams;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of the file; only `1` exists.
    #[serde(default = "one")]
    pub version: u32,
    /// HTTP listener and storage.
    #[serde(default)]
    pub server: ServerConfig,
    /// Hashing and limits.
    #[serde(default)]
    pub security: SecurityConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The built-in RADIUS server (off unless `listen` is set).
    #[serde(default)]
    pub radius: RadiusConfig,
    /// Settings of SMS providers.
    #[serde(default)]
    pub providers: ProvidersConfig,
    /// `[web]`: the web interface.
    #[serde(default)]
    pub web: WebConfig,
}

/// `[providers]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// The only directory the Script provider runs scripts from; empty = `<data_dir>/scripts`.
    pub scripts_dir: Option<PathBuf>,
}

impl Config {
    /// The Script provider's directory in effect.
    pub fn scripts_dir(&self) -> PathBuf {
        self.providers
            .scripts_dir
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("scripts"))
    }
}

fn one() -> u32 {
    1
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: 1,
            server: ServerConfig::default(),
            security: SecurityConfig::default(),
            log: LogConfig::default(),
            radius: RadiusConfig::default(),
            providers: ProvidersConfig::default(),
            web: WebConfig::default(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listen address (IP:PORT, or HOST:PORT resolved at start).
    #[serde(deserialize_with = "listen_from_text")]
    pub listen: SocketAddr,
    /// Data directory (keys, SQLite database, sink file).
    pub data_dir: PathBuf,
    /// Database URL; empty = SQLite file `otpgate.sqlite` in the data directory.
    pub database_url: String,
    /// Connections in the database pool (PostgreSQL; SQLite files use the same).
    pub database_max_connections: u32,
    /// Seconds to keep retrying at start-up while the database is not reachable yet.
    pub database_wait_secs: u64,
    /// The longest wait (ms) for a database connection or lock while serving; beyond it the
    /// request is answered 503 and the node refuses calls at once until the database answers
    /// again. One PostgreSQL statement may take five times as long.
    pub database_timeout_ms: u64,
    /// SQLite files: `"normal"` (WAL commits reach the disk at the next checkpoint) or
    /// `"full"` (every commit is on disk before the answer).
    pub sqlite_synchronous: String,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Seconds a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Addresses or CIDR ranges of proxies and application servers allowed to name the end
    /// user's address (privacyIDEA's `client` parameter, or `X-Forwarded-For`).
    pub trusted_proxies: Vec<String>,
    /// Requests per second each client address may make to the anonymous endpoints
    /// (`/validate/*`, `/auth`); 0 = no per-address limit.
    pub rate_limit_per_sec: f64,
    /// How many requests a client address may make at once before the rate applies.
    pub rate_limit_burst: u32,
    /// Seconds a client may take to send a request's headers before the connection is closed.
    pub header_read_timeout_secs: u64,
    /// PEM certificate chain: with `tls_key`, the API is served over HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The base URL other systems reach this server at (`https://otp.example.org`): SMS
    /// gateways get their delivery-receipt URLs (`{dlr_url}`) on it.
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("./otpgate-data"),
            database_url: String::new(),
            database_max_connections: 10,
            database_wait_secs: 30,
            database_timeout_ms: 2000,
            sqlite_synchronous: "normal".into(),
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            trusted_proxies: Vec::new(),
            rate_limit_per_sec: 30.0,
            rate_limit_burst: 60,
            header_read_timeout_secs: 10,
            tls_cert: None,
            tls_key: None,
            public_url: None,
        }
    }
}

/// `[security]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Argon2id parameters of new PIN and password hashes.
    pub pin_hash: PinParams,
    /// Argon2 computations at once; 0 = number of CPUs.
    pub kdf_concurrency: usize,
    /// Argon2 computations that may wait for a turn; more are answered 503 at once.
    pub kdf_queue: usize,
    /// The longest wait for a turn (ms) before the request is answered 503.
    pub kdf_wait_ms: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            pin_hash: PinParams::default(),
            kdf_concurrency: 0,
            kdf_queue: 64,
            kdf_wait_ms: 5000,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace` or a tracing filter; `RUST_LOG` overrides.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// `[web]`: the admin console and user self-service under `/ui/`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the web interface (default true).
    pub enabled: bool,
    /// Seconds a web session lasts without a request (default 3600); each request extends it.
    pub session_secs: i64,
    /// Seconds a web session lasts at most after signing in, however active (default 43200).
    pub session_max_secs: i64,
    /// Mark session cookies `Secure` and name them `__Host-…` (default true). Browsers accept
    /// them over HTTPS and from `http://localhost`; set false only behind a proxy that
    /// terminates TLS on another host and speaks plain HTTP to otpgate over a trusted link.
    pub secure_cookies: bool,
    /// Let a user who has no token yet sign in with the user store password to enroll a
    /// first phone (default false: the password alone would let whoever has it enroll their
    /// own phone). Off: admins enroll first tokens, or a policy does it during a login
    /// (`enroll_via_multichallenge`).
    pub password_enrollment: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_secs: 3600,
            session_max_secs: 43_200,
            secure_cookies: true,
            password_enrollment: false,
        }
    }
}

/// `[radius]`: the built-in RADIUS server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// UDP listen address, e.g. `0.0.0.0:1812`; unset = RADIUS off.
    pub listen: Option<SocketAddr>,
    /// Requests decided at the same time; further datagrams are dropped (the NAS retransmits).
    pub max_in_flight: usize,
    /// The NASes allowed to send requests.
    pub clients: Vec<RadiusClientConfig>,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        Self {
            listen: None,
            max_in_flight: 1024,
            clients: Vec::new(),
        }
    }
}

/// `[[radius.clients]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RadiusClientConfig {
    /// An IP address or a CIDR range.
    pub address: String,
    /// The shared secret (or use `secret_file`).
    #[serde(default)]
    pub secret: Option<String>,
    /// A file whose first line is the shared secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The realm of this client's users (default: the default realm).
    #[serde(default)]
    pub realm: Option<String>,
    /// Drop requests without a valid Message-Authenticator (Blast-RADIUS mitigation).
    #[serde(default = "yes")]
    pub require_message_authenticator: bool,
}

fn yes() -> bool {
    true
}

impl RadiusClientConfig {
    /// The shared secret, from `secret` or the first line of `secret_file`.
    pub fn load_secret(&self) -> Result<Vec<u8>, ConfigError> {
        let secret = match (&self.secret, &self.secret_file) {
            (Some(s), None) => s.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|reason| ConfigError::Read {
                    path: f.clone(),
                    reason,
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "radius client {}: give exactly one of secret and secret_file",
                    self.address
                )));
            }
        };
        if secret.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "radius client {}: the secret is empty",
                self.address
            )));
        }
        Ok(secret.into_bytes())
    }
}

/// Every key of a parsed file that does not fit the schema: each key is tried on its own
/// (every other setting has a default), so one mistake does not hide the next. Each message
/// names the key.
fn schema_errors(table: &toml::Table) -> Vec<String> {
    let one = |section: Option<&str>, key: &str, value: &toml::Value| -> Option<String> {
        let mut t = toml::Table::new();
        match section {
            Some(s) => {
                let mut inner = toml::Table::new();
                inner.insert(key.to_owned(), value.clone());
                t.insert(s.to_owned(), toml::Value::Table(inner));
            }
            None => {
                t.insert(key.to_owned(), value.clone());
            }
        }
        let name = section.map_or_else(|| key.to_owned(), |s| format!("{s}.{key}"));
        toml::Value::Table(t)
            .try_into::<Config>()
            .err()
            // The message's first line (the rest repeats where: the name says it).
            .map(|e| {
                let msg = e.to_string();
                format!("{name}: {}", msg.lines().next().unwrap_or_default().trim())
            })
    };
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(inner) => {
                // A section that is not one: its own error, once.
                if let Some(e) = one(None, k, &toml::Value::Table(toml::Table::new())) {
                    out.push(e);
                    continue;
                }
                for (k2, v2) in inner {
                    out.extend(one(Some(k), k2, v2));
                }
            }
            _ => out.extend(one(None, k, v)),
        }
    }
    out
}

/// A configuration problem, reported all at once by `check-config`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read. (The reason is in the message, not a source as well: an
    /// error chain would print it twice.)
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, column, unknown key).
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Parses a file's text. A file that is TOML but does not fit the schema is reported with
    /// every key that does not fit, not only the first.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|first| {
            let every = text
                .parse::<toml::Table>()
                .ok()
                .map(|t| schema_errors(&t))
                .filter(|all| all.len() > 1);
            ConfigError::Parse {
                path: path.to_owned(),
                message: match every {
                    Some(all) => format!("{} problems:\n  {}", all.len(), all.join("\n  ")),
                    None => first.to_string(),
                },
            }
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
            path: path.to_owned(),
            reason,
        })?;
        Self::parse(&text, path)
    }

    /// Every problem of the values.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        if self.version != 1 {
            errs.push(ConfigError::Invalid(format!(
                "version must be 1, not {}",
                self.version
            )));
        }
        if let Some(u) = &self.server.public_url {
            let rest = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            let ok = rest.is_some_and(|r| {
                let authority = r.split('/').next().unwrap_or_default();
                !authority.is_empty()
                    && !authority.contains('@')
                    && !r.contains(['?', '#'])
                    && !r.chars().any(char::is_whitespace)
            });
            if !ok {
                errs.push(ConfigError::Invalid(format!(
                    "server.public_url must be an http(s) URL without query or credentials, such as https://otp.example.org, not {u:?}"
                )));
            }
        }
        let p = self.security.pin_hash;
        if p.check().is_err() {
            errs.push(ConfigError::Invalid("security.pin_hash: invalid Argon2 parameters (memory_kib >= 8 * parallelism, iterations >= 1)".into()));
        }
        if self.server.max_body_bytes < 1024 {
            errs.push(ConfigError::Invalid(
                "server.max_body_bytes must be at least 1024".into(),
            ));
        }
        if !(60..=86_400).contains(&self.web.session_secs) {
            errs.push(ConfigError::Invalid(
                "web.session_secs must be between 60 and 86400".into(),
            ));
        }
        if !(self.web.session_secs..=604_800).contains(&self.web.session_max_secs) {
            errs.push(ConfigError::Invalid(
                "web.session_max_secs must be at least web.session_secs and at most 604800".into(),
            ));
        }
        if let Err(e) = check_log_level(&self.log.level) {
            errs.push(ConfigError::Invalid(e));
        }
        if !(100..=60_000).contains(&self.server.database_timeout_ms) {
            errs.push(ConfigError::Invalid(
                "server.database_timeout_ms must be between 100 and 60000".into(),
            ));
        }
        if self.server.request_timeout_secs == 0 {
            errs.push(ConfigError::Invalid(
                "server.request_timeout_secs must be at least 1".into(),
            ));
        }
        let r = self.server.rate_limit_per_sec;
        if !r.is_finite() || r < 0.0 {
            errs.push(ConfigError::Invalid(
                "server.rate_limit_per_sec must be 0 (off) or a positive number".into(),
            ));
        }
        if r > 0.0 && self.server.rate_limit_burst == 0 {
            errs.push(ConfigError::Invalid(
                "server.rate_limit_burst must be at least 1 when a rate limit is set".into(),
            ));
        }
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(c), Some(k)) => {
                if let Err(e) = crate::tls::server_config(c, k) {
                    errs.push(ConfigError::Invalid(e));
                }
            }
            (None, None) => {}
            _ => errs.push(ConfigError::Invalid(
                "server.tls_cert and server.tls_key go together".into(),
            )),
        }
        if self.server.header_read_timeout_secs == 0 {
            errs.push(ConfigError::Invalid(
                "server.header_read_timeout_secs must be at least 1".into(),
            ));
        }
        if self.security.kdf_wait_ms == 0 {
            errs.push(ConfigError::Invalid(
                "security.kdf_wait_ms must be at least 1".into(),
            ));
        }
        for p in &self.server.trusted_proxies {
            if otpgate_radius::server::Network::parse(p).is_none() {
                errs.push(ConfigError::Invalid(format!(
                    "server.trusted_proxies: {p:?} is not an address or CIDR range"
                )));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            errs.push(ConfigError::Invalid(format!(
                "log.format must be text or json, not {:?}",
                self.log.format
            )));
        }
        if self.radius.listen.is_some() && self.radius.clients.is_empty() {
            errs.push(ConfigError::Invalid(
                "radius.listen is set but no [[radius.clients]] is configured".into(),
            ));
        }
        if self.radius.max_in_flight == 0 {
            errs.push(ConfigError::Invalid(
                "radius.max_in_flight must be at least 1".into(),
            ));
        }
        for c in &self.radius.clients {
            if otpgate_radius::server::Network::parse(&c.address).is_none() {
                errs.push(ConfigError::Invalid(format!(
                    "radius client address {:?} is not an IP or CIDR",
                    c.address
                )));
            }
            if let Err(e) = c.load_secret() {
                errs.push(e);
            }
        }
        if !self.server.database_url.is_empty()
            && otpgate_store::Backend::of_url(&self.server.database_url).is_none()
        {
            errs.push(ConfigError::Invalid(
                "server.database_url must start with sqlite:// or postgres://".into(),
            ));
        }
        if !matches!(self.server.sqlite_synchronous.as_str(), "normal" | "full") {
            errs.push(ConfigError::Invalid(
                "server.sqlite_synchronous must be \"normal\" or \"full\"".into(),
            ));
        }
        if self.server.database_max_connections == 0 {
            errs.push(ConfigError::Invalid(
                "server.database_max_connections must be at least 1".into(),
            ));
        }
        errs
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        if self.server.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join("otpgate.sqlite").display()
            )
        } else {
            self.server.database_url.clone()
        }
    }
}

/// A listen address: `IP:PORT`, or `HOST:PORT` resolved now (`localhost:5000`; an IPv4
/// address of the name is preferred).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = text.trim().parse::<SocketAddr>() {
        return Ok(a);
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text.trim())
        .map_err(|e| {
            format!("{text:?} is not an address to listen on (IP:PORT or HOST:PORT): {e}")
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?} names no address to listen on"))
}

fn listen_from_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_listen(&text).map_err(serde::de::Error::custom)
}

/// The levels `log.level` names.
const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// `log.level`: a level, or a tracing filter whose every directive names a level
/// (`info,otpgate=debug`). A bare word that is not a level (`verbose`) would be read as a
/// target to show everything of, and the server would log nothing else: refused.
fn check_log_level(level: &str) -> Result<(), String> {
    for directive in level.split(',').map(str::trim) {
        let lvl = directive
            .rsplit_once('=')
            .map_or(directive, |(_, l)| l)
            .trim();
        if !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(lvl)) {
            return Err(format!(
                "log.level: {directive:?} names no level; use one of error, warn, info, debug, trace (or target=level, comma-separated)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_validates() {
        let text = include_str!("../../../config.example.toml");
        let c = Config::parse(text, Path::new("config.example.toml")).unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.server.listen, SocketAddr::from(([127, 0, 0, 1], 5000)));
    }

    #[test]
    fn radius_section() {
        let c = Config::parse(
            "[radius]\nlisten = \"127.0.0.1:1812\"\n[[radius.clients]]\naddress = \"10.0.0.0/8\"\nsecret = \"s\"\nrealm = \"vpn\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert!(c.validate().is_empty());
        assert!(
            c.radius.clients[0].require_message_authenticator,
            "on by default"
        );
        let bad = Config::parse("[radius]\nlisten = \"127.0.0.1:1812\"\n", Path::new("x")).unwrap();
        assert_eq!(bad.validate().len(), 1);
        let bad = Config::parse(
            "[[radius.clients]]\naddress = \"nope\"\nsecret = \"s\"\nsecret_file = \"/x\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(bad.validate().len(), 2);
    }

    #[test]
    fn rate_limits_and_tls_settings() {
        let c = Config::parse(
            "[server]\nrate_limit_per_sec = 10\nrate_limit_burst = 20\n[security]\nkdf_queue = 0\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.server.rate_limit_per_sec, 10.0);
        assert_eq!(c.security.kdf_queue, 0);
        assert!(c.validate().is_empty());
        let mut bad = c.clone();
        bad.server.rate_limit_per_sec = -1.0;
        bad.server.tls_cert = Some(PathBuf::from("/nonexistent/cert.pem"));
        bad.security.kdf_wait_ms = 0;
        let errs: Vec<String> = bad.validate().iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        bad.server.tls_key = Some(PathBuf::from("/nonexistent/key.pem"));
        let errs: Vec<String> = bad.validate().iter().map(ToString::to_string).collect();
        assert!(
            errs.iter().any(|e| e.contains("/nonexistent/cert.pem")),
            "{errs:?}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = Config::parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nlistn = 1\n",
            Path::new("x"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
    }

    #[test]
    fn bad_values_are_all_reported() {
        let mut c = Config {
            version: 2,
            ..Default::default()
        };
        c.log.format = "xml".into();
        c.security.pin_hash.iterations = 0;
        assert_eq!(c.validate().len(), 3);
    }

    #[test]
    fn log_levels_are_levels_or_filters_of_levels() {
        for ok in [
            "info",
            "DEBUG",
            "warn,otpgate=debug",
            "otpgate_service=trace, info",
            "off",
        ] {
            assert!(check_log_level(ok).is_ok(), "{ok}");
        }
        for bad in ["verbose", "info,chatty", "otpgate=loud", ""] {
            assert!(check_log_level(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_addresses_may_name_a_host() {
        assert_eq!(
            parse_listen("localhost:5000").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 5000))
        );
        assert_eq!(
            parse_listen("0.0.0.0:5000").unwrap(),
            SocketAddr::from(([0, 0, 0, 0], 5000))
        );
        assert!(parse_listen("localhost").is_err());
        assert!(parse_listen("no such host.invalid:1").is_err());
        let c: Config = toml::from_str("[server]\nlisten = \"localhost:5001\"\n").unwrap();
        assert_eq!(c.server.listen, SocketAddr::from(([127, 0, 0, 1], 5001)));
    }
}
