//! SMS tokens: seeds sealed anew, PINs in a form otpgate verifies, state and counters kept.

use super::*;

impl Services {
    /// The SMS tokens: seeds sealed anew, PINs in a form otpgate verifies.
    pub(super) async fn plan_tokens(&self, p: &mut Plan<'_>) -> Result<()> {
        let infos = grouped(p.table("tokeninfo"), "token_id");
        let owners = grouped(p.table("tokenowner"), "token_id");
        let token_realms = grouped(p.table("tokenrealm"), "token_id");
        let mut empty_pin: Option<String> = None;
        for r in p.table("token") {
            let serial = get(r, "serial").to_owned();
            let id = get(r, "id");
            let tokentype = get(r, "tokentype").to_ascii_lowercase();
            if tokentype != "sms" {
                p.report.skipped.push(format!(
                    "token {serial} ({tokentype}): otpgate serves SMS tokens only"
                ));
                continue;
            }
            let owner = owners.get(id).and_then(|o| o.first()).map(|o| TokenOwner {
                resolver: get(o, "resolver").to_owned(),
                user_id: get(o, "user_id").to_owned(),
                realm: p
                    .realm_names
                    .get(get(o, "realm_id"))
                    .cloned()
                    .unwrap_or_default(),
            });
            if let Some(o) = &owner
                && (!p.resolvers.contains(&o.resolver) || !p.realms.contains(&o.realm))
            {
                p.report.skipped.push(format!(
                    "token {serial}: its owner's user store {} or realm {} was not imported",
                    o.resolver, o.realm
                ));
                continue;
            }
            let seed =
                p.pi.keys
                    .token_seed(get(r, "key_enc"), get(r, "key_iv"))
                    .map_err(|e| ServiceError::Parameter(format!("token {serial}: {e}")))?;
            let key_enc = self
                .keys()
                .seal(self.rng(), &seed, &crate::tokens::key_aad(&serial))?;
            if !otpgate_core::pin::cost_is_bounded(get(r, "pin_hash").trim()) {
                p.report.skipped.push(format!(
                    "token {serial}: its PIN hash costs more than otpgate verifies (over 256 MiB, 32 passes or 16 lanes)"
                ));
                continue;
            }
            let pin_hash = match self.import_pin(p.pi, r, &mut empty_pin).await? {
                Some(h) => h,
                None => {
                    p.report.skipped.push(format!(
                        "token {serial}: its PIN hash is in a format otpgate does not know"
                    ));
                    continue;
                }
            };
            let mut info = BTreeMap::new();
            for i in infos.get(id).into_iter().flatten() {
                let key = get(i, "Key");
                if get(i, "Type") == "password" {
                    p.report.notes.push(format!(
                        "token {serial}: encrypted token info {key} left out"
                    ));
                    continue;
                }
                info.insert(key.to_owned(), get(i, "Value").to_owned());
            }
            let mut own_realms: Vec<String> = token_realms
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|t| p.realm_names.get(get(t, "realm_id")).cloned())
                .filter(|n| p.realms.contains(n))
                .collect();
            own_realms.sort();
            own_realms.dedup();
            let mut description = get(r, "description").to_owned();
            if description.chars().count() > 80 {
                description = description.chars().take(80).collect();
            }
            p.b.tokens.push(ImportToken {
                token: NewToken {
                    serial,
                    tokentype: "sms".into(),
                    description,
                    key_enc,
                    pin_hash,
                    otplen: int(r, "otplen", 6),
                    maxfail: int(r, "maxfail", 10),
                    count_window: int(r, "count_window", 10),
                    sync_window: int(r, "sync_window", 1000),
                    rollout_state: get(r, "rollout_state").to_owned(),
                    info,
                    owner,
                },
                active: flag(r, "active"),
                revoked: flag(r, "revoked"),
                locked: flag(r, "locked"),
                failcount: int(r, "failcount", 0),
                count: int(r, "count", 0),
                realms: own_realms,
            });
        }
        Ok(())
    }

    /// A token's PIN hash in a form otpgate verifies; None for an unknown format.
    pub(super) async fn import_pin(
        &self,
        pi: &PiInstallation,
        r: &PiRow,
        empty_pin: &mut Option<String>,
    ) -> Result<Option<String>> {
        let stored = get(r, "pin_hash").trim();
        if stored.is_empty() {
            // privacyIDEA compares an empty hash with the PIN itself: only "" matches.
            if empty_pin.is_none() {
                *empty_pin = Some(self.hash_secret("").await?);
            }
            return Ok(empty_pin.clone());
        }
        if let Some(enc) = stored.strip_prefix("@@") {
            let pin = pi.keys.decrypt_value(TOKEN_SLOT, enc).map_err(|e| {
                ServiceError::Parameter(format!(
                    "token {}: its encrypted PIN: {e}",
                    get(r, "serial")
                ))
            })?;
            return Ok(Some(self.hash_secret(&pin).await?));
        }
        if otpgate_core::pin::is_supported_hash(stored) {
            return Ok(Some(stored.to_owned()));
        }
        let seed = get(r, "pin_seed").trim();
        if stored.len() == 64 && stored.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Ok(Some(format!(
                "{}{seed}${stored}",
                otpgate_core::pin::PI_LEGACY_SHA256
            )));
        }
        Ok(None)
    }
}
