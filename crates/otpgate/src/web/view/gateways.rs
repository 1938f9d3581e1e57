//! SMS gateways: the list, a gateway's form (one field per provider parameter from the
//! catalogue, free request fields and headers for HTTP, secrets never shown back), its test
//! SMS and default/delete buttons, and the blocked destination prefixes.

use super::super::html::{E, Field, Out, U, post_button, w};
use super::super::page::csrf_field;
use super::super::session::Session;
use super::{opts, typed_or};
use crate::params::Params;
use otpgate_gateways::ProviderKind;
use otpgate_service::breaker::BreakerView;
use otpgate_service::gateways::GatewayView;
use otpgate_store::BlockedPrefix;

/// A provider module as admins call it.
pub fn short_module(m: &str) -> &str {
    let last = m.rsplit('.').next().unwrap_or(m);
    match last {
        "HttpSMSProvider" => "HTTP",
        "SipgateSMSProvider" => "Sipgate",
        "SmtpSMSProvider" => "SMTP (mail to SMS)",
        "SmppSMSProvider" => "SMPP",
        "ScriptSMSProvider" => "Script",
        "modem" => "GSM modem",
        "sink" => "Sink (file, for tests)",
        other => other,
    }
}

/// The gateways, with the default one and those failing on this node marked.
pub fn list(b: &mut Out, gateways: &[GatewayView], default: &str, health: &[BreakerView]) {
    b.raw("<p><a class=\"button primary\" href=\"/ui/admin/gateways/new\">New SMS gateway</a></p>");
    if gateways.is_empty() {
        b.raw("<p class=\"empty\">No SMS gateway yet: tokens cannot send SMS until you define one.</p>");
        return;
    }
    b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>SMS gateways</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Provider</th><th scope=\"col\">Description</th><th scope=\"col\">State</th></tr></thead><tbody>");
    for g in gateways {
        let mut state = String::new();
        if g.name == default {
            state.push_str("<span class=\"badge ok\">default</span> ");
        }
        if let Some(v) = health.iter().find(|v| v.gateway == g.name) {
            state.push_str(if v.open {
                "<span class=\"badge bad\">skipped after failures</span>"
            } else {
                "<span class=\"badge warn\">failing</span>"
            });
        }
        w!(
            b,
            "<tr><td data-label=\"Name\"><a href=\"/ui/admin/gateways/{}\">{}</a></td><td data-label=\"Provider\">{}</td><td data-label=\"Description\">{}</td><td data-label=\"State\">",
            U(&g.name),
            E(&g.name),
            E(short_module(&g.module)),
            E(&g.description)
        );
        b.fmt(format_args!("{state}"));
        b.raw("</td></tr>");
    }
    b.raw("</tbody></table></div>");
}

