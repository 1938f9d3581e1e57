//! SMS texts: the text of every realm is the `smstext` action of one authentication policy;
//! a live counter shows its size in SMS.

use super::super::html::Out;
use super::super::page::{page_headers, see_other, service_message};
use super::super::request::{Web, WebResult};
use super::super::session::Session;
use super::super::view::texts::{self as view, TextPolicy};
use super::{Errors, page};
use axum::Json;
use axum::response::IntoResponse;
use otpgate_service::policy::{ActionValue, PolicyInput, list as list_field, parse_actions};
use serde_json::json;

/// The policy that holds the console's SMS text.
const TEXT_POLICY: &str = "sms-text";

/// `GET /ui/admin/texts`.
pub async fn show(web: Web) -> WebResult {
    let s = web.admin("policyread").await?;
    texts_page(&web, &s, None, &Vec::new()).await
}

async fn texts_page(web: &Web, s: &Session, text: Option<&str>, errors: &Errors) -> WebResult {
    let policies = web
        .app
        .services
        .list_policies(None, Some("authentication"))
        .await?;
    let with_text: Vec<TextPolicy> = policies
        .iter()
        .filter_map(|p| match parse_actions(&p.action).remove("smstext") {
            Some(ActionValue::Value(raw)) => Some(TextPolicy {
                name: p.name.clone(),
                realms: list_field(&p.realm),
                text: otpgate_core::template::unescape_policy_text(&raw),
            }),
            _ => None,
        })
        .collect();
    let current = with_text
        .iter()
        .find(|p| p.name == TEXT_POLICY)
        .map(|p| p.text.clone())
        .filter(|t| !t.is_empty());
    let value = text
        .map(str::to_owned)
        .or(current)
        .unwrap_or_else(|| "Your login code is {otp}".to_owned());
    let mut b = Out::new();
    view::body(&mut b, s, &with_text, TEXT_POLICY, &value, errors);
    Ok(page(web, s, "SMS texts", errors, b))
}

/// `POST /ui/admin/texts`: saves the text policy (or only counts, without JavaScript).
pub async fn save(web: Web) -> WebResult {
    let text = web.form.get("smstext").unwrap_or_default().to_owned();
    if web.form.get("do") == Some("count") {
        let s = web.admin("policyread").await?;
        return texts_page(&web, &s, Some(&text), &Vec::new()).await;
    }
    let s = web.admin("policywrite").await?;
    if let Err(e) = otpgate_core::sms_text::preview(&text) {
        return texts_page(&web, &s, Some(&text), &vec![("smstext".into(), e)]).await;
    }
    // privacyIDEA saves such a text (its API here does too); the console does not: no login
    // could succeed with it.
    if !otpgate_core::sms_text::has_otp(&text) {
        let errors = vec![("smstext".into(), otpgate_core::sms_text::NO_OTP.to_owned())];
        return texts_page(&web, &s, Some(&text), &errors).await;
    }
    let input = PolicyInput {
        scope: Some("authentication".into()),
        action: Some(format!("smstext='{}'", text.replace(',', "\\,"))),
        active: Some(true),
        ..Default::default()
    };
    let r = web
        .run(web.admin_call(&s), Some("policywrite"), move |svc, cx| {
            Box::pin(async move { svc.set_policy(TEXT_POLICY, &input, cx).await })
        })
        .await;
    match r {
        Ok(_) => Ok(see_other("/ui/admin/texts?ok=saved")),
        Err(e) => {
            texts_page(
                &web,
                &s,
                Some(&text),
                &vec![("smstext".into(), service_message(&e))],
            )
            .await
        }
    }
}

/// `POST /ui/admin/texts/count`: the live counter (JSON for the script).
pub async fn count(web: Web) -> WebResult {
    web.admin("policyread").await?;
    let (summary, segments, warnings) =
        view::count_summary(web.form.get("text").unwrap_or_default());
    let mut r = Json(json!({"summary": summary, "segments": segments, "warnings": warnings}))
        .into_response();
    page_headers(&mut r);
    Ok(r)
}
