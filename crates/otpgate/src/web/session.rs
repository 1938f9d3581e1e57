//! The signed-in browser, as its session cookie says.

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Login name.
    pub username: String,
    /// Realm (empty for admins).
    pub realm: String,
    /// `admin` or `user`.
    pub role: String,
    /// Session id (signing out records it).
    pub sid: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Sign-in time, Unix seconds (the session ends `web.session_max_secs` after it).
    pub since: i64,
    /// The admin menu's pages this admin may open (filled by [`Web::admin`]).
    pub allowed: Vec<&'static str>,
}
