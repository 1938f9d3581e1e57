//! User stores and realms: the resolver types otpgate has, with their bind passwords, and
//! the realms that hold them.

use super::*;

impl Services {
    /// The user stores otpgate has (passwd, LDAP), bind passwords opened.
    pub(super) async fn plan_resolvers(&self, p: &mut Plan<'_>) -> Result<()> {
        let resolver_config = grouped(p.table("resolverconfig"), "resolver_id");
        for r in p.table("resolver") {
            let name = get(r, "name");
            let rtype = get(r, "rtype");
            let mut params = BTreeMap::new();
            for c in resolver_config.get(get(r, "id")).into_iter().flatten() {
                let mut v = get(c, "Value").to_owned();
                if get(c, "Type") == "password" && !v.is_empty() {
                    v = self.open_password(p.pi, &v, &format!("resolver {name}"))?;
                }
                params.insert(get(c, "Key").to_owned(), v);
            }
            match self.import_resolver(name, rtype, &params).await {
                Ok(res) => {
                    p.resolvers.insert(name.to_owned());
                    p.b.resolvers.push(res);
                }
                Err(why) => p
                    .report
                    .skipped
                    .push(format!("resolver {name} ({rtype}): {why}")),
            }
        }
        Ok(())
    }

    /// The realms, with the imported resolvers they hold.
    pub(super) async fn plan_realms(&self, p: &mut Plan<'_>) -> Result<()> {
        let resolver_names: BTreeMap<String, String> = p
            .table("resolver")
            .iter()
            .map(|r| (get(r, "id").to_owned(), get(r, "name").to_owned()))
            .collect();
        let members = grouped(p.table("resolverrealm"), "realm_id");
        for r in p.table("realm") {
            let name = get(r, "name").to_owned();
            let mut list: Vec<(String, Option<i64>)> = Vec::new();
            for m in members.get(get(r, "id")).into_iter().flatten() {
                let Some(res) = resolver_names.get(get(m, "resolver_id")) else {
                    continue;
                };
                if !get(m, "node_uuid").trim().is_empty() {
                    p.report.notes.push(format!(
                        "realm {name}: resolver {res} was set for one node only; otpgate's nodes are alike, so it serves the realm on every node"
                    ));
                }
                if !p.resolvers.contains(res) {
                    p.report.notes.push(format!(
                        "realm {name}: without resolver {res} (not imported)"
                    ));
                    continue;
                }
                if !list.iter().any(|(n, _)| n == res) {
                    list.push((res.clone(), get(m, "priority").trim().parse().ok()));
                }
            }
            if list.is_empty() {
                p.report
                    .skipped
                    .push(format!("realm {name}: none of its resolvers was imported"));
                continue;
            }
            if flag(r, "default") {
                p.b.default_realm = Some(name.clone());
            }
            p.b.realms.push(ImportRealm {
                name,
                resolvers: list,
            });
        }
        p.realms = p.b.realms.iter().map(|r| r.name.clone()).collect();
        Ok(())
    }

    /// A resolver as otpgate keeps it, or why it cannot.
    pub(super) async fn import_resolver(
        &self,
        name: &str,
        rtype: &str,
        params: &BTreeMap<String, String>,
    ) -> std::result::Result<ImportResolver, String> {
        if !crate::valid_name(name) {
            return Err("otpgate's resolver names are letters, digits, _ . and -".into());
        }
        let (config, secret) = match rtype {
            "passwdresolver" => {
                let file = params
                    .get("fileName")
                    .or_else(|| params.get("filename"))
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .ok_or("it has no fileName")?;
                crate::users::checked_passwd_path(std::path::Path::new(&file), self.data_dir())?;
                (serde_json::json!({ "fileName": file }), String::new())
            }
            "ldapresolver" => self
                .ldap_resolver_config(name, params, None)
                .await
                .map_err(|e| e.to_string())?,
            other => {
                return Err(format!(
                    "otpgate has no {other}; its user stores are passwdresolver and ldapresolver"
                ));
            }
        };
        Ok(ImportResolver {
            name: name.to_owned(),
            rtype: rtype.to_owned(),
            config: config.to_string(),
            secret,
        })
    }
}
