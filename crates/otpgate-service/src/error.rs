//! The service error: each variant is one of privacyIDEA's error classes, so the HTTP layer
//! maps it to the right code, message and status in one place.

use otpgate_store::StoreError;

/// Why a call could not be carried out. Messages never contain secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// A missing or invalid parameter (privacyIDEA ParameterError, 905).
    #[error("ERR905: {0}")]
    Parameter(String),
    /// A parameter is missing or its value is refused (ParameterError, 905), with the
    /// parameter's name: a form puts the message at that field.
    #[error("ERR905: {message}")]
    Invalid {
        /// The parameter (the form field).
        field: String,
        /// Why, as a sentence of its own.
        message: String,
    },
    /// An unknown user (UserError, 904).
    #[error("ERR904: {0}")]
    User(String),
    /// A token administration error (TokenAdminError, 301).
    #[error("ERR301: {0}")]
    TokenAdmin(String),
    /// A token administration error with privacyIDEA's own id (1103: already assigned, 1016
    /// and 1017: no unique token to copy from or to).
    #[error("ERR{0}: {1}")]
    TokenAdminId(i64, String),
    /// All of a user's tokens are revoked (1007).
    #[error("ERR1007: This action is not possible, since the token is locked")]
    TokenLocked,
    /// A user store cannot answer, e.g. the directory is down (ResolverError, 907).
    #[error("ERR907: {0}")]
    Resolver(String),
    /// A configuration error (ConfigAdminError, 302).
    #[error("ERR302: {0}")]
    ConfigAdmin(String),
    /// Something addressed by the request does not exist (ResourceNotFoundError, 601).
    #[error("{0}")]
    NotFound(String),
    /// A login refused by the authorization policy `authorized=deny_access` (ValidateError,
    /// 401, answered with HTTP 400).
    #[error("ERR401: {0}")]
    Validate(String),
    /// A policy forbids the action (PolicyError, 303).
    #[error("{0}")]
    Policy(String),
    /// Authentication of the caller failed (AuthError, 4031–4306).
    #[error("{message}")]
    Auth {
        /// privacyIDEA's code.
        code: i64,
        /// The message.
        message: String,
    },
    /// `exception=1` was given and the SMS could not be sent: privacyIDEA answers 500.
    #[error("The SMS could not be sent.")]
    SendFailed,
    /// The request body is larger than the server takes (413).
    #[error("{0}")]
    TooLarge(String),
    /// The database is unavailable.
    #[error("The service is temporarily unavailable.")]
    Unavailable,
    /// Too much PIN-hash work is queued; the request is refused rather than queued (503).
    #[error("The server is busy. Please try again later.")]
    Busy,
    /// A bug or an unexpected failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return ServiceError::Unavailable;
        }
        match e {
            StoreError::Conflict(m) => ServiceError::Parameter(m),
            StoreError::InUse(m) => ServiceError::ConfigAdmin(m),
            StoreError::NotFound(what) => {
                ServiceError::NotFound(format!("The requested {what} could not be found."))
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<otpgate_core::CoreError> for ServiceError {
    fn from(e: otpgate_core::CoreError) -> Self {
        match e {
            otpgate_core::CoreError::PolicyConflict(m) | otpgate_core::CoreError::PinPolicy(m) => {
                ServiceError::Policy(m)
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl ServiceError {
    /// privacyIDEA's numeric error code.
    pub fn code(&self) -> i64 {
        match self {
            ServiceError::Parameter(_) | ServiceError::Invalid { .. } => 905,
            ServiceError::User(_) => 904,
            ServiceError::TokenAdmin(_) => 301,
            ServiceError::TokenAdminId(id, _) => *id,
            ServiceError::TokenLocked => 1007,
            ServiceError::ConfigAdmin(_) => 302,
            ServiceError::Resolver(_) => 907,
            ServiceError::NotFound(_) => 601,
            ServiceError::Policy(_) => 303,
            ServiceError::Validate(_) => 401,
            ServiceError::Auth { code, .. } => *code,
            ServiceError::TooLarge(_) => -413,
            ServiceError::Unavailable | ServiceError::Busy => -503,
            ServiceError::SendFailed | ServiceError::Internal(_) => -500,
        }
    }

    /// The HTTP status privacyIDEA uses for this class.
    pub fn http_status(&self) -> u16 {
        match self {
            ServiceError::Auth { .. } => 401,
            ServiceError::Policy(_) => 403,
            ServiceError::NotFound(_) => 404,
            ServiceError::TooLarge(_) => 413,
            ServiceError::Unavailable | ServiceError::Busy => 503,
            ServiceError::SendFailed | ServiceError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// A missing parameter.
    pub fn missing(name: &str) -> Self {
        ServiceError::Invalid {
            field: name.to_owned(),
            message: format!("Missing parameter: {name}"),
        }
    }

    /// A refused value of parameter `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The parameter a refusal is about, when it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}