/// Blocked destination prefixes (toll fraud): by hand or by the velocity detection.
pub fn blocks(
    b: &mut Out,
    s: &Session,
    blocks: &[BlockedPrefix],
    errors: &[(String, String)],
    f: &Params,
) {
    b.raw("<section class=\"card\" aria-labelledby=\"bl-h\"><h2 id=\"bl-h\">Blocked destinations</h2><p>No SMS goes to numbers starting with these prefixes (SMS pumping, toll fraud).</p>");
    if blocks.is_empty() {
        b.raw("<p class=\"empty\">No prefix is blocked.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Blocked prefixes</caption><thead><tr><th scope=\"col\">Prefix</th><th scope=\"col\">By</th><th scope=\"col\">Reason</th><th scope=\"col\">Since (UTC)</th><th scope=\"col\">Action</th></tr></thead><tbody>");
        for bl in blocks {
            let since = chrono::DateTime::from_timestamp_millis(bl.blocked_at)
                .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            w!(
                b,
                "<tr><td data-label=\"Prefix\"><code>{}</code></td><td data-label=\"By\">{}</td><td data-label=\"Reason\">{}</td><td data-label=\"Since\">{}</td><td data-label=\"Action\">",
                E(&bl.prefix),
                E(&bl.source),
                E(&bl.reason),
                E(&since)
            );
            post_button(
                b,
                &format!("/ui/admin/blocks/{}/delete", U(&bl.prefix)),
                &s.csrf,
                "Unblock",
                "small",
                Some(&format!("Let SMS go to {} again?", bl.prefix)),
            );
            b.raw("</td></tr>");
        }
        b.raw("</tbody></table></div>");
    }
    b.raw("<form class=\"filters\" method=\"post\" action=\"/ui/admin/blocks\">");
    csrf_field(b, s);
    Field::new("prefix", "Prefix to block")
        .value(f.get("prefix").unwrap_or_default())
        .hint("+ and 1 to 15 digits, e.g. +88213.")
        .attrs("required")
        .errors(errors)
        .input(b);
    Field::new("reason", "Reason")
        .value(f.get("reason").unwrap_or_default())
        .errors(errors)
        .input(b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Block</button></div></form></section>");
}

/// A stored gateway's page: the test SMS, default (unless it is the default already) and
/// delete, then its settings. After a failed test SMS the browser's address goes back to the
/// gateway's page (`data-page-url`): a reload shows the page, it does not send again.
pub fn page(
    b: &mut Out,
    s: &Session,
    g: &GatewayView,
    is_default: bool,
    f: &Params,
    errors: &[(String, String)],
) {
    b.raw("<div class=\"grid\"><section class=\"card\" aria-labelledby=\"t-h\"><h2 id=\"t-h\">Send a test SMS</h2>");
    let here = format!("/ui/admin/gateways/{}", U(&g.name));
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"{here}/test\"{}>",
        if errors.iter().any(|(k, _)| k == "test_phone") {
            format!(" data-page-url=\"{here}\"")
        } else {
            String::new()
        }
    );
    csrf_field(b, s);
    Field::new("test_phone", "Phone number")
        .kind("tel")
        .value(f.get("test_phone").unwrap_or_default())
        .attrs("required")
        .errors(errors)
        .input(b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Send test SMS</button></div></form></section>");
    b.raw("<section class=\"card\" aria-labelledby=\"o-h\"><h2 id=\"o-h\">Use and remove</h2>");
    if is_default {
        b.raw("<p><span class=\"badge ok\">default</span> Tokens without a gateway of their own send through this one.</p><div class=\"actions\">");
    } else {
        b.raw("<div class=\"actions\">");
        post_button(
            b,
            &format!("/ui/admin/gateways/{}/default", U(&g.name)),
            &s.csrf,
            "Make it the default gateway",
            "",
            None,
        );
    }
    post_button(
        b,
        &format!("/ui/admin/gateways/{}/delete", U(&g.name)),
        &s.csrf,
        "Delete gateway",
        "danger",
        Some(&format!("Delete the SMS gateway {}?", g.name)),
    );
    b.raw("</div></section></div>");
    b.raw("<section class=\"card\" aria-labelledby=\"e-h\"><h2 id=\"e-h\">Settings</h2>");
    form(b, s, &g.module, Some(g), None, f, errors);
    b.raw("</section>");
}

/// A new gateway's first question: what sends the SMS. The presets (gateways whose HTTP shape
/// is known) first, then each provider; each choice opens its pre-filled form.
pub fn chooser(b: &mut Out) {
    b.raw("<section class=\"card\" aria-labelledby=\"ch-h\"><h2 id=\"ch-h\">What sends your SMS?</h2><p>Choose one: the next page asks only for what it needs.</p><h3>A known SMS gateway or service (HTTP)</h3><ul class=\"choices\">");
    let http = ProviderKind::Http.module_name();
    for p in otpgate_gateways::presets::PRESETS {
        w!(
            b,
            "<li><a href=\"/ui/admin/gateways/new?provider={}&amp;preset={}\">{}</a></li>",
            U(p.kind.module_name()),
            U(p.key),
            E(p.label)
        );
    }
    b.raw("</ul><h3>Any other way</h3><ul class=\"choices\">");
    let others: [(&str, &str); 7] = [
        (http, "Another HTTP API (you describe the request)"),
        (
            ProviderKind::Smpp.module_name(),
            "An SMSC or SMS aggregator over SMPP",
        ),
        (
            ProviderKind::Smtp.module_name(),
            "A mail-to-SMS service (SMTP)",
        ),
        (ProviderKind::Sipgate.module_name(), "Sipgate"),
        (
            ProviderKind::Modem.module_name(),
            "A GSM modem on this machine",
        ),
        (ProviderKind::Script.module_name(), "A script of your own"),
        (ProviderKind::Sink.module_name(), "Sink (file, for tests)"),
    ];
    for (module, label) in others {
        w!(
            b,
            "<li><a href=\"/ui/admin/gateways/new?provider={}\">{}</a></li>",
            U(module),
            E(label)
        );
    }
    b.raw("</ul></section>");
}

/// The providers, in the catalogue's order of their module names.
fn providers() -> Vec<ProviderKind> {
    let mut kinds = ProviderKind::ALL.to_vec();
    kinds.sort_by_key(|k| k.module_name());
    kinds
}

/// A gateway's settings (a new one of provider `module` when `existing` is None).
pub fn form(
    b: &mut Out,
    s: &Session,
    module: &str,
    existing: Option<&GatewayView>,
    preset: Option<&otpgate_gateways::presets::Preset>,
    f: &Params,
    errors: &[(String, String)],
) {
    let template = preset.map(|p| GatewayView {
        module: p.kind.module_name().to_owned(),
        options: p
            .options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..GatewayView::default()
    });
    let template = template.as_ref();
    let kind = ProviderKind::parse(module);
    let name = existing.map(|g| g.name.as_str()).unwrap_or_default();
    if existing.is_none() {
        let modules: Vec<(String, String)> = providers()
            .into_iter()
            .map(|k| {
                (
                    k.module_name().to_owned(),
                    short_module(k.module_name()).to_owned(),
                )
            })
            .collect();
        b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/gateways/new\">");
        Field::new("provider", "Provider")
            .value(module)
            .attrs("data-autosubmit")
            .select(&modules, b);
        let presets: Vec<(String, String)> = std::iter::once((String::new(), "(none)".to_owned()))
            .chain(
                otpgate_gateways::presets::PRESETS
                    .iter()
                    .filter(|p| Some(p.kind) == kind)
                    .map(|p| (p.key.to_owned(), p.label.to_owned())),
            )
            .collect();
        if presets.len() > 1 {
            Field::new("preset", "Start from")
                .value(preset.map(|p| p.key).unwrap_or_default())
                .hint("A gateway whose HTTP shape is known, pre-filled; fill in what is yours.")
                .attrs("data-autosubmit")
                .select(&presets, b);
        }
        b.raw(
            "<div class=\"actions js-hide\"><button type=\"submit\">Choose</button></div></form>",
        );
        if let Some(p) = preset {
            w!(b, "<p class=\"note\">{}</p>", E(p.note));
        }
    }
    let action = if existing.is_some() {
        format!("/ui/admin/gateways/{}", U(name))
    } else {
        "/ui/admin/gateways/new".to_owned()
    };
    super::form_open(b, s, &action);
    w!(
        b,
        "<input type=\"hidden\" name=\"module\" value=\"{}\">",
        E(module)
    );
    if existing.is_some() {
        w!(
            b,
            "<input type=\"hidden\" name=\"name\" value=\"{}\"><p>Provider: <strong>{}</strong></p>",
            E(name),
            E(short_module(module))
        );
    } else {
        Field::new("name", "Name")
            .value(&typed_or(f, "name", ""))
            .hint("How tokens and policies refer to this gateway.")
            .attrs("required")
            .errors(errors)
            .input(b);
    }
    Field::new("description", "Description")
        .value(&typed_or(
            f,
            "description",
            existing.map(|g| g.description.as_str()).unwrap_or_default(),
        ))
        .errors(errors)
        .input(b);
    let values = existing.or(template);
    let mut params: Vec<_> = kind.map(|k| k.parameters().collect()).unwrap_or_default();
    // privacyIDEA's deprecated PROXY only where a gateway still has it.
    params.retain(|p| {
        !(kind == Some(ProviderKind::Http)
            && p.name == "PROXY"
            && values.is_none_or(|g| g.options.get("PROXY").is_none_or(String::is_empty)))
    });
    // Required first within a section, otherwise in the catalogue's order.
    params.sort_by_key(|p| (Section::of(kind, p), !p.required));
    for section in Section::ALL {
        let mine: Vec<_> = params
            .iter()
            .filter(|p| Section::of(kind, p) == section)
            .collect();
        let free_rows = section == Section::Send && kind.is_some_and(ProviderKind::options_allowed);
        if mine.is_empty() && !free_rows {
            continue;
        }
        if section == Section::Advanced {
            // Folded unless something in it needs attention.
            let open = mine.iter().any(|p| {
                errors
                    .iter()
                    .any(|(f, _)| *f == format!("option.{}", p.name))
            });
            w!(
                b,
                "<details class=\"advanced\"{}><summary>Advanced settings</summary>",
                if open { " open" } else { "" }
            );
        }
        w!(b, "<fieldset><legend>{}</legend>", E(section.legend()));
        for p in mine {
            parameter(b, p, existing.is_some(), values, f, errors);
        }
        b.raw("</fieldset>");
        if free_rows {
            extra_rows(
                b,
                values,
                f,
                errors,
                Extra::Options,
                "Request fields",
                "Sent with every message: the text as {otp} and the number as {phone} (both are needed), e.g. text = {otp} and to = {phone}.",
            );
        }
        if section == Section::SignIn && kind.is_some_and(ProviderKind::headers_allowed) {
            extra_rows(
                b,
                values,
                f,
                errors,
                Extra::Headers,
                "HTTP headers",
                "e.g. Authorization. Values that look secret are stored encrypted and never shown again.",
            );
        }
        if section == Section::Advanced {
            b.raw("</details>");
        }
    }
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save gateway</button> <a class=\"button\" href=\"/ui/admin/gateways\">Cancel</a></div></form>");
}

