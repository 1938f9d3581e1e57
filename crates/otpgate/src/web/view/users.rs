//! Users of a realm, and the form for a new internal user.

use super::super::html::{E, Field, Out, U, post_button, w};
use super::super::page::csrf_field;
use super::super::session::Session;
use super::opts;
use crate::params::Params;
use otpgate_service::users::User;

/// The realm and name filter.
pub fn filters(b: &mut Out, realms: &[String], realm: &str, username: &str) {
    b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/users\" role=\"search\">");
    Field::new("realm", "Realm")
        .value(realm)
        .select(&opts(realms.iter().cloned()), b);
    Field::new("username", "User name")
        .kind("search")
        .value(username)
        .hint("* matches anything")
        .input(b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Show</button></div></form>");
}

/// The users of `realm` (at most 200); those of internal user stores (`editable`) can be
/// deleted.
pub fn list(b: &mut Out, s: &Session, realm: &str, users: &[User], editable: &[String]) {
    if users.is_empty() {
        b.raw("<p class=\"empty\">No users.</p>");
        return;
    }
    w!(
        b,
        "<div class=\"table-wrap\"><table class=\"data\"><caption>Users in {} ({})</caption><thead><tr><th scope=\"col\">User name</th><th scope=\"col\">Name</th><th scope=\"col\">Mobile</th><th scope=\"col\">Email</th><th scope=\"col\">User store</th><th scope=\"col\">Tokens</th></tr></thead><tbody>",
        E(realm),
        users.len()
    );
    for u in users.iter().take(200) {
        let mobile = if u.mobile_list {
            u.mobile.join(", ")
        } else {
            u.mobile.first().cloned().unwrap_or_default()
        };
        w!(
            b,
            "<tr><td data-label=\"User name\">{}</td><td data-label=\"Name\">{} {}</td><td data-label=\"Mobile\">{}</td><td data-label=\"Email\">{}</td><td data-label=\"User store\">{}</td><td data-label=\"Tokens\"><a href=\"/ui/admin/tokens?user={}&amp;realm={}\">Tokens</a> · <a href=\"/ui/admin/tokens/new?user={}&amp;realm={}\">Enroll</a> · <a href=\"/ui/admin/audit?user={}\">Audit</a> ",
            E(&u.login),
            E(&u.givenname),
            E(&u.surname),
            E(&mobile),
            E(&u.email),
            E(&u.resolver),
            U(&u.login),
            U(realm),
            U(&u.login),
            U(realm),
            U(&u.login)
        );
        if editable.contains(&u.resolver) {
            w!(
                b,
                "· <a href=\"/ui/admin/users/{}/{}?realm={}\">Edit</a> ",
                U(&u.resolver),
                U(&u.login),
                U(realm)
            );
            post_button(
                b,
                &format!(
                    "/ui/admin/users/{}/{}/delete?realm={}",
                    U(&u.resolver),
                    U(&u.login),
                    U(realm)
                ),
                &s.csrf,
                "Delete",
                "small danger",
                Some(&format!(
                    "Delete the user {}? Their tokens stay, unassigned.",
                    u.login
                )),
            );
        }
        b.raw("</td></tr>");
    }
    b.raw("</tbody></table></div>");
}

/// The form for a new user of an internal user store (`internal`: their names).
/// An internal user's page: their attributes and a new password (empty: unchanged).
pub fn edit_user(
    b: &mut Out,
    s: &Session,
    u: &otpgate_service::users::User,
    realm: &str,
    f: &Params,
    errors: &[(String, String)],
) {
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"/ui/admin/users/{}/{}?realm={}\">",
        U(&u.resolver),
        U(&u.login),
        U(realm)
    );
    csrf_field(b, s);
    w!(
        b,
        "<p>User store <strong>{}</strong>, realm <strong>{}</strong>.</p>",
        E(&u.resolver),
        E(realm)
    );
    let g = |k: &str, stored: &str| f.get(k).unwrap_or(stored).to_owned();
    Field::new("givenname", "Given name")
        .value(&g("givenname", &u.givenname))
        .errors(errors)
        .input(b);
    Field::new("surname", "Surname")
        .value(&g("surname", &u.surname))
        .errors(errors)
        .input(b);
    Field::new("mobile", "Mobile number")
        .kind("tel")
        .value(&g("mobile", u.mobile.first().map_or("", String::as_str)))
        .hint("Tokens that read the number from the user store send to it from the next login.")
        .errors(errors)
        .input(b);
    Field::new("email", "Email")
        .kind("email")
        .value(&g("email", &u.email))
        .errors(errors)
        .input(b);
    Field::new("password", "New password")
        .kind("password")
        .hint("Leave empty to keep the password.")
        .attrs("autocomplete=\"new-password\"")
        .errors(errors)
        .input(b);
    w!(
        b,
        "<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save user</button> <a class=\"button\" href=\"/ui/admin/users?realm={}\">Cancel</a></div></form>",
        U(realm)
    );
}

pub fn new_user(
    b: &mut Out,
    s: &Session,
    realm: &str,
    internal: &[String],
    f: &Params,
    errors: &[(String, String)],
) {
    b.raw("<section class=\"card\" aria-labelledby=\"nu-h\"><h2 id=\"nu-h\">New user</h2>");
    if internal.is_empty() {
        b.raw("<p>Users are created in an internal user store. <a href=\"/ui/admin/realms\">Create one</a> first; users of passwd files and LDAP directories are managed there.</p>");
        b.raw("</section>");
        return;
    }
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/admin/users\">");
    csrf_field(b, s);
    // Back to this realm's list afterwards.
    w!(
        b,
        "<input type=\"hidden\" name=\"realm\" value=\"{}\">",
        E(realm)
    );
    let g = |k: &str| f.get(k).unwrap_or_default().to_owned();
    Field::new("resolver", "User store")
        .value(&g("resolver"))
        .errors(errors)
        .select(&opts(internal.iter().cloned()), b);
    Field::new("user", "User name")
        .value(&g("user"))
        .attrs("required autocapitalize=\"none\" spellcheck=\"false\"")
        .errors(errors)
        .input(b);
    Field::new("givenname", "Given name")
        .value(&g("givenname"))
        .input(b);
    Field::new("surname", "Surname")
        .value(&g("surname"))
        .input(b);
    Field::new("mobile", "Mobile number")
        .kind("tel")
        .value(&g("mobile"))
        .errors(errors)
        .input(b);
    Field::new("email", "Email")
        .kind("email")
        .value(&g("email"))
        .errors(errors)
        .input(b);
    Field::new("password", "Password")
        .kind("password")
        .hint("The user store password: it lets the user sign in to enroll a first phone (where that is turned on). Leave empty for none. The PIN of an SMS login is another thing: it is set with the user's SMS token.")
        .attrs("autocomplete=\"new-password\"")
        .errors(errors)
        .input(b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Create user</button></div></form>");
    b.raw("</section>");
}
