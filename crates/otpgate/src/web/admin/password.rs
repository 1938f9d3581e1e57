//! An admin changes their own password (at least 8 characters, typed twice, the current one
//! first). Afterwards every earlier session and API token of the admin ends, this one too, and
//! a left-over `initial-admin-password` file goes.

use super::super::html::{Field, Out};
use super::super::page::{csrf_field, see_other, service_message};
use super::super::request::{Web, WebResult};
use super::super::session::Session;
use super::{Errors, page};

fn body(s: &Session, errors: &Errors) -> Out {
    let mut b = Out::new();
    b.raw("<p>After the change you sign in again with the new password; your other sessions and API tokens end.</p>");
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/admin/password\">");
    csrf_field(&mut b, s);
    Field::new("current", "Current password")
        .kind("password")
        .attrs("required autocomplete=\"current-password\"")
        .errors(errors)
        .input(&mut b);
    Field::new("password", "New password")
        .kind("password")
        .hint("At least 8 characters.")
        .attrs("required autocomplete=\"new-password\" minlength=\"8\"")
        .errors(errors)
        .input(&mut b);
    Field::new("password2", "Repeat the new password")
        .kind("password")
        .attrs("required autocomplete=\"new-password\"")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Change password</button></div></form>");
    b
}

/// `GET /ui/admin/password`.
pub async fn show(web: Web) -> WebResult {
    let s = web.admin_any().await?;
    let b = body(&s, &Vec::new());
    Ok(page(&web, &s, "Your password", &[], b))
}

/// `POST /ui/admin/password`.
pub async fn change(web: Web) -> WebResult {
    let s = web.admin_any().await?;
    let current = web.form.get("current").unwrap_or_default().to_owned();
    let new = web.form.get("password").unwrap_or_default().to_owned();
    if new != web.form.get("password2").unwrap_or_default() {
        let errors = vec![(
            "password2".to_owned(),
            "The two passwords differ.".to_owned(),
        )];
        let b = body(&s, &errors);
        return Ok(page(&web, &s, "Your password", &errors, b));
    }
    let name = s.username.clone();
    let r = web
        .run(web.admin_call(&s), None, move |svc, cx| {
            Box::pin(async move {
                svc.change_own_admin_password(&name, &current, &new, cx)
                    .await
            })
        })
        .await;
    match r {
        Ok(()) => {
            // This session ends here (earlier ones end by their sign-in time).
            // Until the latest any renewed copy of it could live, as a sign-out.
            let until = s
                .since
                .saturating_add(web.app.config.web.session_max_secs)
                .max(s.exp);
            let sid = s.sid.clone();
            web.run(web.admin_call(&s), None, move |svc, cx| {
                Box::pin(async move { svc.web_logout(&sid, until, None, cx).await })
            })
            .await?;
            // The generated first password is the admin `admin`'s only.
            if s.username == "admin" {
                crate::bootstrap::forget_initial_password(&web.app.config.server.data_dir);
            }
            Ok(see_other("/ui/admin/login?ok=password-changed"))
        }
        Err(e) => {
            let m = service_message(&e);
            let field = if m.contains("current") {
                "current"
            } else {
                "password"
            };
            let errors = vec![(field.to_owned(), m)];
            let b = body(&s, &errors);
            Ok(page(&web, &s, "Your password", &errors, b))
        }
    }
}
