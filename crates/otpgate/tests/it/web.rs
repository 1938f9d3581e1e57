//! The web interface over real HTTP: sessions, CSRF, headers, escaping, the two-step login,
//! self-service enrollment with verification, and the admin pages' effects (checked through
//! the API). The browser itself is driven in `browser.rs`.

use crate::support::{ADMIN_PW, Gateway, Server, otp_in};
use reqwest::header::{HeaderMap, HeaderValue};
use std::collections::BTreeMap;

/// A minimal browser: keeps cookies, does not follow redirects, sends forms.
pub(crate) struct Browser<'a> {
    server: &'a Server,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

pub(crate) struct Page {
    pub status: u16,
    pub location: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the first `name="csrf"` input or the csrf meta tag.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf-token\" content=\"")
            .map(|i| i + "name=\"csrf-token\" content=\"".len())
            .expect("a page with a csrf token");
        self.body[at..at + 32].to_owned()
    }
}

impl<'a> Browser<'a> {
    pub fn new(server: &'a Server) -> Self {
        Browser {
            server,
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn take(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, _) = c.split_once(';').unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .client
            .get(self.server.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, HeaderMap::new()).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: HeaderMap,
    ) -> Page {
        let r = self
            .client
            .post(self.server.url(path))
            .header("cookie", self.cookie_header())
            .headers(headers)
            .form(form)
            .send()
            .await
            .unwrap();
        self.take(r).await
    }

    pub async fn admin_login(&mut self) -> String {
        let p = self
            .post(
                "/ui/admin/login",
                &[("username", "admin"), ("password", ADMIN_PW)],
            )
            .await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (303, "/ui/admin/"),
            "{}",
            p.body
        );
        self.get("/ui/admin/").await.csrf()
    }
}

#[tokio::test]
async fn pages_have_a_strict_csp_no_inline_code_and_immutable_hashed_assets() {
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let root = b.get("/").await;
    assert_eq!((root.status, root.location.as_str()), (303, "/ui/"));
    let p = b.get("/ui/login").await;
    assert_eq!(p.status, 200);
    let csp = p.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(csp.contains("require-trusted-types-for 'script'"), "{csp}");
    // Same-origin form posts then carry our Origin (not `null`, which is refused).
    assert_eq!(p.headers["referrer-policy"], "same-origin");
    assert!(!p.body.contains("<script>") && !p.body.contains(" style="));
    assert!(p.body.contains("autocomplete=\"current-password\""));
    let at = p.body.find("/ui/assets/app.").unwrap();
    let end = p.body[at..].find('"').unwrap();
    let css = b.get(&p.body[at..at + end]).await;
    assert_eq!(css.status, 200);
    assert_eq!(
        css.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(b.get("/ui/assets/app.0000000000.css").await.status, 404);
    // Pages are not audited; sign-in attempts are.
    let (_, audit) = s.aget("/audit/", &[("action", "*/ui/*")]).await;
    assert_eq!(audit["result"]["value"]["count"], 0, "{audit}");
}

#[tokio::test]
async fn admin_sessions_need_csrf_die_at_sign_out_and_are_no_api_tokens() {
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    // Not signed in: to the sign-in page.
    let p = b.get("/ui/admin/tokens").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/admin/login"));
    let wrong = b
        .post(
            "/ui/admin/login",
            &[("username", "admin"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("The admin name or password is wrong."));
    assert!(b.cookies.is_empty());
    let ok = b
        .post(
            "/ui/admin/login",
            &[("username", "admin"), ("password", ADMIN_PW)],
        )
        .await;
    let set = ok.headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("__Host-otpgate="), "{set}");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let csrf = b.get("/ui/admin/").await.csrf();
    let form = [
        ("name", "web-gw"),
        ("module", "sink"),
        ("description", "made in the browser"),
    ];
    // Without the CSRF token, with a wrong one, or sent cross-site: refused, nothing saved.
    assert_eq!(b.post("/ui/admin/gateways/new", &form).await.status, 403);
    let mut bad = form.to_vec();
    bad.push(("csrf", "0123456789abcdef0123456789abcdef"));
    assert_eq!(b.post("/ui/admin/gateways/new", &bad).await.status, 403);
    let mut good = form.to_vec();
    good.push(("csrf", &csrf));
    let mut cross = HeaderMap::new();
    cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    assert_eq!(
        b.post_with("/ui/admin/gateways/new", &good, cross)
            .await
            .status,
        403
    );
    let mut origin = HeaderMap::new();
    origin.insert("origin", HeaderValue::from_static("https://evil.example"));
    assert_eq!(
        b.post_with("/ui/admin/gateways/new", &good, origin)
            .await
            .status,
        403
    );
    let (_, gws) = s.aget("/smsgateway/", &[]).await;
    assert_eq!(gws["result"]["value"].as_array().unwrap().len(), 0, "{gws}");
    let saved = b.post("/ui/admin/gateways/new", &good).await;
    assert_eq!(
        (saved.status, saved.location.as_str()),
        (303, "/ui/admin/gateways/web-gw?ok=saved-default"),
        "{}",
        saved.body
    );
    let (_, gws) = s.aget("/smsgateway/", &[]).await;
    assert_eq!(gws["result"]["value"][0]["name"], "web-gw");
    assert_eq!(
        gws["result"]["value"][0]["description"],
        "made in the browser"
    );
    // The change is audited with the admin's name.
    let (_, audit) = s
        .aget("/audit/", &[("action", "POST /ui/admin/gateways/new")])
        .await;
    let rows = audit["result"]["value"]["auditdata"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["administrator"] == "admin" && r["success"] == 1),
        "{audit}"
    );
    // The session cookie is no API token.
    let cookie = b.cookies["__Host-otpgate"].clone();
    let r = s
        .client
        .get(s.url("/token/"))
        .header("Authorization", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signing out kills the session, even for a copy of the cookie.
    let copy = b.cookies.clone();
    let out = b.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location, "/ui/admin/login?ok=signed-out");
    assert!(b.cookies.is_empty());
    b.cookies = copy;
    let p = b.get("/ui/admin/").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/admin/login"));
}

#[tokio::test]
async fn values_from_users_are_escaped_in_pages() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/user/",
        &[
            ("user", "mallory"),
            ("resolver", "local"),
            ("givenname", "<img src=x onerror=alert(1)>"),
            ("surname", "\"><script>alert(2)</script>"),
        ],
    )
    .await;
    let mut b = Browser::new(&s);
    b.admin_login().await;
    let p = b.get("/ui/admin/users?realm=realm1").await;
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("<img src=x") && !p.body.contains("<script>alert"));
}

