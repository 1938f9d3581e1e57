//! The dashboard: today's SMS by gateway and result, refusals by rule, the gateways' health
//! on this node, and recent rejected logins.

use super::super::html::{E, Out, U, w};
use otpgate_service::audit::AuditEntry;
use otpgate_service::breaker::BreakerView;
use otpgate_service::setup::{SetupGap, SetupStep};
use otpgate_store::SmsStat;
use std::collections::BTreeMap;

/// The console page that does set-up step `g`, and what its link says.
fn fix_at(g: &SetupGap) -> (String, &'static str) {
    let realm = g.realm.as_deref().unwrap_or_default();
    match g.step {
        SetupStep::UserStore => (
            "/ui/admin/resolvers/new?type=internalresolver".into(),
            "Add a user store",
        ),
        SetupStep::Realm | SetupStep::RealmWithoutStore => {
            ("/ui/admin/realms".into(), "Open the realms")
        }
        SetupStep::Gateway => ("/ui/admin/gateways/new".into(), "Add a gateway"),
        SetupStep::DefaultGateway => ("/ui/admin/gateways".into(), "Choose the default"),
        SetupStep::User => (format!("/ui/admin/users?realm={}", U(realm)), "Add a user"),
        SetupStep::Token => ("/ui/admin/tokens/new".into(), "Enroll a token"),
        SetupStep::FirstLogin => ("/ui/login".into(), "Open the sign-in page"),
        SetupStep::SmsText => ("/ui/admin/texts".into(), "Write the SMS text"),
    }
}

/// What set-up step `g` lacks, and the link to the page that does it.
fn gap_and_fix(b: &mut Out, g: &SetupGap) {
    let (href, action) = fix_at(g);
    w!(b, "{} <a href=\"{}\">{action}</a>", E(&g.message), E(&href));
}

/// The steps before a first SMS login, in order, each with what it gives when done.
const CHECKLIST: [(&[SetupStep], &str); 6] = [
    (&[SetupStep::UserStore], "A user store"),
    (
        &[SetupStep::Realm, SetupStep::RealmWithoutStore],
        "A realm with its user store",
    ),
    (&[SetupStep::Gateway], "An SMS gateway"),
    (&[SetupStep::DefaultGateway], "A default SMS gateway"),
    (&[SetupStep::User], "A user with a mobile number"),
    (&[SetupStep::Token], "An SMS token for a user"),
];

/// While the set-up still lacks something, the whole checklist before a first SMS login: the
/// steps done ticked off, the others with what is missing and the page that fixes it. Once
/// nothing blocks a login, the next steps (a first login, an SMS text); and, while the admin
/// `admin` still has the generated first password (`initial_password`), a prompt to change it.
pub fn setup(b: &mut Out, gaps: &[SetupGap], initial_password: bool) {
    let (blocking, next): (Vec<&SetupGap>, Vec<&SetupGap>) =
        gaps.iter().partition(|g| g.step.blocks_login());
    if !blocking.is_empty() {
        let done = CHECKLIST
            .iter()
            .filter(|(steps, _)| !blocking.iter().any(|g| steps.contains(&g.step)))
            .count();
        w!(
            b,
            "<section class=\"card\" aria-labelledby=\"setup-h\"><h2 id=\"setup-h\">To finish the set-up</h2><p>{done} of {} steps done. Until the others are, a first SMS login cannot work.</p><ol class=\"checklist\">",
            CHECKLIST.len()
        );
        for (steps, label) in CHECKLIST {
            let open: Vec<&&SetupGap> = blocking
                .iter()
                .filter(|g| steps.contains(&g.step))
                .collect();
            if open.is_empty() {
                w!(
                    b,
                    "<li class=\"done\"><span class=\"badge ok\">Done</span> {}</li>",
                    E(label)
                );
                continue;
            }
            w!(
                b,
                "<li><span class=\"badge warn\">To do</span> <strong>{}</strong>",
                E(label)
            );
            for g in open {
                b.raw("<br>");
                gap_and_fix(b, g);
            }
            b.raw("</li>");
        }
        b.raw("</ol></section>");
    }
    if !next.is_empty() {
        b.raw("<section class=\"card\" aria-labelledby=\"next-h\"><h2 id=\"next-h\">Next steps</h2><ul>");
        for g in next {
            b.raw("<li>");
            gap_and_fix(b, g);
            b.raw("</li>");
        }
        b.raw("</ul></section>");
    }
    if initial_password {
        b.raw("<section class=\"card\" aria-labelledby=\"pw-h\"><h2 id=\"pw-h\">Your password</h2><p>You signed in with the password otpgate generated at its first start (it is still in the data directory's <code>initial-admin-password</code> file). <a href=\"/ui/admin/password\">Choose your own password</a>: the file goes with the change.</p></section>");
    }
}

