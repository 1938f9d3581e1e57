//! `/radiusserver`: privacyIDEA's RADIUS server definitions (secrets censored), for the
//! RADIUS pass-through, and test requests.

use super::{ApiError, Pi};
use crate::params::Params;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::ServiceError;
use otpgate_service::gateways::CENSORED;
use otpgate_service::radiusserver::RadiusInput;
use serde_json::{Map, Value, json};

/// `POST /radiusserver/<identifier>`'s parameters.
fn radius_input(p: &Params) -> Result<RadiusInput, ServiceError> {
    let s = |k: &str| p.get(k).map(str::to_owned);
    Ok(RadiusInput {
        server: s("server"),
        port: p.int("port")?,
        secret: s("secret"),
        retries: p.int("retries")?,
        timeout: p.int("timeout")?,
        description: s("description"),
        dictionary: s("dictionary"),
    })
}

/// `GET /radiusserver/`: the definitions by identifier, secrets `__CENSORED__`.
pub async fn servers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let list = pi
        .run(&app, Some("radiusserver_read"), None, move |s, _| {
            Box::pin(async move { s.list_radius_servers().await })
        })
        .await?;
    let map: Map<String, Value> = list
        .iter()
        .map(|r| {
            (
                r.identifier.clone(),
                json!({
                    "id": r.id, "server": r.server, "port": r.port, "secret": CENSORED,
                    "retries": r.retries, "timeout": r.timeout, "dictionary": r.dictionary,
                    "description": r.description,
                }),
            )
        })
        .collect();
    Ok(pi.reply(Value::Object(map)))
}

/// `POST /radiusserver/<identifier>`: `value` true.
pub async fn save(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    pi.answer(&app, Some("radiusserver_write"), move |s, cx| {
        Box::pin(async move { s.save_radius_server(&id, &radius_input(&p)?, cx).await })
    })
    .await
}

/// `DELETE /radiusserver/<identifier>`.
pub async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("radiusserver_write"), move |s, cx| {
        Box::pin(async move { s.delete_radius_server(&id, cx).await })
    })
    .await
}

/// `POST /radiusserver/test_request`: `value` says whether the server accepted `username`
/// with `password` (through the given settings, or the stored `identifier` without `server`).
pub async fn test_request(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    pi.answer(&app, Some("radiusserver_write"), move |s, _| {
        Box::pin(async move {
            let settings = match p.get_nonblank("server") {
                Some(_) => Some(radius_input(&p)?),
                None => None,
            };
            s.test_radius_server(
                p.get("identifier"),
                settings.as_ref(),
                p.get("username"),
                p.get("password"),
            )
            .await
        })
    })
    .await
}
