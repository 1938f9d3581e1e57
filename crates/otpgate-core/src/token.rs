//! The one rule of whether a token can take part in a login, shared by the check, the
//! trigger, the event conditions, self-service and the console.

/// The facts of a token that decide whether it may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState<'a> {
    /// Enabled by an admin.
    pub active: bool,
    /// Revoked (for good).
    pub revoked: bool,
    /// Failed attempts counted.
    pub failcount: i64,
    /// The lockout threshold.
    pub maxfail: i64,
    /// privacyIDEA's rollout state (`enrolled`, `verify`, `clientwait`, or empty).
    pub rollout_state: &'a str,
}

/// Why a token cannot be used, in the order privacyIDEA reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// Revoked tokens are never used again.
    Revoked,
    /// Disabled by an admin.
    Disabled,
    /// The fail counter reached its maximum.
    Locked,
    /// The enrollment is not finished (waiting for verification or for the client).
    NotEnrolled,
}

impl Unfit {
    /// privacyIDEA's message for a login with this token.
    pub fn message(self) -> &'static str {
        match self {
            Unfit::Revoked => "Token is revoked",
            Unfit::Disabled => "Token is disabled",
            Unfit::Locked => "Failcounter exceeded",
            Unfit::NotEnrolled => "Token is not yet enrolled",
        }
    }
}

impl TokenState<'_> {
    /// The fail counter is at its maximum.
    pub fn locked(&self) -> bool {
        self.failcount >= self.maxfail
    }

    /// The enrollment is not finished.
    pub fn pending(&self) -> bool {
        matches!(self.rollout_state, "clientwait" | "verify")
    }

    /// Why the token cannot be used for a login, or None when it can.
    pub fn unfit(&self) -> Option<Unfit> {
        if self.revoked {
            Some(Unfit::Revoked)
        } else if !self.active {
            Some(Unfit::Disabled)
        } else if self.locked() {
            Some(Unfit::Locked)
        } else if self.pending() {
            Some(Unfit::NotEnrolled)
        } else {
            None
        }
    }

    /// The token can be used for a login.
    pub fn usable(&self) -> bool {
        self.unfit().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(active: bool, failcount: i64, rollout_state: &str) -> TokenState<'_> {
        TokenState {
            active,
            revoked: false,
            failcount,
            maxfail: 3,
            rollout_state,
        }
    }

    #[test]
    fn the_first_reason_wins() {
        assert_eq!(state(true, 0, "enrolled").unfit(), None);
        assert_eq!(state(true, 0, "").unfit(), None);
        assert_eq!(state(false, 3, "verify").unfit(), Some(Unfit::Disabled));
        assert_eq!(state(true, 3, "verify").unfit(), Some(Unfit::Locked));
        assert_eq!(state(true, 2, "verify").unfit(), Some(Unfit::NotEnrolled));
        assert_eq!(
            state(true, 2, "clientwait").unfit(),
            Some(Unfit::NotEnrolled)
        );
        let revoked = TokenState {
            revoked: true,
            ..state(false, 3, "verify")
        };
        assert_eq!(revoked.unfit(), Some(Unfit::Revoked));
        assert_eq!(Unfit::Locked.message(), "Failcounter exceeded");
    }
}