/// The whole dashboard.
pub fn body(b: &mut Out, stats: &[SmsStat], health: &[BreakerView], failures: &[AuditEntry]) {
    let mut by_gw: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut limits: BTreeMap<String, i64> = BTreeMap::new();
    for st in stats {
        match st.outcome.strip_prefix("limit:") {
            Some(l) => *limits.entry(l.to_owned()).or_default() += st.count,
            None => {
                *by_gw
                    .entry(st.gateway.clone())
                    .or_default()
                    .entry(st.outcome.clone())
                    .or_default() += st.count
            }
        }
    }
    let total = |o: &str| -> i64 { by_gw.values().filter_map(|m| m.get(o)).sum() };
    let refused: i64 = limits.values().sum();
    w!(
        b,
        "<dl class=\"stats\"><div class=\"stat ok\"><dt>SMS sent today</dt><dd>{}</dd></div><div class=\"stat bad\"><dt>SMS the gateways failed to send</dt><dd>{}</dd></div><div class=\"stat warn\"><dt>Delivered by a failover</dt><dd>{}</dd></div><div class=\"stat\"><dt>Refused by limits or fraud rules</dt><dd>{}</dd></div></dl>",
        total("delivered"),
        total("failed"),
        total("failover"),
        refused
    );
    b.raw("<p class=\"muted\">Today means since 00:00 UTC; counts from every node, added at least every 10 seconds.</p>");
    b.raw("<section class=\"card\" aria-labelledby=\"gw-h\"><h2 id=\"gw-h\">By gateway</h2>");
    if by_gw.is_empty() {
        b.raw("<p class=\"empty\">No SMS today.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>SMS attempts today by gateway</caption><thead><tr><th scope=\"col\">Gateway</th><th scope=\"col\">Sent</th><th scope=\"col\">Failed</th><th scope=\"col\">Skipped</th><th scope=\"col\">Failover</th></tr></thead><tbody>");
        for (gw, m) in &by_gw {
            let n = |o: &str| m.get(o).copied().unwrap_or(0);
            w!(
                b,
                "<tr><td data-label=\"Gateway\">{}</td><td data-label=\"Sent\">{}</td><td data-label=\"Failed\">{}</td><td data-label=\"Skipped\">{}</td><td data-label=\"As failover\">{}</td></tr>",
                E(gw),
                n("delivered"),
                n("failed"),
                n("skipped_breaker_open"),
                n("failover")
            );
        }
        b.raw("</tbody></table></div>");
    }
    b.raw("</section><div class=\"grid\"><section class=\"card\" aria-labelledby=\"lim-h\"><h2 id=\"lim-h\">Refused SMS</h2>");
    if limits.is_empty() {
        b.raw("<p class=\"empty\">No SMS refused today.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Refusals today by rule</caption><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Refused</th></tr></thead><tbody>");
        for (l, n) in &limits {
            w!(
                b,
                "<tr><td data-label=\"Rule\">{}</td><td data-label=\"Refused\">{n}</td></tr>",
                E(l)
            );
        }
        b.raw("</tbody></table></div>");
    }
    b.raw("</section><section class=\"card\" aria-labelledby=\"br-h\"><h2 id=\"br-h\">Gateway health (this node)</h2>");
    if health.is_empty() {
        b.raw("<p class=\"empty\">No gateway has failed recently.</p>");
    } else {
        b.raw("<ul>");
        for v in health {
            let badge = if v.open {
                "<span class=\"badge bad\">skipped</span>"
            } else {
                "<span class=\"badge warn\">failing</span>"
            };
            w!(
                b,
                "<li>{} {badge} {} failures in a row</li>",
                E(&v.gateway),
                v.failures
            );
        }
        b.raw("</ul>");
    }
    b.raw("</section></div>");
    b.raw("<section class=\"card\" aria-labelledby=\"fail-h\"><h2 id=\"fail-h\">Recent rejected logins</h2>");
    super::audit::table(
        b,
        failures,
        "The ten most recent rejected logins (API, RADIUS and web)",
    );
    b.raw("<p><a href=\"/ui/admin/audit?authentication=REJECT\">All rejected logins</a></p></section>");
}

