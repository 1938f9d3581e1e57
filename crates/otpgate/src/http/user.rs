//! `/user`: the users of a realm, and the internal resolver's users (create, update,
//! delete).

use super::{ApiError, Pi};
use crate::params::Params;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::users::{User, UserInput, UserQuery};
use serde_json::{Value, json};

/// `POST|PUT /user/`'s parameters.
pub fn user_input(p: &Params) -> UserInput {
    let s = |k: &str| p.get(k).map(str::to_owned);
    UserInput {
        login: p
            .get_nonblank("user")
            .or(p.get_nonblank("username"))
            .map(str::to_owned),
        resolver: s("resolver"),
        password: s("password"),
        givenname: s("givenname"),
        surname: s("surname"),
        email: s("email"),
        mobile: s("mobile"),
        phone: s("phone"),
        description: s("description"),
    }
}

/// A user in privacyIDEA's shape.
pub fn user_json(u: &User) -> Value {
    let mobile = if u.mobile_list {
        json!(u.mobile)
    } else {
        json!(u.mobile.first().cloned().unwrap_or_default())
    };
    json!({
        "username": u.login, "userid": u.uid, "givenname": u.givenname, "surname": u.surname,
        "email": u.email, "mobile": mobile, "phone": u.phone,
        "description": u.description, "realm": u.realm, "resolver": u.resolver,
        "editable": u.resolver_type == "internalresolver",
    })
}

/// `GET /user/`.
pub async fn users(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = &pi.params;
    let q = UserQuery {
        realm: p.get("realm").map(str::to_owned),
        username: p.get("username").map(str::to_owned),
        resolver: p.get("resolver").map(str::to_owned),
    };
    let users = pi
        .run(&app, Some("userlist"), None, move |s, cx| {
            Box::pin(async move { s.list_users(&q, cx.admin_reach()).await })
        })
        .await?;
    Ok(pi.reply(users.iter().map(user_json).collect()))
}

/// `POST /user/`: the new user's id.
pub async fn create(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let input = user_input(&pi.params);
    pi.answer(&app, Some("adduser"), move |s, cx| {
        Box::pin(async move { s.create_user(&input, cx).await })
    })
    .await
}

/// `PUT /user/`.
pub async fn update(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let input = user_input(&pi.params);
    pi.answer(&app, Some("updateuser"), move |s, cx| {
        Box::pin(async move { s.update_user(&input, cx).await })
    })
    .await
}

/// `DELETE /user/<resolver>/<name>`.
pub async fn delete(
    State(app): State<App>,
    Path((resolver, name)): Path<(String, String)>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("deleteuser"), move |s, cx| {
        Box::pin(async move { s.delete_user(&resolver, &name, cx).await })
    })
    .await
}
