//! Attempt accounting: every attempt is counted against each token's fail counter before any
//! PIN or OTP is checked (one conditional statement per token), then kept as a failure or
//! given back; lockouts, their timed clearing and privacyIDEA's `count_auth` token info.

use super::{Ctx, Live};
use crate::settings::SystemConfig;
use crate::{Result, ServiceError, Services};
use otpgate_core::hotp::HashLib;
use otpgate_store::{Reserve, TokenRow};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Token info: how many lockouts in a row were lifted automatically (the next lasts longer).
pub(super) const CLEARS: &str = "failcounter_clears";

/// The first wait for attempts in flight to settle when a token's fail counter is full of
/// them (doubled each time).
const CROWD_FIRST_WAIT: Duration = Duration::from_millis(5);

/// The longest wait for attempts in flight (then the token counts as locked).
const CROWD_PATIENCE: Duration = Duration::from_secs(2);

/// Waiting for a fail counter full of attempts in flight rather than of failures.
///
/// Every attempt is counted before it is judged, so 20 parallel logins with the right PIN
/// fill a counter of 10 for a moment: the other 10 would be told "Failcounter exceeded"
/// although the token is not locked out. A lockout by failures is always noted
/// (`failcounter_exceeded`, set by the failure that reached the maximum); a full counter
/// without that note is waited for (5 ms, doubled, at most [`CROWD_PATIENCE`] in all) until
/// the attempts in flight settle.
#[derive(Debug)]
pub(super) struct Crowd {
    wait: Duration,
    waited: Duration,
}

impl Default for Crowd {
    fn default() -> Self {
        Self {
            wait: CROWD_FIRST_WAIT,
            waited: Duration::ZERO,
        }
    }
}

impl Crowd {
    /// Waits for `t`'s attempts in flight when that is the reason it is full; false when
    /// it is locked out (or the patience is used up).
    pub(super) async fn wait_for(&mut self, services: &Services, t: &TokenRow) -> Result<bool> {
        if self.waited >= CROWD_PATIENCE || services.store().token_locked_out(t.id).await? {
            return Ok(false);
        }
        tokio::time::sleep(self.wait).await;
        self.waited += self.wait;
        self.wait *= 2;
        Ok(true)
    }
}

impl Services {
    pub(super) fn live(&self, row: TokenRow) -> Result<Live> {
        let key = self
            .keys()
            .open(&row.key_enc, &crate::tokens::key_aad(&row.serial))
            .map_err(|_| {
                ServiceError::Internal(format!(
                    "The key of token {} cannot be decrypted.",
                    row.serial
                ))
            })?;
        let hash = HashLib::parse(
            row.info
                .get("hashlib")
                .map(String::as_str)
                .unwrap_or("sha1"),
        )
        .unwrap_or_default();
        Ok(Live {
            row,
            key,
            hash,
            fails: (0, 0),
            settled: AtomicBool::new(true),
        })
    }