/// The destination countries the dashboard shows per gateway (flagged ones always).
const COUNTRIES_SHOWN: usize = 8;

/// Delivery and conversion over the last 24 hours: per gateway, and per gateway and
/// destination country (a route whose delivery rate is below `sms.delivery_alert_percent` is
/// marked).
pub fn delivery(b: &mut Out, routes: &[otpgate_service::delivery::RouteStats]) {
    b.raw("<section class=\"card\" aria-labelledby=\"dlr-h\"><h2 id=\"dlr-h\">Delivery, last 24 hours</h2>");
    // Each gateway, then its destination countries: the busiest ones and every flagged one.
    let mut shown: Vec<&otpgate_service::delivery::RouteStats> = Vec::new();
    for total in routes.iter().filter(|r| r.country.is_empty()) {
        shown.push(total);
        let mut countries: Vec<_> = routes
            .iter()
            .filter(|r| r.gateway == total.gateway && !r.country.is_empty())
            .collect();
        countries.sort_by(|a, b| b.sent.cmp(&a.sent).then(a.country.cmp(&b.country)));
        for (i, c) in countries.into_iter().enumerate() {
            if i < COUNTRIES_SHOWN || c.flagged {
                shown.push(c);
            }
        }
    }
    if shown.is_empty() {
        b.raw("<p class=\"empty\">No SMS in the last 24 hours.</p></section>");
        return;
    }
    b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>SMS by gateway and destination country: delivery from receipts, conversion from answered logins</caption><thead><tr><th scope=\"col\">Route</th><th scope=\"col\">Sent</th><th scope=\"col\">Delivered</th><th scope=\"col\">Failed</th><th scope=\"col\">Not sent</th><th scope=\"col\">Pending</th><th scope=\"col\">Delivery rate</th><th scope=\"col\">Median / p95</th><th scope=\"col\">Conversion</th></tr></thead><tbody>");
    let pct = |v: Option<f64>| v.map_or("–".to_owned(), |x| format!("{x:.0} %"));
    let secs = |v: Option<i64>| {
        v.map_or("–".to_owned(), |ms| {
            format!("{:.1} s", ms as f64 / 1000.0)
        })
    };
    for r in shown {
        let route = if r.country.is_empty() {
            r.gateway.clone()
        } else {
            format!("{} → {}", r.gateway, r.country)
        };
        w!(
            b,
            "<tr{}><td data-label=\"Route\">{}{}</td><td data-label=\"Sent\">{}</td><td data-label=\"Delivered\">{}</td><td data-label=\"Failed\">{}</td><td data-label=\"Not sent\">{}</td><td data-label=\"Pending\">{}</td><td data-label=\"Delivery rate\">{}</td><td data-label=\"Median / p95\">{} / {}</td><td data-label=\"Conversion\">{}</td></tr>",
            if r.flagged { " class=\"bad\"" } else { "" },
            E(&route),
            if r.flagged {
                " <strong>(delivery dropped)</strong>"
            } else {
                ""
            },
            r.sent,
            r.delivered,
            r.failed,
            r.not_sent,
            r.pending,
            pct(r.delivery_rate),
            secs(r.median_ms),
            secs(r.p95_ms),
            pct(r.conversion)
        );
    }
    b.raw("</tbody></table></div><p class=\"muted\">Receipts come from gateways that report deliveries (HTTP gateways with <code>{dlr_url}</code>, SMPP sessions, GSM modems with status reports; see the README). Each SMS: <a href=\"/ui/admin/audit/sms\">the audit log's SMS view</a>.</p></section>");
}