#[tokio::test]
async fn a_user_enrolls_a_phone_verified_by_sms_then_signs_in_with_pin_and_otp() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let mut b = Browser::new(&s);
    // No token yet: the user store password signs alice in, to enroll a phone.
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "wrong")])
        .await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("The user name or PIN is wrong."));
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "alice-pw")])
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/me/phone"),
        "{}",
        p.body
    );
    let csrf = b.get("/ui/me/phone").await.csrf();
    let mismatch = b
        .post(
            "/ui/me/phone",
            &[
                ("csrf", &csrf),
                ("phone", "+4915100000009"),
                ("pin", "4711"),
                ("pin2", "4712"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 422);
    assert!(mismatch.body.contains("The two PINs differ."));
    let sent_before = gw.count();
    let p = b
        .post(
            "/ui/me/phone",
            &[
                ("csrf", &csrf),
                ("phone", "+4915100000009"),
                ("pin", "4711"),
                ("pin2", "4711"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let serial = p.location.split("serial=").nth(1).unwrap().to_owned();
    assert_eq!(gw.count(), sent_before + 1);
    let otp = gw.last_otp("+4915100000009");
    // Until verified, the token cannot sign in.
    assert_eq!(s.token_info(&serial).await["rollout_state"], "verify");
    let (_, r) = s
        .check(&[("user", "alice"), ("pass", &format!("4711{otp}"))])
        .await;
    assert_eq!(r["result"]["value"], false, "{r}");
    let wrong = b
        .post(
            "/ui/me/phone/verify",
            &[("csrf", &csrf), ("serial", &serial), ("otp", "000000")],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("Verification of the new token failed."));
    let ok = b
        .post(
            "/ui/me/phone/verify",
            &[("csrf", &csrf), ("serial", &serial), ("otp", &otp)],
        )
        .await;
    assert_eq!(
        (ok.status, ok.location.as_str()),
        (303, "/ui/me?ok=verified")
    );
    assert_eq!(s.token_info(&serial).await["rollout_state"], "enrolled");
    // The same OTP does not verify twice.
    let again = b
        .post(
            "/ui/me/phone/verify",
            &[("csrf", &csrf), ("serial", &serial), ("otp", &otp)],
        )
        .await;
    assert_eq!(again.status, 422);
    b.post("/ui/logout", &[("csrf", &csrf)]).await;

    // Now the SMS login: the password no longer works, the PIN sends an SMS.
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "alice-pw")])
        .await;
    assert_eq!(p.status, 422);
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "4711")])
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/login/otp"),
        "{}",
        p.body
    );
    let otp = otp_in(&gw.last().field("text").unwrap());
    // The code's page says where it went (the number's last digits) and for how long.
    let page = b.get("/ui/login/otp").await;
    assert!(
        page.body
            .contains("the phone number ending in 09</strong>. Enter it here within"),
        "{}",
        page.body
    );
    let p = b.post("/ui/login/otp", &[("otp", "111111")]).await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("ending in 09"), "{}", p.body);
    assert!(b.get("/ui/me").await.location == "/ui/login");
    let p = b.post("/ui/login/otp", &[("otp", &otp)]).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/me"),
        "{}",
        p.body
    );
    let me = b.get("/ui/me").await;
    assert!(
        me.body.contains("+49 1510 0000009") && me.body.contains(&serial),
        "{}",
        me.body
    );
    let csrf = me.csrf();
    // Another phone gets a PIN of its own, and the form says so.
    let add = b.get("/ui/me/phone").await;
    assert!(add.body.contains("gets a PIN of its own"), "{}", add.body);
    let change = b.get(&format!("/ui/me/phone?replaces={serial}")).await;
    assert!(
        change
            .body
            .contains("replaces <strong>+49 1510 0000009</strong>"),
        "{}",
        change.body
    );

    // Change the number: the new token replaces the old one and keeps the PIN.
    let p = b
        .post(
            "/ui/me/phone",
            &[
                ("csrf", &csrf),
                ("phone", "+4915100000010"),
                ("replaces", &serial),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let new_serial = p.location.split("serial=").nth(1).unwrap().to_owned();
    let otp = gw.last_otp("+4915100000010");
    let ok = b
        .post(
            "/ui/me/phone/verify",
            &[("csrf", &csrf), ("serial", &new_serial), ("otp", &otp)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(
        s.token_info(&serial).await.is_null(),
        "the old token is gone"
    );
    let (_, r) = s.check(&[("user", "alice"), ("pass", "4711")]).await;
    assert_eq!(r["result"]["authentication"], "CHALLENGE", "{r}");
    assert_eq!(gw.last().field("phone").unwrap(), "+4915100000010");

    // Bob cannot touch alice's token.
    let mut bob = Browser::new(&s);
    bob.post("/ui/login", &[("user", "bob"), ("pass", "bob-pw")])
        .await;
    let bcsrf = bob.get("/ui/me/pin").await.csrf();
    let p = bob
        .post(
            "/ui/me/phone",
            &[
                ("csrf", &bcsrf),
                ("phone", "+4915100000011"),
                ("replaces", &new_serial),
            ],
        )
        .await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("You have no token"), "{}", p.body);
}

#[tokio::test]
async fn user_policies_decide_what_users_do_themselves_and_which_pins_they_choose() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    // realm1's users may set PINs of 6 digits and more, and nothing else.
    s.ok(
        "/policy/self",
        &[
            ("scope", "user"),
            ("realm", "realm1"),
            ("action", "setpin, otp_pin_minlength=6, otp_pin_contents=n"),
        ],
    )
    .await;
    let mut b = Browser::new(&s);
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "alice-pw")])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let csrf = b.get("/ui/me/phone").await.csrf();
    let enroll = [
        ("csrf", csrf.as_str()),
        ("phone", "+4915100000009"),
        ("pin", "471147"),
        ("pin2", "471147"),
    ];
    let p = b.post("/ui/me/phone", &enroll).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body
            .contains("User actions are defined, but the action enrollSMS is not allowed!"),
        "{}",
        p.body
    );
    s.ok(
        "/policy/self",
        &[(
            "action",
            "setpin, enrollSMS, otp_pin_minlength=6, otp_pin_contents=n",
        )],
    )
    .await;
    let short = [
        ("csrf", csrf.as_str()),
        ("phone", "+4915100000009"),
        ("pin", "4711"),
        ("pin2", "4711"),
    ];
    let p = b.post("/ui/me/phone", &short).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body.contains("The minimum OTP PIN length is 6"),
        "{}",
        p.body
    );
    let p = b.post("/ui/me/phone", &enroll).await;
    assert_eq!(p.status, 303, "{}", p.body);
    // A policy type the API refuses to save names the scopes otpgate evaluates.
    let (st, body) = s
        .apost(
            "/policy/ui",
            &[("scope", "webui"), ("action", "login_mode=privacyIDEA")],
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        body["result"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enrollment and user policies"),
        "{body}"
    );
}

