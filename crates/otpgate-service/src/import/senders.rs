//! What sends: SMTP and RADIUS servers, SMS gateways and event handlers, checked as their
//! endpoints check them, their secrets opened and sealed anew.

use super::*;

impl Services {
    /// The SMTP and RADIUS servers, passwords opened.
    pub(super) async fn plan_servers(&self, p: &mut Plan<'_>) -> Result<()> {
        for r in p.table("smtpserver") {
            let id = get(r, "identifier");
            let password =
                self.open_server_secret(p.pi, get(r, "password"), &format!("SMTP server {id}"))?;
            if flag(r, "smime") {
                p.report.notes.push(format!(
                    "SMTP server {id}: otpgate does not sign mail with S/MIME; it sends unsigned"
                ));
            }
            let input = SmtpInput {
                server: opt(get(r, "server")),
                port: Some(int(r, "port", 25)),
                timeout: Some(int(r, "timeout", 10).clamp(1, 120)),
                sender: opt(get(r, "sender")),
                username: opt(get(r, "username")),
                password: Some(password),
                tls: Some(flag(r, "tls")),
                tls_verify: Some(true),
                description: opt(get(r, "description")),
                enqueue_job: Some(flag(r, "enqueue_job")),
            };
            match self.smtp_row(id, &input).await {
                Ok(row) => p.b.smtp.push(row),
                Err(e) => p.report.skipped.push(format!("SMTP server {id}: {e}")),
            }
        }
        for r in p.table("radiusserver") {
            let id = get(r, "identifier");
            let secret =
                self.open_server_secret(p.pi, get(r, "secret"), &format!("RADIUS server {id}"))?;
            let input = RadiusInput {
                server: opt(get(r, "server")),
                port: Some(int(r, "port", 1812)),
                secret: Some(secret),
                retries: Some(int(r, "retries", 3)),
                timeout: Some(int(r, "timeout", 5)),
                description: opt(get(r, "description")),
                dictionary: opt(get(r, "dictionary")),
            };
            match self.radius_row(id, &input).await {
                Ok(row) => p.b.radius.push(row),
                Err(e) => p.report.skipped.push(format!("RADIUS server {id}: {e}")),
            }
        }
        p.smtp_names = p.b.smtp.iter().map(|s| s.identifier.clone()).collect();
        p.radius_names = p.b.radius.iter().map(|s| s.identifier.clone()).collect();
        Ok(())
    }

    /// The SMS gateways (a FAILOVER may name a gateway defined after it: two passes).
    pub(super) async fn plan_gateways(&self, p: &mut Plan<'_>) -> Result<()> {
        let gw_options = grouped(p.table("smsgatewayoption"), "gateway_id");
        let mut inputs = Vec::new();
        for r in p.table("smsgateway") {
            let name = get(r, "identifier");
            let mut input = GatewayInput {
                name: opt(name),
                module: opt(get(r, "providermodule")),
                description: opt(get(r, "description")),
                ..GatewayInput::default()
            };
            for o in gw_options.get(get(r, "id")).into_iter().flatten() {
                let mut v = get(o, "Value").to_owned();
                let secret = flag(o, "Encrypted");
                if secret && !v.is_empty() {
                    v = self.open_password(p.pi, &v, &format!("SMS gateway {name}"))?;
                }
                let key = get(o, "Key").to_owned();
                // Only "secret" is taken from privacyIDEA: what it kept in plain text still
                // gets otpgate's default protection (passwords, credentials in a URL,
                // Authorization headers).
                let (map, secrets) = if get(o, "Type") == "header" {
                    (&mut input.headers, &mut input.secret_headers)
                } else {
                    (&mut input.options, &mut input.secret_options)
                };
                if secret {
                    secrets.insert(key.clone(), true);
                }
                map.insert(key, v);
            }
            inputs.push(input);
        }
        p.gateway_names = inputs.iter().filter_map(|i| i.name.clone()).collect();
        for input in &inputs {
            let name = input.name.clone().unwrap_or_default();
            match self
                .gateway_rows(input, &p.gateway_names, &p.smtp_names)
                .await
            {
                Ok(g) => p.b.gateways.push(g),
                Err(e) => p.report.skipped.push(format!("SMS gateway {name}: {e}")),
            }
        }
        Ok(())
    }

    /// The event handlers otpgate runs.
    pub(super) async fn plan_events(&self, p: &mut Plan<'_>) -> Result<()> {
        let ev_options = grouped(p.table("eventhandleroption"), "eventhandler_id");
        let ev_conditions = grouped(p.table("eventhandlercondition"), "eventhandler_id");
        for r in p.table("eventhandler") {
            let name = get(r, "name");
            let kv = |rows: Option<&Vec<&PiRow>>| -> BTreeMap<String, String> {
                rows.into_iter()
                    .flatten()
                    .map(|o| (get(o, "Key").to_owned(), get(o, "Value").to_owned()))
                    .collect()
            };
            let input = HandlerInput {
                id: None,
                name: opt(name),
                events: opt(get(r, "event")),
                handlermodule: opt(get(r, "handlermodule")),
                action: opt(get(r, "action")),
                position: opt(get(r, "position")),
                ordering: Some(int(r, "ordering", 0).max(0)),
                active: Some(r.get("active").is_none_or(|v| is_true(v))),
                options: kv(ev_options.get(get(r, "id"))),
                conditions: kv(ev_conditions.get(get(r, "id"))),
            };
            match self.event_row(&input).await {
                Ok((mut row, warnings)) => {
                    // The source's id: how the store knows this handler on a second run.
                    row.id = int(r, "id", 0);
                    for w in warnings {
                        // The gateway or SMTP server may come with this import.
                        let known = p
                            .gateway_names
                            .iter()
                            .chain(&p.smtp_names)
                            .any(|n| w.contains(&format!(" {n} does not exist")));
                        if !known {
                            p.report.notes.push(format!("event handler {name}: {w}"));
                        }
                    }
                    p.b.events.push(row);
                }
                Err(e) => p.report.skipped.push(format!("event handler {name}: {e}")),
            }
        }
        Ok(())
    }

    /// An SMTP password or RADIUS secret: privacyIDEA encrypts them (`iv:data` in hex) and
    /// uses one that does not decrypt as it is (stored before it encrypted them). A value in
    /// the encrypted form that this key file does not open is an error (the wrong key file),
    /// not a password.
    fn open_server_secret(&self, pi: &PiInstallation, stored: &str, what: &str) -> Result<String> {
        let encrypted_form = stored.split_once(':').is_some_and(|(iv, data)| {
            iv.len() == 32
                && !data.is_empty()
                && iv
                    .bytes()
                    .chain(data.bytes())
                    .all(|c| c.is_ascii_hexdigit())
        });
        if encrypted_form {
            self.open_password(pi, stored, what)
        } else {
            Ok(stored.to_owned())
        }
    }
}