/// The sections of a gateway's form, in order: what is needed first, the rest folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Where,
    SignIn,
    Send,
    Success,
    Receipts,
    Failover,
    Advanced,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Where,
        Section::SignIn,
        Section::Send,
        Section::Success,
        Section::Receipts,
        Section::Failover,
        Section::Advanced,
    ];

    fn legend(self) -> &'static str {
        match self {
            Section::Where => "Where messages go",
            Section::SignIn => "Sign-in at the gateway",
            Section::Send => "What is sent",
            Section::Success => "When a message counts as sent",
            Section::Receipts => "Delivery receipts",
            Section::Failover => "Failover",
            Section::Advanced => "Advanced",
        }
    }

    /// The section of provider parameter `p`.
    fn of(kind: Option<ProviderKind>, p: &otpgate_gateways::Parameter) -> Section {
        let n = p.name;
        if n.starts_with("DLR_") || n == "STATUS_REPORTS" {
            return Section::Receipts;
        }
        match n {
            "FAILOVER" => return Section::Failover,
            "RETURN_SUCCESS" | "RETURN_FAIL" | "RETURN_QUEUED" => return Section::Success,
            "USERNAME" | "PASSWORD" | "SYSTEM_ID" | "SIM_PIN" => return Section::SignIn,
            "SEND_DATA_AS_JSON"
            | "PARAMETER"
            | "SMS_TEXT_KEY"
            | "SMS_PHONENUMBER_KEY"
            | "S_ADDR"
            | "S_ADDR_TON"
            | "S_ADDR_NPI"
            | "D_ADDR_TON"
            | "D_ADDR_NPI"
            | "MAILTO"
            | "SUBJECT"
            | "BODY"
            | "MODE"
            | "SMSC" => return Section::Send,
            _ => {}
        }
        let advanced = matches!(
            n,
            "TIMEOUT"
                | "REGEXP"
                | "NUMBER_FORMAT"
                | "CHECK_SSL"
                | "PROXY"
                | "HTTP_PROXY"
                | "HTTPS_PROXY"
                | "IDEMPOTENCY_HEADER"
                | "BAUDRATE"
                | "WINDOW"
                | "ENQUIRE_LINK"
                | "SMSC_TLS"
                | "TLS_CA_FILE"
                | "BIND"
                | "SMTPIDENTIFIED"
        ) || (kind == Some(ProviderKind::Sipgate) && n == "URL");
        let where_http = matches!(n, "URL" | "HTTP_METHOD");
        match kind {
            _ if advanced => Section::Advanced,
            Some(ProviderKind::Http) if !where_http => Section::Advanced,
            _ => Section::Where,
        }
    }
}