#[tokio::test]
async fn admin_enrolls_tests_a_gateway_counts_sms_and_filters_the_audit() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    // Test SMS.
    let before = gw.count();
    let p = b
        .post(
            "/ui/admin/gateways/gw/test",
            &[("csrf", &csrf), ("test_phone", "+4915100000077")],
        )
        .await;
    assert_eq!(
        p.location, "/ui/admin/gateways/gw?ok=test-sent",
        "{}",
        p.body
    );
    assert_eq!(gw.count(), before + 1);
    assert!(
        gw.last()
            .field("text")
            .unwrap()
            .contains("otpgate test message")
    );
    // Enroll for bob with a PIN; he signs in through the API.
    let p = b
        .post(
            "/ui/admin/tokens/new",
            &[
                ("csrf", &csrf),
                ("user", "bob"),
                ("realm", "realm1"),
                ("phone", "+4915100000002"),
                ("pin", "9876"),
                ("pin2", "9876"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let serial = p
        .location
        .trim_start_matches("/ui/admin/tokens/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (_, r) = s.check(&[("user", "bob"), ("pass", "9876")]).await;
    assert_eq!(r["result"]["authentication"], "CHALLENGE", "{r}");
    let (_, r) = s.check(&[("user", "bob"), ("pass", "9876000000")]).await;
    assert_eq!(r["result"]["authentication"], "REJECT", "{r}");
    // Disable through the console: the next login fails, and the event rule for
    // token_disable tells the owner, as it would for the API.
    s.ok(
        "/event",
        &[
            ("name", "disabled"),
            ("event", "token_disable"),
            ("handlermodule", "UserNotification"),
            ("action", "sendsms"),
            ("position", "post"),
            ("option.smsconfig", "gw"),
            ("option.To", "tokenowner"),
            ("option.body", "Token {serial} was disabled by {admin}."),
        ],
    )
    .await;
    let p = b
        .post(
            &format!("/ui/admin/tokens/{serial}/disable"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(s.token_info(&serial).await["active"], false);
    let expected = format!("Token {serial} was disabled by admin.");
    crate::events::until("the notification", async || {
        gw.received()
            .iter()
            .any(|r| r.field("text").as_deref() == Some(expected.as_str()))
    })
    .await;
    // The notification is counted once the gateway's answer is back (the outbox item is
    // `sent`), which can be a moment after the gateway has the request.
    crate::events::until("the notification to settle", async || {
        let (_, ob) = s.aget("/event/outbox", &[("status", "sent")]).await;
        ob["result"]["value"]["count"] == 1
    })
    .await;
    // Dashboard: the cluster-wide counts include the test SMS, bob's SMS and the notification.
    let d = b.get("/ui/admin/").await;
    assert_eq!(d.status, 200);
    assert!(
        d.body.contains("<dt>SMS sent today</dt><dd>3</dd>"),
        "{}",
        d.body
    );
    // The audit filter finds bob's rejected login.
    let a = b
        .get("/ui/admin/audit?user=bob&authentication=REJECT")
        .await;
    assert!(
        a.body.contains("REJECT") && a.body.contains("POST /validate/check"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("badge warn\">CHALLENGE"), "{}", a.body);
    // The live counter: UCS-2 for a Cyrillic text.
    let c = b
        .post_with(
            "/ui/admin/texts/count",
            &[("text", "Ваш код {otp}")],
            {
                let mut h = HeaderMap::new();
                h.insert("x-csrf-token", HeaderValue::from_str(&csrf).unwrap());
                h
            },
        )
        .await;
    let v: serde_json::Value = serde_json::from_str(&c.body).unwrap();
    assert_eq!(v["segments"], 1, "{v}");
    assert!(v["summary"].as_str().unwrap().starts_with("UCS-2"), "{v}");
    // Saving a text with a comma keeps it whole.
    let p = b
        .post(
            "/ui/admin/texts",
            &[
                ("csrf", &csrf),
                ("smstext", "Hello, your code is {otp}"),
                ("do", "save"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    b.post(
        &format!("/ui/admin/tokens/{serial}/enable"),
        &[("csrf", &csrf)],
    )
    .await;
    s.check(&[("user", "bob"), ("pass", "9876")]).await;
    let text = gw.last().field("text").unwrap();
    assert!(text.starts_with("Hello, your code is "), "{text}");
}

#[tokio::test]
async fn an_http_gateway_from_the_form_carries_free_fields_and_keeps_a_secret_header() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let form = b.get("/ui/admin/gateways/new?provider=http").await;
    assert!(form.body.contains("Request fields") && form.body.contains("HTTP headers"));
    let url = gw.url("/sms");
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "web-http"),
        (
            "module",
            "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider",
        ),
        ("option.URL", url.as_str()),
        ("option.HTTP_METHOD", "POST"),
        ("option.RETURN_SUCCESS", "ID"),
        ("option_key_0", "text"),
        ("option_value_0", "{otp}"),
        ("option_key_1", "phone"),
        ("option_value_1", "{phone}"),
        ("option_key_2", ""),
        ("option_value_2", ""),
        ("header_key_0", "Authorization"),
        ("header_value_0", "Bearer s3cret-token"),
    ];
    let p = b.post("/ui/admin/gateways/new", &fields).await;
    assert_eq!(p.status, 303, "{}", p.body);
    // The secret header is never shown back.
    let page = b.get("/ui/admin/gateways/web-http").await;
    assert!(!page.body.contains("s3cret-token"), "{}", page.body);
    assert!(page.body.contains("value=\"Authorization\""));
    // Saved again with the header value left empty: the stored secret stays.
    let mut again: Vec<(&str, &str)> = fields
        .iter()
        .copied()
        .filter(|(k, _)| *k != "header_value_0")
        .collect();
    again.push(("header_value_0", ""));
    // The browser posts every provider field, the unset optional secret too.
    again.push(("option.PASSWORD", ""));
    let p = b.post("/ui/admin/gateways/web-http", &again).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, gws) = s.aget("/smsgateway/", &[]).await;
    let g = &gws["result"]["value"][0];
    assert_eq!(g["headers"]["Authorization"], "__CENSORED__", "{g}");
    assert_eq!(g["options"]["text"], "{otp}", "{g}");
    let p = b
        .post(
            "/ui/admin/gateways/web-http/test",
            &[("csrf", &csrf), ("test_phone", "+4915100000077")],
        )
        .await;
    assert_eq!(
        p.location, "/ui/admin/gateways/web-http?ok=test-sent",
        "{}",
        p.body
    );
    let got = gw.last();
    assert_eq!(
        got.headers.get("authorization").map(String::as_str),
        Some("Bearer s3cret-token")
    );
    assert_eq!(got.field("phone").as_deref(), Some("+4915100000077"));
}

#[tokio::test]
async fn hostile_forms_are_refused_cheaply_and_origin_null_counts_as_foreign() {
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    // 100 000 distinct field names: refused at once (linear parsing, a field cap).
    let body: String = (0..100_000).map(|i| format!("f{i}=1&")).collect();
    let started = std::time::Instant::now();
    let r = s
        .client
        .post(s.url("/ui/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("too many fields"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let mut null = HeaderMap::new();
    null.insert("origin", HeaderValue::from_static("null"));
    let p = b
        .post_with(
            "/ui/admin/gateways/new",
            &[("csrf", &csrf), ("name", "x"), ("module", "sink")],
            null,
        )
        .await;
    assert_eq!(p.status, 403);
}

#[tokio::test]
async fn number_changes_need_a_usable_token_and_the_replaced_token_to_survive() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let old = s
        .enroll("alice", "PISMOLD1", "1234", "+4915100000001")
        .await;
    let mut b = Browser::new(&s);
    b.post("/ui/login", &[("user", "alice"), ("pass", "1234")])
        .await;
    let otp = gw.last_otp("+4915100000001");
    let p = b.post("/ui/login/otp", &[("otp", &otp)]).await;
    assert_eq!(p.location, "/ui/me");
    let csrf = b.get("/ui/me").await.csrf();
    // The replaced token is deleted by an admin before the code is entered: nothing changes.
    let p = b
        .post(
            "/ui/me/phone",
            &[
                ("csrf", &csrf),
                ("phone", "+4915100000012"),
                ("replaces", &old),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let new = p.location.split("serial=").nth(1).unwrap().to_owned();
    // The new token has the old PIN from the start, never an empty one.
    let store = s.app.services.store();
    let new_pin = store.token_by_serial(&new).await.unwrap().unwrap().pin_hash;
    let old_pin = store.token_by_serial(&old).await.unwrap().unwrap().pin_hash;
    assert_eq!(new_pin, old_pin);
    s.adelete(&format!("/token/{old}")).await;
    let otp = gw.last_otp("+4915100000012");
    let p = b
        .post(
            "/ui/me/phone/verify",
            &[("csrf", &csrf), ("serial", &new), ("otp", &otp)],
        )
        .await;
    assert_eq!(p.status, 422);
    assert_eq!(s.token_info(&new).await["rollout_state"], "verify");
    // The phones page leads back to the pending verification.
    let me = b.get("/ui/me").await;
    assert!(
        me.body.contains("is waiting for its code")
            && me
                .body
                .contains(&format!("/ui/me/phone/verify?serial={new}")),
        "{}",
        me.body
    );
    // A pending enrollment does not lock the user out: the password still signs in.
    let mut again = Browser::new(&s);
    let p = again
        .post("/ui/login", &[("user", "alice"), ("pass", "alice-pw")])
        .await;
    assert_eq!(p.location, "/ui/me/phone", "{}", p.body);
    // A disabled token cannot be swapped for a fresh active one.
    let bobs = s.enroll("bob", "PISMBOB1", "5678", "+4915100000002").await;
    s.ok(&format!("/token/disable/{bobs}"), &[]).await;
    let mut bob = Browser::new(&s);
    // Bob's only token is disabled: no password fallback, no session.
    let p = bob
        .post("/ui/login", &[("user", "bob"), ("pass", "bob-pw")])
        .await;
    assert_eq!(p.status, 422);
    s.ok(&format!("/token/enable/{bobs}"), &[]).await;
    bob.post("/ui/login", &[("user", "bob"), ("pass", "5678")])
        .await;
    let otp = gw.last_otp("+4915100000002");
    bob.post("/ui/login/otp", &[("otp", &otp)]).await;
    let bcsrf = bob.get("/ui/me").await.csrf();
    s.ok(&format!("/token/disable/{bobs}"), &[]).await;
    let p = bob
        .post(
            "/ui/me/phone",
            &[
                ("csrf", &bcsrf),
                ("phone", "+4915100000013"),
                ("replaces", &bobs),
            ],
        )
        .await;
    assert_eq!(p.status, 422);
    assert!(p.body.contains("cannot be replaced"), "{}", p.body);
}

#[tokio::test]
async fn the_password_fallback_is_off_by_default_and_counts_failures_when_on() {
    assert!(
        !otpgate::config::Config::default().web.password_enrollment,
        "off unless an admin turns it on"
    );
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.start_of_window(3600);
    let mut b = Browser::new(&s);
    // Ten wrong passwords (DefaultMaxFailCount) in an hour; then even the right one is refused.
    for _ in 0..10 {
        let p = b
            .post("/ui/login", &[("user", "alice"), ("pass", "guess")])
            .await;
        assert_eq!(p.status, 422);
    }
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "alice-pw")])
        .await;
    assert_eq!(p.status, 422, "locked for the hour");
    // Bob's count is his own, and a right password does not count.
    for _ in 0..12 {
        let mut other = Browser::new(&s);
        let p = other
            .post("/ui/login", &[("user", "bob"), ("pass", "bob-pw")])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
    }
    s.advance(3600);
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "alice-pw")])
        .await;
    assert_eq!(p.status, 303, "the next hour: {}", p.body);
}

#[tokio::test]
async fn the_password_fallback_can_be_switched_off() {
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| c.web.password_enrollment = false).await;
    s.setup(&gw.url("/sms")).await;
    let mut b = Browser::new(&s);
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "alice-pw")])
        .await;
    assert_eq!(p.status, 422);
    assert!(b.cookies.is_empty());
}

