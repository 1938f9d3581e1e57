//! The admin console: one file per resource under `admin/` (handlers: read the form, make
//! the service call, choose the page), its HTML under `view/`. Every page checks the same
//! admin rights as the API, and every change is a service call with the API's events and
//! audit.
//!
//! The five configurable resources (SMS gateways, user stores, SMTP servers, policies, event
//! rules) share one skeleton, [`Resource`]: a "new" form, the stored item's page, and saving
//! either (a refused save shows the form again with what was typed and why).

pub mod audit;
pub mod dashboard;
pub mod events;
pub mod gateways;
pub mod password;
pub mod policies;
pub mod realms;
pub mod resolvers;
pub mod settings;
pub mod smtp;
pub mod texts;
pub mod tokens;
pub mod users;

use super::html::{Out, U};
use super::page::{Nav, exists_already, see_other};
use super::request::{Web, WebError, WebResult};
use super::session::Session;
use crate::params::Params;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use otpgate_service::ServiceError;
use std::future::Future;

/// Refused fields: (field id, or "" for the form, message).
pub type Errors = Vec<(String, String)>;

/// A console page (the admin menu) with the flash message the URL names.
pub fn page(
    web: &Web,
    s: &Session,
    title: &str,
    errors: &[(String, String)],
    body: Out,
) -> Response {
    web.page(s, Nav::Admin, title, errors, None, body)
}

/// A console page with `note` (or the flash message the URL names).
pub fn page_with(
    web: &Web,
    s: &Session,
    title: &str,
    errors: &[(String, String)],
    note: Option<&str>,
    body: Out,
) -> Response {
    web.page(s, Nav::Admin, title, errors, note, body)
}

/// What saving a resource's form came to.
pub enum Saved {
    /// Saved as the item with this key: to its page.
    Key(String),
    /// Saved, and something else happened the page's message says (a `flash` key).
    KeyWith(String, &'static str),
    /// The form again, with a note (a test that worked) or the refused fields.
    Again {
        /// A message for the top of the page.
        note: Option<String>,
        /// The refused fields.
        errors: Errors,
    },
}

impl Saved {
    /// The form again with one refused field.
    pub fn refused(field: &str, e: &ServiceError) -> Self {
        Saved::Again {
            note: None,
            errors: vec![(field.to_owned(), super::page::service_message(e))],
        }
    }
}

/// A configurable resource of the console, with a "new" form and a page per stored item.
pub trait Resource: Send + Sync + 'static {
    /// The list page (`/ui/admin/smtp`); items are under it (`/ui/admin/smtp/{key}`).
    const BASE: &'static str;
    /// The item in a title (`SMTP server`).
    const NOUN: &'static str;
    /// The title of the "new" form (`New SMTP server`).
    const NEW_TITLE: &'static str;
    /// The item in a sentence, with its article (`an SMTP server`).
    const A_NOUN: &'static str;
    /// The field a new item's key is typed in.
    const KEY_FIELD: &'static str;
    /// The admin right to see items.
    const READ: &'static str;
    /// The admin right to create and change them.
    const WRITE: &'static str;
    /// A stored item.
    type Item: Send + Sync;

    /// The stored item `key`, if there is one.
    fn load(
        web: &Web,
        key: &str,
    ) -> impl Future<Output = Result<Option<Self::Item>, WebError>> + Send;

    /// The page body: the form of a new item (`key` None) or of the stored `item`, showing
    /// `form` (what was typed) and `errors` of a refused save.
    fn body(
        web: &Web,
        s: &Session,
        key: Option<&str>,
        item: Option<&Self::Item>,
        form: &Params,
        errors: &Errors,
    ) -> impl Future<Output = Result<Out, WebError>> + Send;

    /// Saves the posted form as a new item (`key` None) or as the stored `key`.
    fn save(
        web: &Web,
        s: &Session,
        key: Option<&str>,
    ) -> impl Future<Output = Result<Saved, WebError>> + Send;

    /// What a page says when there is no item `key`.
    fn not_found(key: &str) -> String {
        format!("There is no {} {key}.", Self::NOUN)
    }

    /// The title of a stored item's page.
    fn title(key: &str, _item: &Self::Item) -> String {
        format!("{} {key}", Self::NOUN)
    }