/// One provider parameter's field; `values` gives what is stored (or a preset's value).
fn parameter(
    b: &mut Out,
    p: &otpgate_gateways::Parameter,
    stored_gateway: bool,
    values: Option<&GatewayView>,
    f: &Params,
    errors: &[(String, String)],
) {
    let field = format!("option.{}", p.name);
    let stored = values
        .and_then(|g| g.options.get(p.name))
        .map(String::as_str)
        .unwrap_or_default();
    let plain = label(p.name);
    let label = if p.required {
        format!("{plain} (required)")
    } else {
        plain.to_owned()
    };
    if p.secret {
        let hint = if stored_gateway && !stored.is_empty() {
            format!(
                "{} Stored encrypted; leave empty to keep it.",
                p.description
            )
        } else {
            p.description.to_owned()
        };
        Field::new(&field, &label)
            .kind("password")
            .key(p.name)
            .hint(&hint)
            .attrs("autocomplete=\"off\"")
            .errors(errors)
            .input(b);
    } else if !p.values.is_empty() {
        let mut o = vec![(String::new(), "(default)".to_owned())];
        o.extend(opts(p.values.iter().copied()));
        Field::new(&field, &label)
            .value(&typed_or(f, &field, stored))
            .key(p.name)
            .hint(p.description)
            .errors(errors)
            .select(&o, b);
    } else {
        let attrs = if p.required { "required" } else { "" };
        Field::new(&field, &label)
            .value(&typed_or(f, &field, stored))
            .key(p.name)
            .hint(p.description)
            .attrs(attrs)
            .errors(errors)
            .input(b);
    }
}

