//! System settings: the `/system/setConfig` keys an admin sets most (where numbers are read
//! from, how long a code lives, the send limits, the gateways' failover), saved through the
//! same call and checks as the API; a key left empty goes back to its default.

use super::super::html::Out;
use super::super::page::{see_other, service_message};
use super::super::request::{Web, WebResult};
use super::super::session::Session;
use super::super::view::settings as view;
use super::{Errors, page};

/// `GET /ui/admin/settings`.
pub async fn show(web: Web) -> WebResult {
    let s = web.admin("configread").await?;
    settings_page(&web, &s, &Vec::new()).await
}

async fn settings_page(web: &Web, s: &Session, errors: &Errors) -> WebResult {
    let stored = web.app.services.config_map().await?;
    let mut b = Out::new();
    view::body(&mut b, s, &stored, &web.form, errors);
    Ok(page(web, s, "Settings", errors, b))
}

/// `POST /ui/admin/settings`: every field of the form; empty ones are deleted (their
/// default applies again).
pub async fn save(web: Web) -> WebResult {
    let s = web.admin("configwrite").await?;
    let stored = web.app.services.config_map().await?;
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for key in view::KEYS.iter().map(|f| f.key) {
        let typed = web.form.get(key).unwrap_or_default().trim().to_owned();
        match (typed.is_empty(), stored.get(key)) {
            (true, Some(_)) => unset.push(key.to_owned()),
            (true, None) => {}
            (false, Some(v)) if *v == typed => {}
            (false, _) => set.push((key.to_owned(), typed)),
        }
    }
    // One key at a time, so a refusal names its field.
    for (key, value) in set {
        let pair = vec![(key.clone(), value)];
        let r = web
            .run(web.admin_call(&s), Some("configwrite"), move |svc, cx| {
                Box::pin(async move { svc.set_config(&pair, cx).await })
            })
            .await;
        if let Err(e) = r {
            let errors = vec![(key, service_message(&e))];
            return settings_page(&web, &s, &errors).await;
        }
    }
    for key in unset {
        let k = key.clone();
        // As DELETE /system/<key>: its own right.
        web.run(web.admin_call(&s), Some("configdelete"), move |svc, cx| {
            Box::pin(async move {
                cx.audit.action_detail = format!("{k} back to its default");
                svc.delete_config(&k).await
            })
        })
        .await?;
    }
    Ok(see_other("/ui/admin/settings?ok=saved"))
}