    /// Whether the posted form saves (and not only tries, like "Test connection").
    fn saves(_web: &Web) -> bool {
        true
    }

    /// The key of a new item as typed.
    fn new_key(web: &Web) -> String {
        web.form
            .get(Self::KEY_FIELD)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

async fn stored<R: Resource>(web: &Web, key: &str) -> Result<R::Item, WebError> {
    R::load(web, key)
        .await?
        .ok_or_else(|| WebError::Page(StatusCode::NOT_FOUND, R::not_found(key)))
}

async fn form_page<R: Resource>(
    web: &Web,
    s: &Session,
    key: Option<&str>,
    form: &Params,
    errors: &Errors,
    note: Option<&str>,
) -> WebResult {
    match key {
        None => {
            let body = R::body(web, s, None, None, form, errors).await?;
            Ok(page_with(web, s, R::NEW_TITLE, errors, note, body))
        }
        Some(k) => {
            let item = stored::<R>(web, k).await?;
            let body = R::body(web, s, Some(k), Some(&item), form, errors).await?;
            Ok(page_with(web, s, &R::title(k, &item), errors, note, body))
        }
    }
}

/// `GET {base}/new`.
pub async fn new_form<R: Resource>(web: Web) -> WebResult {
    let s = web.admin(R::WRITE).await?;
    form_page::<R>(&web, &s, None, &Params::new(), &Vec::new(), None).await
}

/// `GET {base}/{key}`.
pub async fn edit<R: Resource>(Path(key): Path<String>, web: Web) -> WebResult {
    let s = web.admin(R::READ).await?;
    form_page::<R>(&web, &s, Some(&key), &Params::new(), &Vec::new(), None).await
}

/// `POST {base}/new`: never replaces (nor drops the secrets of) an item that exists.
pub async fn create<R: Resource>(web: Web) -> WebResult {
    let s = web.admin(R::WRITE).await?;
    let key = R::new_key(&web);
    let saved = if R::saves(&web) && !key.is_empty() && R::load(&web, &key).await?.is_some() {
        Saved::refused(
            R::KEY_FIELD,
            &exists_already(&format!("{} {key}", R::A_NOUN)),
        )
    } else {
        R::save(&web, &s, None).await?
    };
    after_save::<R>(&web, &s, None, saved).await
}

/// `POST {base}/{key}`.
pub async fn update<R: Resource>(Path(key): Path<String>, web: Web) -> WebResult {
    let s = web.admin(R::WRITE).await?;
    let saved = R::save(&web, &s, Some(&key)).await?;
    after_save::<R>(&web, &s, Some(&key), saved).await
}

async fn after_save<R: Resource>(
    web: &Web,
    s: &Session,
    key: Option<&str>,
    saved: Saved,
) -> WebResult {
    match saved {
        Saved::Key(k) => Ok(see_other(&format!("{}/{}?ok=saved", R::BASE, U(&k)))),
        Saved::KeyWith(k, flash) => Ok(see_other(&format!("{}/{}?ok={flash}", R::BASE, U(&k)))),
        Saved::Again { note, errors } => {
            let form = web.form.clone();
            form_page::<R>(web, s, key, &form, &errors, note.as_deref()).await
        }
    }
}

/// The buttons under a stored item: enable or disable (when it has that state) and delete.
pub fn actions_bar(b: &mut Out, s: &Session, base: &str, active: Option<bool>, what: &str) {
    use super::html::post_button;
    b.raw("<div class=\"actions\">");
    match active {
        Some(true) => post_button(
            b,
            &format!("{base}/disable"),
            &s.csrf,
            "Disable",
            "small",
            None,
        ),
        Some(false) => post_button(
            b,
            &format!("{base}/enable"),
            &s.csrf,
            "Enable",
            "small",
            None,
        ),
        None => {}
    }
    post_button(
        b,
        &format!("{base}/delete"),
        &s.csrf,
        "Delete",
        "small danger",
        Some(&format!("Delete {what}? This cannot be undone.")),
    );
    b.raw("</div>");
}

/// The answer to an action the route does not know.
pub fn no_such_action() -> WebError {
    WebError::Page(StatusCode::NOT_FOUND, "No such action.".into())
}