/// A provider parameter as the form names it; its key (privacyIDEA's name, which the API
/// and imports use) is shown in small print next to it.
fn label(key: &str) -> &str {
    match key {
        "URL" => "Gateway URL",
        "HTTP_METHOD" => "HTTP method",
        "USERNAME" => "User name",
        "PASSWORD" => "Password",
        "SEND_DATA_AS_JSON" => "Send the fields as JSON",
        "PARAMETER" => "Fixed fields (JSON object)",
        "SMS_TEXT_KEY" => "Field name of the text",
        "SMS_PHONENUMBER_KEY" => "Field name of the number",
        "RETURN_SUCCESS" => "Reply text that means sent",
        "RETURN_FAIL" => "Reply text that means failed",
        "RETURN_QUEUED" => "Reply text that means queued",
        "DLR_STATUS" => "Receipt field with the status",
        "DLR_DELIVERED" => "Receipt states that mean delivered",
        "DLR_FAILED" => "Receipt states that mean failed",
        "DLR_TIMEOUT" => "Fail over without a receipt after (seconds)",
        "STATUS_REPORTS" => "Ask for status reports",
        "FAILOVER" => "Backup gateways",
        "NUMBER_FORMAT" => "Number format",
        "REGEXP" => "Rewrite the number",
        "TIMEOUT" => "Timeout (seconds)",
        "CHECK_SSL" => "Check the TLS certificate",
        "PROXY" => "Proxy (deprecated)",
        "HTTP_PROXY" => "Proxy for http:// URLs",
        "HTTPS_PROXY" => "Proxy for https:// URLs",
        "IDEMPOTENCY_HEADER" => "Idempotency header",
        "SMSC_HOST" => "SMSC host",
        "SMSC_PORT" => "SMSC port",
        "SMSC_TLS" => "TLS to the SMSC",
        "TLS_CA_FILE" => "CA certificates file",
        "SYSTEM_ID" => "System ID",
        "BIND" => "Bind as",
        "WINDOW" => "Messages in flight",
        "ENQUIRE_LINK" => "Keep-alive after (seconds)",
        "S_ADDR" => "Sender",
        "S_ADDR_TON" => "Sender type of number",
        "S_ADDR_NPI" => "Sender numbering plan",
        "D_ADDR_TON" => "Recipient type of number",
        "D_ADDR_NPI" => "Recipient numbering plan",
        "SMTPIDENTIFIER" => "SMTP server",
        "SMTPIDENTIFIED" => "SMTP server (old spelling)",
        "MAILTO" => "Mail to",
        "SUBJECT" => "Mail subject",
        "BODY" => "Mail body",
        "DEVICE" => "Modem device",
        "BAUDRATE" => "Baud rate",
        "MODE" => "Modem mode",
        "SIM_PIN" => "SIM PIN",
        "SMSC" => "SMS centre number",
        "FILE" => "File",
        "script" => "Script",
        "background" => "Run in the background",
        other => other,
    }
}

/// A request field whose name makes it a secret where it is stored (the service's rule: a free
/// field is no catalogue parameter, so the provider does not matter).
fn looks_secret(extra: Extra, key: &str) -> bool {
    extra == Extra::Options && otpgate_service::gateways::secret_by_default("", "option", key, "")
}

/// The free name/value pairs of a gateway.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// Request fields (options that are no provider parameter).
    Options,
    /// HTTP headers.
    Headers,
}

impl Extra {
    /// The prefix of their fields (`option_key_N`, `header_value_N`).
    pub fn prefix(self) -> &'static str {
        match self {
            Extra::Options => "option",
            Extra::Headers => "header",
        }
    }
}

