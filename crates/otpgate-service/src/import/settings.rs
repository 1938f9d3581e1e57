//! Policies (without the actions otpgate lacks), system settings and admins.

use super::*;

impl Services {
    /// The policies, without the actions otpgate does not have.
    pub(super) async fn plan_policies(&self, p: &mut Plan<'_>) -> Result<()> {
        let conditions = grouped(p.table("policycondition"), "policy_id");
        let descriptions: BTreeMap<String, String> = p
            .table("description")
            .iter()
            .filter(|d| get(d, "object_type") == "policy")
            .map(|d| {
                (
                    get(d, "object_id").to_owned(),
                    get(d, "description").to_owned(),
                )
            })
            .collect();
        for r in p.table("policy") {
            let name = get(r, "name");
            let scope = get(r, "scope");
            let (kept, dropped) = split_actions(scope, get(r, "action"));
            // Admin and user policies restrict by existing: one that vanished could give the
            // admins or users it named every right. Such a policy comes over as a restriction
            // that grants nothing.
            let restricts = grants_nothing(scope);
            if kept.is_empty() && restricts.is_none() {
                p.report.skipped.push(format!(
                    "policy {name} ({scope}): {}",
                    if dropped.is_empty() {
                        "it has no action".to_owned()
                    } else {
                        format!("otpgate has none of its actions: {}", dropped.join(", "))
                    }
                ));
                continue;
            }
            let conds: Vec<serde_json::Value> = conditions
                .get(get(r, "id"))
                .into_iter()
                .flatten()
                .map(|c| {
                    serde_json::json!([
                        get(c, "section"),
                        get(c, "Key"),
                        get(c, "comparator"),
                        get(c, "Value"),
                        flag(c, "active"),
                        c.get("handle_missing_data")
                            .cloned()
                            .unwrap_or_else(|| "raise_error".into()),
                    ])
                })
                .collect();
            let mut input = PolicyInput {
                scope: opt(scope),
                action: Some(if kept.is_empty() {
                    restricts.unwrap_or_default().to_owned()
                } else {
                    kept.join(", ")
                }),
                realm: opt(get(r, "realm")),
                resolver: opt(get(r, "resolver")),
                user: opt(get(r, "user")),
                client: opt(get(r, "client")),
                adminrealm: opt(get(r, "adminrealm")),
                adminuser: opt(get(r, "adminuser")),
                priority: Some(int(r, "priority", 1)),
                active: Some(r.get("active").is_none_or(|v| is_true(v))),
                description: descriptions.get(get(r, "id")).cloned(),
                conditions: Some(serde_json::Value::Array(conds).to_string()),
                time: opt(get(r, "time")),
                check_all_resolvers: Some(flag(r, "check_all_resolvers")),
                user_agents: opt(get(r, "user_agents")),
                user_case_insensitive: Some(flag(r, "user_case_insensitive")),
                pinode: opt(get(r, "pinode")),
            };
            let mut refused = None;
            let row = match self.policy_row(name, &input, &p.radius_names).await {
                Ok(row) => Some(row),
                Err(e) => match restricts {
                    Some(nothing) => {
                        // Kept as a restriction: what otpgate cannot evaluate (client, user
                        // agents, conditions) only widens where it grants nothing.
                        refused = Some(e.to_string());
                        input.action = Some(nothing.to_owned());
                        input.client = Some(String::new());
                        input.user_agents = Some(String::new());
                        input.conditions = Some("[]".to_owned());
                        match self.policy_row(name, &input, &p.radius_names).await {
                            Ok(row) => Some(row),
                            Err(e) => {
                                p.report.skipped.push(format!(
                                    "policy {name} ({scope}): {e} — CHECK the rights of the {scope}s it named: without it they may have more"
                                ));
                                None
                            }
                        }
                    }
                    None => {
                        let check = if scope == "authorization" {
                            " — CHECK it: logins it refused may pass now"
                        } else {
                            ""
                        };
                        p.report
                            .skipped
                            .push(format!("policy {name} ({scope}): {e}{check}"));
                        None
                    }
                },
            };
            let Some(row) = row else {
                continue;
            };
            if row.action == restricts.unwrap_or_default() {
                p.report.notes.push(format!(
                    "policy {name} ({scope}): imported as a restriction that grants nothing ({}), so the {scope}s it names gain no rights",
                    refused.unwrap_or_else(|| format!(
                        "otpgate has none of its actions: {}",
                        dropped.join(", ")
                    ))
                ));
            } else if !dropped.is_empty() {
                p.report.notes.push(format!(
                    "policy {name}: without the actions otpgate does not have: {}",
                    dropped.join(", ")
                ));
            }
            p.b.policies.push(row);
        }
        Ok(())
    }