#[tokio::test]
async fn passwd_user_stores_smtp_servers_policies_and_event_rules_from_the_console() {
    let gw = Gateway::start().await;
    let smtp = crate::support::SmtpPeer::start(Default::default()).await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    // A passwd file user store and a realm on it.
    let file =
        s.passwd_file(&["erin:x:1001:1001:Erin Example,,+4915100000020,:/home/erin:/bin/sh"]);
    let p = b
        .post(
            "/ui/admin/resolvers/new",
            &[
                ("csrf", &csrf),
                ("type", "passwdresolver"),
                ("name", "files"),
                ("fileName", &file),
                ("do", "save"),
            ],
        )
        .await;
    assert_eq!(
        p.location, "/ui/admin/resolvers/files?ok=saved",
        "{}",
        p.body
    );
    let p = b
        .post(
            "/ui/admin/realms",
            &[
                ("csrf", &csrf),
                ("kind", "realm"),
                ("realm_name", "unix"),
                ("resolvers", "files"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let users = b.get("/ui/admin/users?realm=unix").await;
    assert!(users.body.contains(">erin<"), "{}", users.body);
    // An SMTP server, and a test mail through it.
    let p = b
        .post(
            "/ui/admin/smtp/new",
            &[
                ("csrf", &csrf),
                ("identifier", "mail"),
                ("server", "127.0.0.1"),
                ("port", &smtp.port.to_string()),
                ("sender", "otpgate@example.org"),
                ("timeout", "5"),
            ],
        )
        .await;
    assert_eq!(p.location, "/ui/admin/smtp/mail?ok=saved", "{}", p.body);
    let p = b
        .post(
            "/ui/admin/smtp/mail/test",
            &[("csrf", &csrf), ("recipient", "admin@example.org")],
        )
        .await;
    assert_eq!(p.location, "/ui/admin/smtp/mail?ok=mail-sent", "{}", p.body);
    assert_eq!(smtp.mails().len(), 1);
    // A policy, shown with its warning; disabled from the console.
    let long = format!("smstext='{}{{otp}}'", "x".repeat(170));
    let p = b
        .post(
            "/ui/admin/policies/new",
            &[
                ("csrf", &csrf),
                ("name", "long"),
                ("scope", "authentication"),
                ("action", &long),
                ("active", "1"),
            ],
        )
        .await;
    assert_eq!(p.location, "/ui/admin/policies/long?ok=saved", "{}", p.body);
    let page = b.get("/ui/admin/policies/long").await;
    assert!(page.body.contains("needs 2 SMS"), "{}", page.body);
    b.post("/ui/admin/policies/long/disable", &[("csrf", &csrf)])
        .await;
    let (_, pol) = s.aget("/policy/long", &[]).await;
    assert_eq!(pol["result"]["value"][0]["active"], false, "{pol}");
    let p = b
        .post(
            "/ui/admin/policies/new",
            &[
                ("csrf", &csrf),
                ("name", "bad"),
                ("scope", "nope"),
                ("action", "x"),
            ],
        )
        .await;
    assert_eq!(p.status, 422);
    // Days and hours, conditions and check_all_resolvers from the console; shown in the list,
    // the form and the API.
    let conditions =
        r#"[["userinfo", "email", "matches", ".*@example.org", true, "condition_is_false"]]"#;
    let p = b
        .post(
            "/ui/admin/policies/new",
            &[
                ("csrf", &csrf),
                ("name", "office"),
                ("scope", "authentication"),
                ("action", "passOnNoToken"),
                ("resolver", "local"),
                ("time", "Mon-Fri: 8-18"),
                ("conditions", conditions),
                ("check_all_resolvers", "1"),
                ("active", "1"),
            ],
        )
        .await;
    assert_eq!(
        p.location, "/ui/admin/policies/office?ok=saved",
        "{}",
        p.body
    );
    let (_, pol) = s.aget("/policy/office", &[]).await;
    let v = &pol["result"]["value"][0];
    assert_eq!(v["time"], "Mon-Fri: 8-18", "{pol}");
    assert_eq!(v["check_all_resolvers"], true, "{pol}");
    assert_eq!(v["conditions"][0][3], ".*@example.org", "{pol}");
    let page = b.get("/ui/admin/policies/office").await;
    assert!(
        page.body.contains("Mon-Fri: 8-18") && page.body.contains("example.org"),
        "{}",
        page.body
    );
    let list = b.get("/ui/admin/policies").await;
    assert!(
        list.body.contains("at Mon-Fri: 8-18; 1 condition(s)"),
        "{}",
        list.body
    );
    // A bad condition is answered on the form.
    let p = b
        .post(
            "/ui/admin/policies/office",
            &[
                ("csrf", &csrf),
                ("scope", "authentication"),
                ("action", "passOnNoToken"),
                (
                    "conditions",
                    r#"[["userinfo", "email", "like", "x", true]]"#,
                ),
                ("active", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("Unknown comparator"), "{}", p.body);
    // An event rule: an SMS to the token owner on every enrollment.
    let p = b
        .post(
            "/ui/admin/events/new",
            &[
                ("csrf", &csrf),
                ("name", "tell-owner"),
                ("event", "token_init"),
                ("action", "sendsms"),
                ("position", "post"),
                ("option.smsconfig", "gw"),
                ("option.To", "tokenowner"),
                ("option.body", "A token was enrolled for you."),
                ("active", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, ev) = s.aget("/event/", &[]).await;
    assert_eq!(
        ev["result"]["value"][0]["options"]["smsconfig"], "gw",
        "{ev}"
    );
    let list = b.get("/ui/admin/events").await;
    assert!(list.body.contains("tell-owner"), "{}", list.body);
}

#[tokio::test]
async fn blocked_prefixes_from_the_console_stop_sms_and_web_sign_ins_fire_validate_events() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "PISMA1", "1234", "+4915100000001").await;
    // An event rule on failed logins (validate_check with a false result).
    s.ok(
        "/event",
        &[
            ("name", "failed"),
            ("event", "validate_check"),
            ("handlermodule", "UserNotification"),
            ("action", "sendsms"),
            ("position", "post"),
            ("option.smsconfig", "gw"),
            ("option.To", "number"),
            ("option.To number", "+4915100000099"),
            ("option.body", "A sign-in as {user} failed."),
            ("conditions", r#"{"result_value": "False"}"#),
        ],
    )
    .await;
    let mut b = Browser::new(&s);
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "1234")])
        .await;
    assert_eq!(p.location, "/ui/login/otp");
    let p = b.post("/ui/login/otp", &[("otp", "000000")]).await;
    assert_eq!(p.status, 422);
    // As through the API, the PIN step's CHALLENGE (value false) and the wrong OTP both match
    // `result_value: False`: two notifications, `{user}` being the given name.
    let failed = || {
        gw.received()
            .iter()
            .filter(|r| r.field("text").as_deref() == Some("A sign-in as Alice failed."))
            .count()
    };
    crate::events::until("the failed-login notifications", async || failed() == 2).await;
    // Block alice's prefix from the console: her next PIN sends no SMS.
    let mut a = Browser::new(&s);
    let csrf = a.admin_login().await;
    let p = a
        .post(
            "/ui/admin/blocks",
            &[("csrf", &csrf), ("prefix", "+491510"), ("reason", "test")],
        )
        .await;
    assert_eq!(p.location, "/ui/admin/gateways?ok=blocked", "{}", p.body);
    let list = a.get("/ui/admin/gateways").await;
    assert!(list.body.contains("<code>+491510</code>"), "{}", list.body);
    // (The refused login is itself a failed validate_check: its notification goes to the
    // number of the event rule, so count alice's SMS only.)
    let to_alice = || {
        gw.received()
            .iter()
            .filter(|r| r.field("phone").as_deref() == Some("+4915100000001"))
            .count()
    };
    let before = to_alice();
    let (_, r) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_ne!(r["result"]["authentication"], "CHALLENGE", "{r}");
    assert_eq!(to_alice(), before);
    // Its notification goes to a number under the same block: given up, not sent.
    crate::events::until("the blocked notification to be given up", async || {
        let (_, ob) = s.aget("/event/outbox", &[("status", "dead")]).await;
        ob["result"]["value"]["items"].as_array().is_some_and(|a| {
            a.iter().any(|i| {
                i["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("not allowed"))
            })
        })
    })
    .await;
    assert_eq!(failed(), 2, "no third notification went out");
    let bad = a
        .post(
            "/ui/admin/blocks",
            &[("csrf", &csrf), ("prefix", "49x"), ("reason", "")],
        )
        .await;
    assert_eq!(bad.status, 422);
    let p = a
        .post("/ui/admin/blocks/%2B491510/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.location, "/ui/admin/gateways?ok=unblocked", "{}", p.body);
    let (_, r) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(r["result"]["authentication"], "CHALLENGE", "{r}");
}

#[tokio::test]
async fn activity_extends_a_session_until_its_maximum_and_idleness_ends_it() {
    let s = Server::start_with(|c| {
        c.web.session_secs = 1800;
        c.web.session_max_secs = 7200;
    })
    .await;
    let mut b = Browser::new(&s);
    b.admin_login().await;
    // Active every 25 minutes: the session lives on, renewed by each request...
    for _ in 0..4 {
        s.advance(25 * 60);
        let p = b.get("/ui/admin/tokens").await;
        assert_eq!(p.status, 200, "still signed in");
    }
    // ...but not past two hours after signing in.
    s.advance(25 * 60);
    assert_eq!(b.get("/ui/admin/tokens").await.location, "/ui/admin/login");
    // Idle longer than 30 minutes: signed out.
    let mut idle = Browser::new(&s);
    idle.admin_login().await;
    s.advance(29 * 60);
    assert_eq!(idle.get("/ui/admin/").await.status, 200);
    s.advance(31 * 60);
    assert_eq!(idle.get("/ui/admin/").await.location, "/ui/admin/login");
}

#[tokio::test]
async fn a_sign_out_outlives_every_renewed_copy_of_the_session() {
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let old_copy = b.cookies.clone();
    // Ten minutes later a request renews the cookie (the browser keeps the new one).
    s.advance(10 * 60);
    let p = b.get("/ui/admin/").await;
    assert!(
        p.headers.get("set-cookie").is_some(),
        "an active session is renewed"
    );
    let renewed = b.cookies.clone();
    assert_ne!(renewed, old_copy);
    // Signed out with the older copy...
    b.cookies = old_copy;
    b.post("/ui/logout", &[("csrf", &csrf)]).await;
    // ...past that copy's expiry and the housekeeping: the renewed copy stays dead.
    s.advance(55 * 60);
    s.app.services.purge_web_logouts().await.unwrap();
    b.cookies = renewed;
    assert_eq!(b.get("/ui/admin/").await.location, "/ui/admin/login");
}

#[tokio::test]
async fn new_forms_never_replace_what_exists_and_a_failed_test_mail_keeps_the_tls_settings() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let p = b
        .post(
            "/ui/admin/gateways/new",
            &[("csrf", &csrf), ("name", "gw"), ("module", "sink")],
        )
        .await;
    assert_eq!(p.status, 422);
    assert!(
        p.body.contains("There is a gateway gw already"),
        "{}",
        p.body
    );
    let (_, gws) = s.aget("/smsgateway/", &[]).await;
    assert_eq!(
        gws["result"]["value"][0]["providermodule"],
        "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider"
    );
    // An SMTP server with TLS on a port where nothing listens: the test mail fails, and the
    // form shown again still says TLS (saving it must not switch TLS off).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let p = b
        .post(
            "/ui/admin/smtp/new",
            &[
                ("csrf", &csrf),
                ("identifier", "mail"),
                ("server", "127.0.0.1"),
                ("port", &closed),
                ("tls", "1"),
                ("tls_verify", "1"),
                ("timeout", "2"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let p = b
        .post(
            "/ui/admin/smtp/mail/test",
            &[("csrf", &csrf), ("recipient", "a@example.org")],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body.contains("name=\"tls\" value=\"1\" checked"),
        "{}",
        p.body
    );
    let p = b
        .post(
            "/ui/admin/smtp/new",
            &[
                ("csrf", &csrf),
                ("identifier", "mail"),
                ("server", "10.0.0.1"),
            ],
        )
        .await;
    assert_eq!(p.status, 422);
    let p = b
        .post(
            "/ui/admin/policies/new",
            &[
                ("csrf", &csrf),
                ("name", "p1"),
                ("scope", "authentication"),
                ("action", "smsautosend"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let p = b
        .post(
            "/ui/admin/policies/new",
            &[
                ("csrf", &csrf),
                ("name", "p1"),
                ("scope", "admin"),
                ("action", "enable"),
            ],
        )
        .await;
    assert_eq!(p.status, 422);
    let (_, pol) = s.aget("/policy/p1", &[]).await;
    assert_eq!(pol["result"]["value"][0]["scope"], "authentication");
}

#[tokio::test]
async fn a_users_own_enrollment_fires_token_init_like_the_api() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/event",
        &[
            ("name", "enrolled"),
            ("event", "token_init"),
            ("handlermodule", "UserNotification"),
            ("action", "sendsms"),
            ("position", "post"),
            ("option.smsconfig", "gw"),
            ("option.To", "number"),
            ("option.To number", "+4915100000098"),
            ("option.body", "Enrolled for {user}."),
        ],
    )
    .await;
    let notes = || {
        gw.received()
            .iter()
            .filter(|r| r.field("phone").as_deref() == Some("+4915100000098"))
            .count()
    };
    let mut b = Browser::new(&s);
    b.post("/ui/login", &[("user", "alice"), ("pass", "alice-pw")])
        .await;
    let csrf = b.get("/ui/me/phone").await.csrf();
    let p = b
        .post(
            "/ui/me/phone",
            &[
                ("csrf", &csrf),
                ("phone", "+4915100000009"),
                ("pin", "4711"),
                ("pin2", "4711"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    crate::events::until("the enrollment notification", async || notes() == 1).await;
    let serial = p.location.split("serial=").nth(1).unwrap().to_owned();
    let otp = gw.last_otp("+4915100000009");
    let p = b
        .post(
            "/ui/me/phone/verify",
            &[("csrf", &csrf), ("serial", &serial), ("otp", &otp)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    // privacyIDEA fires token_init for the verification call too.
    crate::events::until("the verification notification", async || notes() == 2).await;
}

#[tokio::test]
async fn admins_delete_internal_users_and_switch_and_delete_realms() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let page = b.get("/ui/admin/users?realm=realm1").await;
    assert!(
        page.body
            .contains("/ui/admin/users/local/carol/delete?realm=realm1"),
        "{}",
        page.body
    );
    let p = b
        .post(
            "/ui/admin/users/local/carol/delete?realm=realm1",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        p.location, "/ui/admin/users?realm=realm1&ok=deleted",
        "{}",
        p.body
    );
    let (_, users) = s.aget("/user/", &[("realm", "realm1")]).await;
    let names: Vec<&str> = users["result"]["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    // A second realm becomes the default; the first one is deleted.
    b.post(
        "/ui/admin/realms",
        &[
            ("csrf", &csrf),
            ("kind", "realm"),
            ("realm_name", "other"),
            ("resolvers", "local"),
        ],
    )
    .await;
    let p = b
        .post("/ui/admin/realms/other/default", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.location, "/ui/admin/realms?ok=realm", "{}", p.body);
    let p = b
        .post("/ui/admin/realms/realm1/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, realms) = s.aget("/realm/", &[]).await;
    let realms = realms["result"]["value"].as_object().unwrap();
    assert_eq!(realms.keys().collect::<Vec<_>>(), ["other"]);
    assert_eq!(realms["other"]["default"], true);
}

#[tokio::test]
async fn an_admin_sees_and_lands_on_only_the_pages_their_rights_allow() {
    let s = Server::start().await;
    s.app
        .services
        .add_admin("helpdesk", "helpdesk-pw")
        .await
        .unwrap();
    // The main admin keeps the policy rights (otpgate refuses a set of policies that would
    // leave nobody able to change them).
    s.ok(
        "/policy/root",
        &[
            ("scope", "admin"),
            ("action", "policyread, policywrite, policydelete"),
            ("adminuser", "admin"),
        ],
    )
    .await;
    s.ok(
        "/policy/helpdesk",
        &[
            ("scope", "admin"),
            ("action", "tokenlist, enable, disable"),
            ("adminuser", "helpdesk"),
        ],
    )
    .await;
    let mut b = Browser::new(&s);
    let p = b
        .post(
            "/ui/admin/login",
            &[("username", "helpdesk"), ("password", "helpdesk-pw")],
        )
        .await;
    assert_eq!(p.location, "/ui/admin/");
    // No audit right: the dashboard sends them to the tokens page, whose menu has only that.
    let d = b.get("/ui/admin/").await;
    assert_eq!(d.location, "/ui/admin/tokens");
    let t = b.get("/ui/admin/tokens").await;
    assert_eq!(t.status, 200);
    assert!(t.body.contains(">Tokens</a>"), "{}", t.body);
    for hidden in ["SMS gateways", "Audit log", "Policies", "Dashboard"] {
        assert!(
            !t.body.contains(&format!(">{hidden}</a>")),
            "{hidden} shown: {}",
            t.body
        );
    }
    assert_eq!(b.get("/ui/admin/gateways").await.status, 403);
}

/// The console opened over plain HTTP at a host name (a workstation's `http://server:5000/`):
/// browsers drop the secure session cookie there, so the sign-in used to start over in
/// silence. The pages say why and how to fix it, a sign-in is refused before any work (no SMS
/// for a user), and on localhost, over HTTPS or behind a TLS proxy nothing changes.
#[tokio::test]
async fn plain_http_at_a_host_name_says_why_signing_in_cannot_work() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    let mut b = Browser::new(&s);
    let remote = || {
        let mut h = HeaderMap::new();
        h.insert("host", "otp.example.org:5000".parse().unwrap());
        h
    };
    let page = s
        .client
        .get(s.url("/ui/admin/login"))
        .header("host", "otp.example.org:5000")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signing in cannot work here"), "{page}");
    assert!(page.contains("http://localhost:"), "{page}");
    let p = b
        .post_with(
            "/ui/admin/login",
            &[("username", "admin"), ("password", ADMIN_PW)],
            remote(),
        )
        .await;
    assert_ne!(p.status, 303, "no redirect into a loop");
    assert!(p.body.contains("Signing in cannot work here"), "{}", p.body);
    let p = b
        .post_with(
            "/ui/login",
            &[("user", "alice"), ("pass", "1234")],
            remote(),
        )
        .await;
    assert!(p.body.contains("Signing in cannot work here"), "{}", p.body);
    assert_eq!(gw.count(), 0, "no SMS for a sign-in that cannot go on");
    // Behind a TLS proxy (X-Forwarded-Proto: https) and on localhost: as ever.
    let mut proxied = remote();
    proxied.insert("x-forwarded-proto", "https".parse().unwrap());
    let p = b
        .post_with(
            "/ui/admin/login",
            &[("username", "admin"), ("password", ADMIN_PW)],
            proxied,
        )
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/admin/"),
        "{}",
        p.body
    );
    let mut local = Browser::new(&s);
    local.admin_login().await;
}

/// A user whose token is locked by failed attempts is told so at the sign-in, not "wrong PIN"
/// (they would only try again); the audit keeps privacyIDEA's reason.
#[tokio::test]
async fn a_locked_user_is_told_the_sign_in_is_blocked_not_that_the_pin_is_wrong() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    s.ok("/token/set/SMS1", &[("max_failcount", "1")]).await;
    let mut b = Browser::new(&s);
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "0000")])
        .await;
    assert!(
        p.body.contains("The user name or PIN is wrong."),
        "{}",
        p.body
    );
    let p = b
        .post("/ui/login", &[("user", "alice"), ("pass", "1234")])
        .await;
    assert!(p.body.contains("Too many failed attempts"), "{}", p.body);
    assert_eq!(gw.count(), 0);
    let (_, a) = s
        .aget(
            "/audit/",
            &[("action", "*ui/login*"), ("info", "*Failcounter exceeded*")],
        )
        .await;
    assert_eq!(a["result"]["value"]["count"], 1, "{a}");
}

/// A new installation: the dashboard lists what the set-up lacks, in the order to fix it,
/// each with its page; the enroll form warns when "the default gateway" would not send; a
/// realm without a user store is refused; once the configuration is complete the list goes
/// on with a user, an SMS token, a first login and the SMS text, one at a time; and while
/// the generated first password is the admin's, the dashboard says to change it.
#[tokio::test]
async fn the_dashboard_guides_the_first_run_and_forms_warn_of_what_is_missing() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let dash = b.get("/ui/admin/").await;
    assert!(dash.body.contains("To finish the set-up"), "{}", dash.body);
    let store = dash.body.find("No user store yet").unwrap();
    let realm = dash.body.find("No realm yet").unwrap();
    let gateway = dash.body.find("No SMS gateway yet").unwrap();
    assert!(store < realm && realm < gateway, "{}", dash.body);
    // The user store's link opens the internal kind, the one that needs nothing else.
    assert!(
        dash.body
            .contains("href=\"/ui/admin/resolvers/new?type=internalresolver\""),
        "{}",
        dash.body
    );
    let form = b.get("/ui/admin/resolvers/new").await;
    assert!(
        form.body
            .contains("<option value=\"internalresolver\" selected>"),
        "{}",
        form.body
    );
    assert!(!dash.body.contains("Your password"), "{}", dash.body);
    // A realm without a user store: refused in the console.
    let p = b
        .post(
            "/ui/admin/realms",
            &[("csrf", &csrf), ("kind", "realm"), ("realm_name", "empty")],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body.contains("Choose at least one user store"),
        "{}",
        p.body
    );
    // The form keeps what was typed, and says where the problem is.
    assert!(
        p.body.contains("id=\"realm_name\" name=\"realm_name\"")
            && p.body.contains("value=\"empty\""),
        "{}",
        p.body
    );
    assert!(p.body.contains("id=\"resolvers-error\""), "{}", p.body);
    // The first realm becomes the default without being asked to: the message says so.
    let p = b
        .post(
            "/ui/admin/realms",
            &[
                ("csrf", &csrf),
                ("kind", "resolver"),
                ("resolver_name", "local"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    // Its page has nothing to save; it says what comes next.
    let page = b.get("/ui/admin/resolvers/local").await;
    assert!(
        page.body.contains("Next: put it into a realm"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("value=\"save\""), "{}", page.body);
    let p = b
        .post(
            "/ui/admin/realms",
            &[
                ("csrf", &csrf),
                ("kind", "realm"),
                ("realm_name", "realm1"),
                ("resolvers", "local"),
            ],
        )
        .await;
    assert_eq!(
        p.location, "/ui/admin/realms?ok=realm-default",
        "{}",
        p.body
    );
    let page = b.get(&p.location).await;
    assert!(
        page.body.contains("As the first realm it is the default"),
        "{}",
        page.body
    );
    // Stores, realm and a gateway, but no default gateway.
    s.setup(&gw.url("/sms")).await;
    s.ok("/system/setConfig", &[("sms.identifier", "")]).await;
    let dash = b.get("/ui/admin/").await;
    assert!(!dash.body.contains("No user store yet"), "{}", dash.body);
    assert!(
        dash.body.contains("No default SMS gateway"),
        "{}",
        dash.body
    );
    let form = b.get("/ui/admin/tokens/new").await;
    assert!(
        form.body.contains("No default SMS gateway"),
        "{}",
        form.body
    );
    assert!(form.body.contains("none that works"), "{}", form.body);
    // A default that names no gateway.
    s.ok("/system/setConfig", &[("sms.identifier", "gone")])
        .await;
    let dash = b.get("/ui/admin/").await;
    assert!(
        dash.body
            .contains("The default SMS gateway gone does not exist"),
        "{}",
        dash.body
    );
    // The configuration complete: the plain form; a token is what is missing now (`setup`
    // made users in its internal store), and the SMS text is recommended.
    s.ok("/system/setConfig", &[("sms.identifier", "gw")]).await;
    let dash = b.get("/ui/admin/").await;
    assert!(
        !dash.body.contains("No default SMS gateway"),
        "{}",
        dash.body
    );
    assert!(dash.body.contains("No SMS token yet"), "{}", dash.body);
    assert!(dash.body.contains("Next steps"), "{}", dash.body);
    assert!(
        dash.body
            .contains("href=\"/ui/admin/tokens/new\">Enroll a token</a>"),
        "{}",
        dash.body
    );
    let form = b.get("/ui/admin/tokens/new").await;
    assert!(!form.body.contains("none that works"), "{}", form.body);
    // An internal store without users: a user is the next step, in the realm to add it to.
    for u in ["alice", "bob", "carol"] {
        s.adelete(&format!("/user/local/{u}")).await;
    }
    let dash = b.get("/ui/admin/").await;
    assert!(dash.body.contains("No user yet"), "{}", dash.body);
    assert!(
        dash.body
            .contains("href=\"/ui/admin/users?realm=realm1\">Add a user</a>"),
        "{}",
        dash.body
    );
    // The whole checklist, in order: four steps done, a user and a token to do.
    assert!(dash.body.contains("4 of 6 steps done"), "{}", dash.body);
    let user = dash.body.find("No user yet").unwrap();
    let token = dash.body.find("No SMS token yet").unwrap();
    assert!(user < token, "{}", dash.body);
    assert_eq!(
        dash.body
            .matches("<span class=\"badge ok\">Done</span>")
            .count(),
        4
    );
    s.ok(
        "/user/",
        &[
            ("user", "alice"),
            ("resolver", "local"),
            ("mobile", "+4915100000001"),
        ],
    )
    .await;
    // A token: nothing blocks a login; a first login is next.
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    let dash = b.get("/ui/admin/").await;
    assert!(!dash.body.contains("To finish the set-up"), "{}", dash.body);
    assert!(!dash.body.contains("No user yet"), "{}", dash.body);
    assert!(!dash.body.contains("No SMS token yet"), "{}", dash.body);
    assert!(
        dash.body
            .contains("Nobody has signed in with an SMS code yet"),
        "{}",
        dash.body
    );
    let (_, v) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = v["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp("+4915100000001");
    let (_, v) = s
        .check(&[("user", "alice"), ("pass", &otp), ("transaction_id", &tid)])
        .await;
    assert_eq!(v["result"]["value"], true, "{v}");
    // Signed in: what is left is the recommended SMS text.
    let dash = b.get("/ui/admin/").await;
    assert!(!dash.body.contains("Nobody has signed in"), "{}", dash.body);
    assert!(
        dash.body
            .contains("href=\"/ui/admin/texts\">Write the SMS text</a>"),
        "{}",
        dash.body
    );
    let texts = b.get("/ui/admin/texts").await;
    assert!(
        texts.body.contains("No SMS text is set yet"),
        "{}",
        texts.body
    );
    let csrf = dash.csrf();
    let p = b
        .post(
            "/ui/admin/texts",
            &[
                ("csrf", &csrf),
                ("do", "save"),
                ("smstext", "Your code is {otp}"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let dash = b.get("/ui/admin/").await;
    assert!(!dash.body.contains("Next steps"), "{}", dash.body);
    // The generated first password still in the data directory: change it, says the dashboard.
    let file = s.app.config.server.data_dir.join("initial-admin-password");
    std::fs::write(&file, "generated").unwrap();
    let dash = b.get("/ui/admin/").await;
    assert!(
        dash.body
            .contains("href=\"/ui/admin/password\">Choose your own password</a>"),
        "{}",
        dash.body
    );
    std::fs::remove_file(&file).unwrap();
    let dash = b.get("/ui/admin/").await;
    assert!(
        !dash.body.contains("Choose your own password"),
        "{}",
        dash.body
    );
}

#[tokio::test]
async fn the_gateway_form_puts_what_is_needed_first_offers_presets_and_marks_the_field_in_error() {
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    // A new gateway starts with what sends the SMS: the presets, then every provider.
    let choose = b.get("/ui/admin/gateways/new").await;
    assert!(
        choose.body.contains("What sends your SMS?"),
        "{}",
        choose.body
    );
    assert!(
        !choose.body.contains("name=\"option.URL\""),
        "{}",
        choose.body
    );
    assert!(
        choose
            .body
            .contains("href=\"/ui/admin/gateways/new?provider=sink\""),
        "{}",
        choose.body
    );
    let form = b.get("/ui/admin/gateways/new?provider=http").await;
    let at = |t: &str| {
        form.body
            .find(t)
            .unwrap_or_else(|| panic!("{t} is missing: {}", form.body))
    };
    // The required URL first, then what is sent, the success rule, the rest folded.
    assert!(at("name=\"option.URL\"") < at("Request fields"));
    assert!(at("Request fields") < at("name=\"option.RETURN_SUCCESS\""));
    assert!(at("name=\"option.RETURN_SUCCESS\"") < at("<summary>Advanced settings</summary>"));
    assert!(at("<summary>Advanced settings</summary>") < at("name=\"option.TIMEOUT\""));
    assert!(
        !form.body.contains("name=\"option.PROXY\""),
        "the deprecated PROXY is not offered"
    );
    // Labels in words, each with privacyIDEA's key in small print in its hint.
    for (label, key) in [
        ("Gateway URL (required)", "URL"),
        ("HTTP method (required)", "HTTP_METHOD"),
        ("Reply text that means sent", "RETURN_SUCCESS"),
    ] {
        let want = format!(
            "<label for=\"option.{key}\">{label}</label><p class=\"hint\" id=\"option.{key}-hint\"><code class=\"key\">{key}</code> "
        );
        assert!(form.body.contains(&want), "{want}: {}", form.body);
    }
    // A preset: Kannel, pre-filled, with what to fill in.
    let k = b
        .get("/ui/admin/gateways/new?provider=http&preset=kannel")
        .await;
    for want in [
        "value=\"http://kannel.example.net:13013/cgi-bin/sendsms\"",
        "value=\"{dlr_url}?status=%d\"",
        "value=\"dlr-url\"",
        "Fill in the sendsms-user",
    ] {
        assert!(k.body.contains(want), "{want}: {}", k.body);
    }
    let http = "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider";
    let fields = |url: &'static str, with_fields: bool| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("name", "bad".to_owned()),
            ("module", http.to_owned()),
            ("option.URL", url.to_owned()),
            ("option.HTTP_METHOD", "GET".to_owned()),
        ];
        if with_fields {
            f.extend([
                ("option_key_0", "text".to_owned()),
                ("option_value_0", "{otp}".to_owned()),
                ("option_key_1", "to".to_owned()),
                ("option_value_1", "{phone}".to_owned()),
            ]);
        }
        f
    };
    let as_refs = |f: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { f.clone() };
    // A bad URL: the message stands at the URL field, not at the name.
    let f = as_refs(&fields("ftp://sms.example.com/", true));
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/gateways/new", &f).await;
    assert!(p.body.contains("id=\"option.URL-error\""), "{}", p.body);
    assert!(!p.body.contains("id=\"name-error\""), "{}", p.body);
    // Neither the code nor the number: refused, at the request fields.
    let f = as_refs(&fields("https://sms.example.com/", false));
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/gateways/new", &f).await;
    assert!(
        p.body.contains("id=\"option_key_0-error\"") && p.body.contains("sends no SMS text"),
        "{}",
        p.body
    );
    let (_, gws) = s.aget("/smsgateway/", &[]).await;
    assert_eq!(
        gws["result"]["value"],
        serde_json::json!([]),
        "nothing saved"
    );
    // The first gateway becomes the default, and its page says so instead of offering the
    // button (this one's port is closed: its test SMS fails at once).
    let f = as_refs(&fields("http://127.0.0.1:9/", true));
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/gateways/new", &f).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/admin/gateways/bad?ok=saved-default")
    );
    let (_, cfg) = s.aget("/system/", &[]).await;
    assert_eq!(cfg["result"]["value"]["sms.identifier"], "bad", "{cfg}");
    // A second one is not, and offers it.
    let mut second = as_refs(&fields("http://127.0.0.1:9/", true));
    second[1].1 = "second".to_owned();
    let f: Vec<(&str, &str)> = second.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/gateways/new", &f).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/admin/gateways/second?ok=saved")
    );
    let page = b.get("/ui/admin/gateways/second").await;
    assert!(
        page.body.contains("Make it the default gateway"),
        "{}",
        page.body
    );
    let page = b.get("/ui/admin/gateways/bad").await;
    assert!(
        !page.body.contains("Make it the default gateway"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Tokens without a gateway of their own send through this one."),
        "{}",
        page.body
    );
    // A failed test SMS: the reason at the number, and the page says where it belongs (the
    // script puts that address back, so a reload does not send again).
    let p = b
        .post(
            "/ui/admin/gateways/bad/test",
            &[("csrf", &csrf), ("test_phone", "+4915100000001")],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("id=\"test_phone-error\""), "{}", p.body);
    assert!(
        p.body.contains(
            "action=\"/ui/admin/gateways/bad/test\" data-page-url=\"/ui/admin/gateways/bad\""
        ),
        "{}",
        p.body
    );
    // The default deleted (its name stays in sms.identifier): the next new gateway takes over.
    let mut third = as_refs(&fields("http://127.0.0.1:9/", true));
    third[1].1 = "third".to_owned();
    let f: Vec<(&str, &str)> = third.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post("/ui/admin/gateways/new", &f).await;
    assert_eq!(
        b.post("/ui/admin/gateways/bad/delete", &[("csrf", &csrf)])
            .await
            .status,
        303
    );
    let mut fourth = as_refs(&fields("http://127.0.0.1:9/", true));
    fourth[1].1 = "fourth".to_owned();
    let f: Vec<(&str, &str)> = fourth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/gateways/new", &f).await;
    assert_eq!(p.location, "/ui/admin/gateways/fourth?ok=saved-default");
    let (_, cfg) = s.aget("/system/", &[]).await;
    assert_eq!(cfg["result"]["value"]["sms.identifier"], "fourth", "{cfg}");
}

#[tokio::test]
async fn the_settings_page_sets_the_default_region_limits_and_validity_through_set_config() {
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let page = b.get("/ui/admin/settings").await;
    assert_eq!(page.status, 200);
    for want in [
        "Default region",
        "Code valid for (seconds)",
        "Send limits",
        "href=\"/ui/admin/settings\"",
    ] {
        assert!(page.body.contains(want), "{want}: {}", page.body);
    }
    let p = b
        .post(
            "/ui/admin/settings",
            &[
                ("csrf", &csrf),
                ("sms.default_region", "DE"),
                ("sms.providerTimeout", "120"),
                ("sms.limit.user", "3/600"),
            ],
        )
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/admin/settings?ok=saved"),
        "{}",
        p.body
    );
    let (_, cfg) = s.aget("/system/", &[]).await;
    let v = &cfg["result"]["value"];
    assert_eq!(
        (
            &v["sms.default_region"],
            &v["sms.providerTimeout"],
            &v["sms.limit.user"]
        ),
        (
            &serde_json::json!("DE"),
            &serde_json::json!("120"),
            &serde_json::json!("3/600")
        ),
        "{cfg}"
    );
    // A national number now parses with the region.
    s.ok("/resolver/local", &[("type", "internalresolver")])
        .await;
    s.ok(
        "/user/",
        &[
            ("user", "nat"),
            ("resolver", "local"),
            ("mobile", "0151 23456780"),
        ],
    )
    .await;
    // A bad value: refused at its field, nothing else changed.
    let p = b
        .post(
            "/ui/admin/settings",
            &[
                ("csrf", &csrf),
                ("sms.default_region", "Germany"),
                ("sms.providerTimeout", "120"),
                ("sms.limit.user", "3/600"),
            ],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body.contains("id=\"sms.default_region-error\""),
        "{}",
        p.body
    );
    // Emptied: back to the default.
    let p = b
        .post(
            "/ui/admin/settings",
            &[("csrf", &csrf), ("sms.default_region", "DE")],
        )
        .await;
    assert_eq!(p.status, 303);
    let (_, cfg) = s.aget("/system/", &[]).await;
    assert!(
        cfg["result"]["value"]["sms.providerTimeout"].is_null(),
        "{cfg}"
    );
}

#[tokio::test]
async fn the_enroll_form_picks_users_fills_in_their_mobile_reads_it_dynamically_and_repeats_the_pin()
 {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    // The realm's users to pick from; a named user's mobile filled in.
    let form = b.get("/ui/admin/tokens/new?user=alice&realm=realm1").await;
    assert!(
        form.body.contains("<datalist id=\"enroll-users\">")
            && form.body.contains("<option value=\"bob\">"),
        "{}",
        form.body
    );
    assert!(
        form.body.contains("value=\"+4915100000001\""),
        "alice's mobile: {}",
        form.body
    );
    // Two different PINs: refused at the repetition, nothing enrolled.
    let p = b
        .post(
            "/ui/admin/tokens/new",
            &[
                ("csrf", &csrf),
                ("user", "alice"),
                ("realm", "realm1"),
                ("phone", "+4915100000001"),
                ("pin", "1234"),
                ("pin2", "1243"),
            ],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("id=\"pin2-error\""), "{}", p.body);
    // The number read from the user store at every login.
    let p = b
        .post(
            "/ui/admin/tokens/new",
            &[
                ("csrf", &csrf),
                ("user", "alice"),
                ("realm", "realm1"),
                ("phone", "+4915100000001"),
                ("dynamic_phone", "1"),
                ("pin", "1234"),
                ("pin2", "1234"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let serial = p
        .location
        .trim_start_matches("/ui/admin/tokens/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let t = s.token_info(&serial).await;
    assert_eq!(t["info"]["dynamic_phone"], "True", "{t}");
    assert!(t["info"]["phone"].is_null(), "no number of its own: {t}");
    let (_, b2) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert!(b2["detail"]["transaction_id"].is_string(), "{b2}");
    assert_eq!(gw.last().field("phone").as_deref(), Some("+4915100000001"));
    // No number typed: the user's mobile from the user store, as the hint says.
    let enroll = |user: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("user", user.to_owned()),
            ("realm", "realm1".to_owned()),
            ("phone", String::new()),
            ("pin", "5678".to_owned()),
            ("pin2", "5678".to_owned()),
        ]
    };
    let mut f = enroll("bob");
    // "Default realm" chosen: the default realm's user.
    f[2].1 = String::new();
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/tokens/new", &f).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let serial = p
        .location
        .trim_start_matches("/ui/admin/tokens/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.token_info(&serial).await["info"]["phone"],
        "+4915100000002"
    );
    // A user without a mobile: the form says what to do, at the number.
    s.ok("/user/", &[("user", "nomobile"), ("resolver", "local")])
        .await;
    let f = enroll("nomobile");
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/tokens/new", &f).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("id=\"phone-error\""), "{}", p.body);
    assert!(
        p.body.contains("the user store has no mobile number"),
        "{}",
        p.body
    );
    // A gateway no policy allows (privacyIDEA checks that before whether it exists): the
    // policy's refusal at the top of the form, nothing enrolled.
    let mut f = enroll("bob");
    f[3].1 = "+4915100000002".to_owned();
    let mut f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.push(("sms.identifier", "nosuchgateway"));
    let p = b.post("/ui/admin/tokens/new", &f).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body
            .contains("<li>The requested sms.identifier is not allowed to be enrolled.</li>"),
        "{}",
        p.body
    );
    let (_, toks) = s
        .aget("/token/", &[("user", "bob"), ("realm", "realm1")])
        .await;
    assert_eq!(toks["result"]["value"]["count"], 1, "{toks}");
}

#[tokio::test]
async fn an_admin_changes_their_own_password_and_signs_in_with_the_new_one() {
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let dash = b.get("/ui/admin/").await;
    assert!(
        dash.body.contains("href=\"/ui/admin/password\""),
        "{}",
        dash.body
    );
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("current", current.to_owned()),
            ("password", new.to_owned()),
            ("password2", again.to_owned()),
        ]
    };
    for (form, field, says) in [
        (
            change("wrong-password", "new-password-1", "new-password-1"),
            "current",
            "The current password is wrong.",
        ),
        (
            change(ADMIN_PW, "new-password-1", "new-password-2"),
            "password2",
            "The two passwords differ.",
        ),
        (
            change(ADMIN_PW, "short", "short"),
            "password",
            "at least 8 characters",
        ),
    ] {
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let p = b.post("/ui/admin/password", &f).await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(
            p.body.contains(&format!("id=\"{field}-error\"")) && p.body.contains(says),
            "{says}: {}",
            p.body
        );
    }
    let form = change(ADMIN_PW, "new-password-1", "new-password-1");
    let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/password", &f).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/admin/login?ok=password-changed"),
        "{}",
        p.body
    );
    // The session it was changed in has ended (as every earlier one).
    let after = b.get("/ui/admin/").await;
    assert_eq!(
        (after.status, after.location.as_str()),
        (303, "/ui/admin/login"),
        "{}",
        after.body
    );
    // The old password no longer signs in, the new one does.
    let mut fresh = Browser::new(&s);
    let old = fresh
        .post(
            "/ui/admin/login",
            &[("username", "admin"), ("password", ADMIN_PW)],
        )
        .await;
    assert_ne!(old.status, 303, "{}", old.body);
    let new = fresh
        .post(
            "/ui/admin/login",
            &[("username", "admin"), ("password", "new-password-1")],
        )
        .await;
    assert_eq!((new.status, new.location.as_str()), (303, "/ui/admin/"));
}

#[tokio::test]
async fn an_admin_edits_an_internal_user_and_refusals_land_at_the_field_they_are_about() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let list = b.get("/ui/admin/users?realm=realm1").await;
    assert!(
        list.body
            .contains("href=\"/ui/admin/users/local/bob?realm=realm1\""),
        "{}",
        list.body
    );
    let page = b.get("/ui/admin/users/local/bob?realm=realm1").await;
    assert!(
        page.body.contains("value=\"+4915100000002\""),
        "{}",
        page.body
    );
    let p = b
        .post(
            "/ui/admin/users/local/bob?realm=realm1",
            &[
                ("csrf", &csrf),
                ("givenname", "Robert"),
                ("surname", "Test"),
                ("mobile", "+4915100000022"),
                ("email", ""),
                ("password", "bob-new-pw"),
            ],
        )
        .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/admin/users?realm=realm1&ok=saved"),
        "{}",
        p.body
    );
    let (_, u) = s
        .aget("/user/", &[("realm", "realm1"), ("username", "bob")])
        .await;
    let u = &u["result"]["value"][0];
    assert_eq!(
        (&u["givenname"], &u["mobile"]),
        (
            &serde_json::json!("Robert"),
            &serde_json::json!("+4915100000022")
        ),
        "{u}"
    );
    // Not a phone number: refused at the mobile field, nothing changed.
    let p = b
        .post(
            "/ui/admin/users/local/bob?realm=realm1",
            &[
                ("csrf", &csrf),
                ("givenname", "Bobby"),
                ("surname", "Test"),
                ("mobile", "call me maybe"),
                ("email", ""),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("id=\"mobile-error\""), "{}", p.body);
    let (_, u) = s
        .aget("/user/", &[("realm", "realm1"), ("username", "bob")])
        .await;
    assert_eq!(u["result"]["value"][0]["givenname"], "Robert");
    // A new user: each refusal at the field it is about (the service names it), the message
    // without the parameter's name, and the API's message with it.
    let new_user = |user: &'static str, mobile: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("realm", "realm1".to_owned()),
            ("resolver", "local".to_owned()),
            ("user", user.to_owned()),
            ("mobile", mobile.to_owned()),
            ("password", "a-password".to_owned()),
        ]
    };
    let form = new_user("dora", "call me maybe");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/users", &form).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("id=\"mobile-error\""), "{}", p.body);
    assert!(!p.body.contains("id=\"user-error\""), "{}", p.body);
    assert!(!p.body.contains("mobile: "), "{}", p.body);
    let form = new_user("bob", "+4915100000023");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/ui/admin/users", &form).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(p.body.contains("id=\"user-error\""), "{}", p.body);
    assert!(
        p.body.contains("The username bob already exists."),
        "{}",
        p.body
    );
    let (st, v) = s
        .apost(
            "/user/",
            &[
                ("user", "dora"),
                ("resolver", "local"),
                ("mobile", "call me maybe"),
            ],
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["result"]["error"]["code"], 905, "{v}");
    assert!(
        v["result"]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("ERR905: mobile: Invalid phone number"),
        "{v}"
    );
    // An unknown user: 404.
    assert_eq!(
        b.get("/ui/admin/users/local/nobody?realm=realm1")
            .await
            .status,
        404
    );
}