    /// privacyIDEA's `failcounter_clear_timeout`: a lockout older than the configured minutes
    /// is lifted (lazily, when the token is next used). With `failcounter_clear_backoff`
    /// (otpgate's default) the `n`-th lockout in a row — no login in between — lasts
    /// `2^(n-1)` times as long (at most a year), so lockouts cannot be used to lock a user out
    /// for good, nor lifted often enough to guess on: 100 failures in a row take a week at the
    /// defaults. One conditional statement, so two nodes cannot both lift it and lose a
    /// failure counted in between.
    pub(super) async fn clear_expired_lockout(
        &self,
        t: &mut TokenRow,
        cfg: &SystemConfig,
    ) -> Result<()> {
        if cfg.failcounter_clear_minutes <= 0 || t.failcount < t.maxfail {
            return Ok(());
        }
        let Some(since) = t
            .info
            .get("failcounter_exceeded")
            .and_then(|v| chrono::DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M%z").ok())
        else {
            return Ok(());
        };
        let cleared: i64 = t
            .info
            .get(CLEARS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            .clamp(0, 62);
        let minutes = if cfg.failcounter_clear_backoff {
            cfg.failcounter_clear_minutes
                .saturating_mul(1_i64 << cleared.min(20))
                .min(crate::settings::MAX_CLEAR_MINUTES)
        } else {
            cfg.failcounter_clear_minutes
        };
        let lifted_at = since.checked_add_signed(chrono::Duration::minutes(minutes));
        if lifted_at.is_some_and(|at| self.clock().now() >= at)
            && self
                .store()
                .token_clear_lockout(t.id, t.failcount, CLEARS, cleared + 1)
                .await?
        {
            t.failcount = 0;
            t.info.remove("failcounter_exceeded");
            t.info.insert(CLEARS.into(), (cleared + 1).to_string());
        }
        Ok(())
    }

    /// A login succeeded: lockouts start over at `failcounter_clear_timeout`.
    pub(super) async fn forget_lockouts(&self, t: &TokenRow) -> Result<()> {
        if t.info.contains_key(CLEARS) {
            self.store().token_delete_info(t.id, CLEARS).await?;
        }
        Ok(())
    }

    /// privacyIDEA's `count_auth` token info after a failed OTP attempt (a success counts
    /// with its challenge's consumption, [`Services::last_auth`]).
    async fn record_failed_auth(&self, t: &TokenRow) -> Result<()> {
        Ok(self.store().token_count_auth(t.id, false, "").await?)
    }

    /// The `last_auth` token info a successful login of `t` records (with privacyIDEA's
    /// `count_auth` and `count_auth_success`): now, or its old value when it is `stale` — a
    /// token whose last login is older than the `last_auth` policy allows keeps it, so the
    /// refused login does not make the next one pass.
    pub(super) fn last_auth(&self, t: &TokenRow, stale: bool) -> String {
        match t.info.get("last_auth") {
            Some(old) if stale => old.clone(),
            _ => self
                .clock()
                .now()
                .format("%Y-%m-%d %H:%M:%S%.6f%z")
                .to_string(),
        }
    }

    /// Reserves this attempt on every token's fail counter *before* any PIN or OTP is checked,
    /// one conditional UPDATE per token, counted as a failure until it is given back
    /// ([`Services::release`]). Parallel guesses therefore get no more answers than the lockout
    /// allows. Tokens at their maximum are left out, and so are tokens the verify back-off
    /// still holds (the latest such time is returned).
    pub(super) async fn reserve(
        &self,
        tokens: Vec<TokenRow>,
        cfg: &SystemConfig,
    ) -> Result<(Vec<Live>, Option<i64>)> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut held: Option<i64> = None;
        let (backoff_ms, now) = (cfg.verify_backoff_secs * 1000, self.clock().now_ms());
        for row in tokens {
            let mut crowd = Crowd::default();
            loop {
                match self
                    .store()
                    .token_reserve_attempt(row.id, backoff_ms, now)
                    .await?
                {
                    Reserve::Reserved(fails, max) => {
                        let mut live = self.live(row)?;
                        live.fails = (fails, max);
                        live.settled = AtomicBool::new(false);
                        out.push(live);
                    }
                    Reserve::BackOff { until_ms } => {
                        held = Some(held.map_or(until_ms, |h| h.max(until_ms)));
                    }
                    Reserve::Saturated if crowd.wait_for(self, &row).await? => continue,
                    Reserve::Saturated => {}
                }
                break;
            }
        }
        Ok((out, held))
    }

    /// Gives reserved attempts back (they were no failures).
    pub(super) async fn release(&self, tokens: &[&Live]) -> Result<()> {
        for t in tokens {
            if !t.settled.swap(true, Ordering::Relaxed) {
                self.store().token_release_failcount(t.row.id).await?;
            }
        }
        Ok(())
    }

    /// Keeps reserved attempts as failures: notes a reached lockout and, for OTP attempts,
    /// privacyIDEA's `count_auth`. The failure time is noted only while the verify back-off
    /// is on (it is its only reader), so failures cost no extra write otherwise.
    pub(super) async fn keep(
        &self,
        tokens: &[&Live],
        otp_attempt: bool,
        cfg: &SystemConfig,
    ) -> Result<()> {
        let now = self.clock().now_ms();
        for t in tokens {
            t.settled.store(true, Ordering::Relaxed);
            if cfg.verify_backoff_secs > 0 {
                self.store().token_note_failure(t.row.id, now).await?;
            }
            if t.fails.0 >= t.fails.1 {
                let stamp = self.clock().now().format("%Y-%m-%dT%H:%M%z").to_string();
                self.store()
                    .token_set_info(t.row.id, "failcounter_exceeded", &stamp)
                    .await?;
            }
            if otp_attempt {
                self.record_failed_auth(&t.row).await?;
            }
        }
        Ok(())
    }

    /// Counts one failure outside the reserve/keep accounting
    /// (`increase_failcounter_on_challenge`), noting a reached lockout.
    pub(super) async fn count_failure(&self, t: &TokenRow, cfg: &SystemConfig) -> Result<()> {
        if cfg.verify_backoff_secs > 0 {
            self.store()
                .token_note_failure(t.id, self.clock().now_ms())
                .await?;
        }
        if let Some((n, max)) = self.store().token_inc_failcount(t.id).await?
            && n >= max
        {
            let stamp = self.clock().now().format("%Y-%m-%dT%H:%M%z").to_string();
            self.store()
                .token_set_info(t.id, "failcounter_exceeded", &stamp)
                .await?;
        }
        Ok(())
    }

    /// One Argon2 verification against a hash no PIN matches, made with the current PIN-hash
    /// parameters: as much work as a wrong PIN, for answers that must not tell an unknown user
    /// from a wrong PIN by the time they take.
    pub async fn equal_cost_pin_check(&self, pass: &str) -> Result<()> {
        let hash = self.dummy_pin_hash().await?;
        let _ = self.verify_secret(pass, &hash).await?;
        Ok(())
    }

    /// Whether `pin` is the token's PIN, as `otppin` says: its own PIN (Argon2), the user
    /// store password, or nothing.
    pub(super) async fn pin_matches(&self, t: &TokenRow, pin: &str, ctx: &Ctx<'_>) -> Result<bool> {
        match ctx.text("otppin")?.as_deref() {
            Some("userstore") => match ctx.user {
                Some(u) => self.check_user_password(u, pin).await,
                None => Ok(false),
            },
            Some("none") => Ok(pin.is_empty()),
            _ => {
                let ok = self.verify_secret(pin, &t.pin_hash).await?;
                if ok {
                    self.upgrade_pin_hash(t.id, &t.pin_hash, pin).await;
                }
                Ok(ok)
            }
        }
    }

    /// After a right PIN: replaces a hash made elsewhere or with other costs (an imported
    /// privacyIDEA hash) by one with the current parameters, only if it is still the one that
    /// was checked. A failure is logged; the login does not depend on it.
    async fn upgrade_pin_hash(&self, token_id: i64, old: &str, pin: &str) {
        if !otpgate_core::pin::needs_rehash(old, &self.pin_params()) {
            return;
        }
        let result = async {
            let new = self.hash_secret(pin).await?;
            self.store()
                .token_replace_pin_hash(token_id, old, &new)
                .await?;
            Result::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not replace a PIN hash with one of the current parameters");
        }
    }
}