    /// The system settings otpgate honours.
    pub(super) async fn plan_settings(&self, p: &mut Plan<'_>) -> Result<()> {
        let mut ignored = Vec::new();
        for r in p.table("config") {
            let key = get(r, "Key");
            if key.starts_with("sms.") || HONOURED_CONFIG.contains(&key) {
                if get(r, "Type") == "password" {
                    // otpgate keeps no secret settings: the system API would show it.
                    p.report.skipped.push(format!(
                        "setting {key}: a secret setting (otpgate keeps none in its settings)"
                    ));
                    continue;
                }
                let value = get(r, "Value").to_owned();
                p.b.config.push((
                    key.to_owned(),
                    value,
                    String::new(),
                    get(r, "Description").to_owned(),
                ));
            } else if !key.starts_with("__") {
                ignored.push(key.to_owned());
            }
        }
        if !ignored.is_empty() {
            p.report.skipped.push(format!(
                "settings otpgate does not use: {}",
                ignored.join(", ")
            ));
        }
        Ok(())
    }

    /// The admins, with their peppered password hashes.
    pub(super) async fn plan_admins(&self, p: &mut Plan<'_>) -> Result<()> {
        let mut pepper_needed = false;
        for r in p.table("admin") {
            let name = get(r, "username");
            let hash = get(r, "password");
            if !hash.starts_with('$') || !otpgate_core::pin::is_supported_hash(hash) {
                p.report.skipped.push(format!(
                    "admin {name}: the password hash format is not one otpgate verifies (set a new password with `otpgate admin add`)"
                ));
                continue;
            }
            if !otpgate_core::pin::cost_is_bounded(hash) {
                p.report.skipped.push(format!(
                    "admin {name}: its password hash costs more than otpgate verifies (over 256 MiB, 32 passes or 16 lanes; set a new password with `otpgate admin add`)"
                ));
                continue;
            }
            if p.pi.pepper.is_none() {
                p.report.skipped.push(format!(
                    "admin {name}: PI_PEPPER is needed to keep the password working (give --pi-pepper or --pi-config)"
                ));
                continue;
            }
            pepper_needed = true;
            p.b.admins.push(ImportAdmin {
                name: name.to_owned(),
                hash: peppered_hash(&p.pi.source, hash),
                email: get(r, "email").to_owned(),
            });
        }
        if let (true, Some(pepper)) = (pepper_needed, &p.pi.pepper) {
            let key = pepper_meta_key(&p.pi.source);
            let sealed = self
                .keys()
                .seal_str(self.rng(), pepper, &pepper_aad(&key))?;
            p.b.meta.push((key, sealed));
        }
        Ok(())
    }
}

/// An action that keeps a policy of `scope` as a restriction granting nothing (only an
/// exclusion: it grants no right, and its existence restricts), for the scopes where a
/// missing policy would grant everything.
fn grants_nothing(scope: &str) -> Option<&'static str> {
    match scope {
        "admin" => Some("-tokenlist"),
        "user" => Some("-enrollSMS"),
        _ => None,
    }
}

/// The actions of `action` otpgate has for `scope`, and those it has not. Actions are
/// separated by commas that are not escaped (`\,` belongs to a value, as in privacyIDEA).
fn split_actions(scope: &str, action: &str) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in action.chars() {
        if c == ',' && !escaped {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
        escaped = c == '\\' && !escaped;
    }
    parts.push(current);
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if check_actions(scope, part).is_ok() {
            kept.push(part.to_owned());
        } else {
            dropped.push(part.split('=').next().unwrap_or(part).trim().to_owned());
        }
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_actions_are_split_off() {
        let (kept, dropped) = split_actions(
            "authentication",
            "otppin=userstore, hotp_hashlib=sha256, smstext=Code {otp}",
        );
        assert_eq!(kept, vec!["otppin=userstore", "smstext=Code {otp}"]);
        assert_eq!(dropped, vec!["hotp_hashlib"]);
        let (kept, _) = split_actions(
            "authentication",
            "smstext=Code {otp}\\, valid 5 min, passthru",
        );
        assert_eq!(kept, vec!["smstext=Code {otp}\\, valid 5 min", "passthru"]);
        let (kept, dropped) = split_actions("webui", "login_mode=privacyIDEA");
        assert!(kept.is_empty());
        assert_eq!(dropped, vec!["login_mode"]);
    }
}