/// Rows of free name/value pairs (`{prefix}_key_N`, `{prefix}_value_N`): the stored ones
/// (secret values left empty: empty keeps them), then three empty rows.
fn extra_rows(
    b: &mut Out,
    existing: Option<&GatewayView>,
    f: &Params,
    errors: &[(String, String)],
    extra: Extra,
    legend: &str,
    hint: &str,
) {
    let prefix = extra.prefix();
    let fixed = existing.and_then(|g| ProviderKind::parse(&g.module));
    let mut rows: Vec<(String, String, bool)> = match existing {
        None => Vec::new(),
        Some(g) => {
            let (map, secrets) = match extra {
                Extra::Options => (&g.options, &g.secret_options),
                Extra::Headers => (&g.headers, &g.secret_headers),
            };
            map.iter()
                .filter(|(k, _)| {
                    extra == Extra::Headers || !fixed.is_some_and(|p| p.is_parameter(k))
                })
                .map(|(k, v)| {
                    let secret = secrets.contains(k);
                    let v = if secret { String::new() } else { v.clone() };
                    (k.clone(), v, secret)
                })
                .collect()
        }
    };
    // A refused form shows what was typed.
    let mut i = 0;
    while let Some(k) = f.get(&format!("{prefix}_key_{i}")) {
        let v = f.get(&format!("{prefix}_value_{i}")).unwrap_or_default();
        if i < rows.len() {
            if let Some(r) = rows.get_mut(i) {
                r.0 = k.to_owned();
                if !r.2 {
                    r.1 = v.to_owned();
                }
            }
        } else if !k.is_empty() {
            // A refused form does not show typed header values again (they may be secrets),
            // nor request fields whose name says they are.
            let v = if extra == Extra::Headers || looks_secret(extra, k) {
                ""
            } else {
                v
            };
            rows.push((k.to_owned(), v.to_owned(), false));
        }
        i += 1;
    }
    let n = rows.len();
    rows.extend((0..3).map(|_| (String::new(), String::new(), false)));
    w!(
        b,
        "<fieldset><legend>{}</legend><p class=\"hint\">{}</p>",
        E(legend),
        E(hint)
    );
    let what = if extra == Extra::Headers {
        "Header"
    } else {
        "Field"
    };
    for (i, (k, v, secret)) in rows.iter().enumerate() {
        let kid = format!("{prefix}_key_{i}");
        let vid = format!("{prefix}_value_{i}");
        w!(b, "<div class=\"pair\">");
        Field::new(&kid, &format!("{what} {} name", i + 1))
            .value(k)
            .attrs("autocomplete=\"off\"")
            .errors(errors)
            .input(b);
        let vlabel = format!("{what} {} value", i + 1);
        let vf = Field::new(&vid, &vlabel)
            .value(v)
            .attrs("autocomplete=\"off\"");
        if *secret && i < n {
            vf.kind("password")
                .hint("Stored encrypted; leave empty to keep it.")
                .input(b);
        } else if looks_secret(extra, k) {
            vf.kind("password")
                .hint("A secret: stored encrypted, never shown again.")
                .input(b);
        } else {
            vf.input(b);
        }
        b.raw("</div>");
    }
    b.raw("</fieldset>");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The new gateway's first page offers every provider and every preset.
    #[test]
    fn the_chooser_offers_every_provider_and_preset() {
        let mut b = Out::new();
        chooser(&mut b);
        let html = b.into_string();
        for kind in ProviderKind::ALL {
            let link = format!(
                "/ui/admin/gateways/new?provider={}\"",
                U(kind.module_name())
            );
            assert!(html.contains(&link), "{link}: {html}");
        }
        for p in otpgate_gateways::presets::PRESETS {
            assert!(html.contains(&format!("preset={}", p.key)), "{}", p.key);
        }
    }

    /// Every provider parameter has a label in words, distinct within its provider (a new
    /// parameter without one would show its bare key).
    #[test]
    fn every_parameter_has_a_plain_label() {
        for kind in ProviderKind::ALL {
            let mut seen = std::collections::BTreeSet::new();
            for p in kind.parameters() {
                let l = label(p.name);
                assert_ne!(l, p.name, "{} of {}", p.name, kind.module_name());
                assert!(seen.insert(l), "{l} twice in {}", kind.module_name());
            }
        }
    }
}
