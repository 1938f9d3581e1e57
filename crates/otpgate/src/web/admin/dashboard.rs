//! The dashboard (the console's home).

use super::super::html::Out;
use super::super::page::{ADMIN_MENU, see_other};
use super::super::request::{Web, WebError, WebResult};
use super::super::view::dashboard as view;
use super::page;
use axum::http::StatusCode;
use otpgate_service::audit::AuditQuery;

/// `GET /ui/admin/`: today's SMS by gateway and result, refusals, breakers, recent failures.
pub async fn show(web: Web) -> WebResult {
    let s = match web.admin("auditlog").await {
        // An admin who may not read the audit lands on the first page they may open.
        Err(WebError::Page(StatusCode::FORBIDDEN, why)) => {
            if let Some(s) = web.session().await?.filter(|s| s.role == "admin") {
                let policies = web.app.services.policies().await?;
                if let Some((href, _, _)) = ADMIN_MENU
                    .iter()
                    .find(|(_, _, r)| policies.admin_allows(&s.username, r))
                {
                    return Ok(see_other(href));
                }
            }
            return Err(WebError::Page(StatusCode::FORBIDDEN, why));
        }
        other => other?,
    };
    let services = &web.app.services;
    let stats = services.sms_stats_today().await?;
    let health = services.breakers().views(services.clock().now_ms());
    let reach = services
        .policies()
        .await?
        .admin_reach(&s.username, "auditlog");
    let failures = services
        .list_audit(
            &AuditQuery {
                columns: vec![("authentication", "REJECT".into())],
                page_size: Some(10),
                ..Default::default()
            },
            &reach,
        )
        .await?;
    let gaps = services.setup_gaps().await?;
    let now = services.clock().now_ms();
    let delivery = services.delivery_stats(now - 86_400_000, now + 1).await?;
    let mut b = Out::new();
    // The generated first password is the admin `admin`'s, and its file goes when it changes.
    let initial_password = s.username == "admin"
        && web
            .app
            .config
            .server
            .data_dir
            .join(crate::bootstrap::INITIAL_ADMIN_FILE)
            .exists();
    view::setup(&mut b, &gaps, initial_password);
    view::body(&mut b, &stats, &health, &failures.items);
    view::delivery(&mut b, &delivery);
    Ok(page(&web, &s, "Dashboard", &[], b))
}
