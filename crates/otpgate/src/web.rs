//! The web interface under `/ui/`: an admin console and user self-service, rendered on the
//! server, with embedded assets ([`assets`]), signed session cookies, CSRF tokens and a strict
//! CSP. Handlers hand every change and sign-in to the same service calls as the API
//! ([`request::Web::run`]), so they fire the same events and write the same audit rows.
//!
//! * `request.rs`: the request (query and form apart), sessions, cookies, CSRF.
//! * `page.rs` and `session.rs`: the layout, menus and messages; the signed-in browser.
//! * `html.rs`: escaping and labelled form fields. `assets.rs`: the hashed embedded files.
//! * `login.rs`, `me.rs`: signing in and out; self-service.
//! * `admin/`: the console's handlers, one file per resource; `view/`: their HTML.

mod admin;
pub mod assets;
mod html;
mod login;
mod me;
pub mod page;
pub mod request;
pub mod session;
mod view;

use crate::state::App;
use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

/// The web routes (all under `/ui/`, plus `GET /` → `/ui/`).
pub fn routes() -> Router<App> {
    use admin::events::Events;
    use admin::gateways::Gateways;
    use admin::policies::Policies;
    use admin::resolvers::Resolvers;
    use admin::smtp::Smtp;
    use admin::{create, edit, new_form, update};
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(login::home))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/login", get(login::user_form).post(login::user_login))
        .route("/ui/login/otp", get(login::otp_form).post(login::otp_login))
        .route(
            "/ui/admin/login",
            get(login::admin_form).post(login::admin_login),
        )
        .route("/ui/logout", post(login::logout))
        .route("/ui/me", get(me::overview))
        .route("/ui/me/phone", get(me::phone_form).post(me::phone_enroll))
        .route("/ui/me/phone/verify", get(me::verify_form).post(me::verify))
        .route("/ui/me/phone/resend", post(me::resend))
        .route("/ui/me/pin", get(me::pin_form).post(me::set_pin))
        .route("/ui/admin/", get(admin::dashboard::show))
        .route("/ui/admin", get(|| async { Redirect::to("/ui/admin/") }))
        .route("/ui/admin/tokens", get(admin::tokens::list))
        .route(
            "/ui/admin/tokens/new",
            get(admin::tokens::enroll_form).post(admin::tokens::enroll),
        )
        .route("/ui/admin/tokens/{serial}", get(admin::tokens::detail))
        .route(
            "/ui/admin/tokens/{serial}/{action}",
            post(admin::tokens::action),
        )
        .route(
            "/ui/admin/users",
            get(admin::users::list).post(admin::users::create),
        )
        .route(
            "/ui/admin/realms",
            get(admin::realms::list).post(admin::realms::save),
        )
        .route(
            "/ui/admin/users/{resolver}/{name}",
            get(admin::users::edit_form).post(admin::users::edit),
        )
        .route(
            "/ui/admin/users/{resolver}/{name}/{action}",
            post(admin::users::delete),
        )
        .route(
            "/ui/admin/realms/{name}/{action}",
            post(admin::realms::action),
        )
        .route("/ui/admin/gateways", get(admin::gateways::list))
        .route(
            "/ui/admin/gateways/new",
            get(new_form::<Gateways>).post(create::<Gateways>),
        )
        .route(
            "/ui/admin/gateways/{name}",
            get(edit::<Gateways>).post(update::<Gateways>),
        )
        .route(
            "/ui/admin/gateways/{name}/{action}",
            post(admin::gateways::action),
        )
        .route("/ui/admin/blocks", post(admin::gateways::block))
        .route(
            "/ui/admin/blocks/{prefix}/delete",
            post(admin::gateways::unblock),
        )
        .route(
            "/ui/admin/texts",
            get(admin::texts::show).post(admin::texts::save),
        )
        .route("/ui/admin/texts/count", post(admin::texts::count))
        .route(
            "/ui/admin/password",
            get(admin::password::show).post(admin::password::change),
        )
        .route(
            "/ui/admin/settings",
            get(admin::settings::show).post(admin::settings::save),
        )
        .route("/ui/admin/audit", get(admin::audit::list))
        .route("/ui/admin/audit/sms", get(admin::audit::sms))
        .route(
            "/ui/admin/resolvers/new",
            get(new_form::<Resolvers>).post(create::<Resolvers>),
        )
        .route(
            "/ui/admin/resolvers/{name}",
            get(edit::<Resolvers>).post(update::<Resolvers>),
        )
        .route(
            "/ui/admin/resolvers/{name}/{action}",
            post(admin::resolvers::action),
        )
        .route("/ui/admin/smtp", get(admin::smtp::list))
        .route(
            "/ui/admin/smtp/new",
            get(new_form::<Smtp>).post(create::<Smtp>),
        )
        .route(
            "/ui/admin/smtp/{id}",
            get(edit::<Smtp>).post(update::<Smtp>),
        )
        .route("/ui/admin/smtp/{id}/{action}", post(admin::smtp::action))
        .route("/ui/admin/policies", get(admin::policies::list))
        .route(
            "/ui/admin/policies/new",
            get(new_form::<Policies>).post(create::<Policies>),
        )
        .route(
            "/ui/admin/policies/{name}",
            get(edit::<Policies>).post(update::<Policies>),
        )
        .route(
            "/ui/admin/policies/{name}/{action}",
            post(admin::policies::action),
        )
        .route("/ui/admin/events", get(admin::events::list))
        .route(
            "/ui/admin/events/new",
            get(new_form::<Events>).post(create::<Events>),
        )
        .route(
            "/ui/admin/events/{id}",
            get(edit::<Events>).post(update::<Events>),
        )
        .route(
            "/ui/admin/events/{id}/{action}",
            post(admin::events::action),
        )
        .route(
            "/ui/admin/events/outbox/{id}/retry",
            post(admin::events::retry),
        )
        .layer(axum::middleware::from_fn(request::renew_cookie))
}

/// The routes (POSTs) the per-address rate limit covers: sign-ins and the enrollment code.
pub const RATE_LIMITED: &[&str] = &[
    "/ui/login",
    "/ui/login/otp",
    "/ui/admin/login",
    "/ui/admin/password",
    "/ui/me/phone/verify",
];
