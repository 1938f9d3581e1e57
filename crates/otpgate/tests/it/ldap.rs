//! LDAP resolvers against a real OpenLDAP `slapd` (Debian's package), started on loopback with
//! a throw-away database for each test: users, mobile numbers and passwords that exist only in
//! the directory.

use crate::support::{Gateway, Server, code, error, msg, otp_in, value};
use serde_json::Value;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SUFFIX: &str = "dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "root-secret";
const SLAPD: &str = "/usr/sbin/slapd";

/// The directory every test starts with.
const PEOPLE: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=machines,dc=example,dc=org
objectClass: organizationalUnit
ou: machines

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Smith
sn: Smith
givenName: Alice
mobile: +4915100000001
mail: alice@example.org
telephoneNumber: +49301234
userPassword: alice-dir-pw

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Jones
sn: Jones
givenName: Bob
mobile: +4915100000002
mobile: +4915100000009
userPassword: bob-dir-pw

dn: uid=jo*e,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: jo*e
cn: Jo Star
sn: Star
mobile: +4915100000004
userPassword: star-pw

dn: uid=joe,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: joe
cn: Joe Plain
sn: Plain
mobile: +4915100000005
userPassword: joe-pw

dn: uid=o'neil (ops)\\2C x,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: o'neil (ops), x
cn: O Neil
sn: Neil
mobile: +4915100000006
userPassword: neil-pw

dn:: dWlkPWrDvHJnZW4sb3U9cGVvcGxlLGRjPWV4YW1wbGUsZGM9b3Jn
objectClass: inetOrgPerson
uid:: asO8cmdlbg==
cn: Juergen
sn: Mueller
mobile: +4915100000007
userPassword: juergen-pw

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol White
sn: White
mobile: +4915100000003
userPassword: carol-dir-pw

dn: cn=Dave Brown,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: adAccount
cn: Dave Brown
sn: Brown
givenName: Dave
sAMAccountName: dbrown
userPrincipalName: dave.brown@example.org
objectGUID:: nx6l/wAoKlz+ASmAfxAgww==
mobile: +4915100000008
userPassword: dave-pw

dn: cn=printer,ou=machines,dc=example,dc=org
objectClass: device
cn: printer
";

/// Dave's objectGUID: bytes that are not UTF-8 and include filter metacharacters.
const DAVE_GUID: [u8; 16] = [
    0x9f, 0x1e, 0xa5, 0xff, 0x00, 0x28, 0x2a, 0x5c, 0xfe, 0x01, 0x29, 0x80, 0x7f, 0x10, 0x20, 0xc3,
];

/// Active Directory's login and id attributes, for an AD-like entry in OpenLDAP.
const AD_SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'objectGUID' EQUALITY octetStringMatch \
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch \
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch \
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'adAccount' SUP top AUXILIARY \
  MAY ( objectGUID $ sAMAccountName $ userPrincipalName ) )
";

/// A test CA and a server certificate for 127.0.0.1 and localhost, as PEM files in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "otpgate test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (ca, crt, k) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (ca, crt, k)
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real slapd with a throw-away database, stopped (by PID) when dropped.
pub struct Slapd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    pub tls_port: u16,
    pub ca: PathBuf,
}

impl Slapd {
    /// Starts slapd with [`PEOPLE`]. `tls_only`: every operation needs TLS (ldaps or StartTLS).
    pub async fn start(tls_only: bool) -> Slapd {
        assert!(
            Path::new(SLAPD).exists(),
            "slapd is missing: apt-get install slapd ldap-utils (.ci/run installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        let (ca, crt, key) = certificates(d);
        let security = if tls_only { "security tls=1\n" } else { "" };
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include {d}/ad.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {d}/slapd.pid\n\
             TLSCACertificateFile {ca}\n\
             TLSCertificateFile {crt}\n\
             TLSCertificateKeyFile {key}\n\
             {security}\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PW}\n\
             directory {d}/db\n\
             access to attrs=userPassword by anonymous auth by self read by * none\n\
             access to * by * read\n",
            d = d.display(),
            ca = ca.display(),
            crt = crt.display(),
            key = key.display(),
        );
        std::fs::write(d.join("ad.schema"), AD_SCHEMA).unwrap();
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        std::fs::write(d.join("people.ldif"), PEOPLE).unwrap();
        let out = Command::new("/usr/sbin/slapadd")
            .args(["-q", "-f"])
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("people.ldif"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Slapd {
            dir,
            child: None,
            port: free_port(),
            tls_port: free_port(),
            ca,
        };
        s.run().await;
        s
    }

    /// Starts the slapd process on the ports chosen at start and waits until it answers.
    pub async fn run(&mut self) {
        let d = self.dir.path();
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.port, self.tls_port
            ))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("slapd exited: {status}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("slapd did not start");
    }

    /// Stops slapd (SIGKILL by PID) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldaps_uri(&self) -> String {
        format!("ldaps://localhost:{}", self.tls_port)
    }

    /// Applies an LDIF change with ldapmodify as the root DN.
    pub fn modify(&self, ldif: &str) {
        let path = self.dir.path().join("change.ldif");
        std::fs::write(&path, ldif).unwrap();
        let out = Command::new("ldapmodify")
            .args(["-x", "-H", &self.uri(), "-D", ROOT_DN, "-w", ROOT_PW, "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An OpenLDAP resolver `dir` on `uri` with the given extra parameters, in realm `corp`
/// (default), and the gateway `gw` as the system default.
async fn directory_realm(s: &Server, gw: &Gateway, uri: &str, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![
        ("type", "ldapresolver"),
        ("LDAPURI", uri),
        ("LDAPBASE", SUFFIX),
        ("BINDDN", ROOT_DN),
        ("BINDPW", ROOT_PW),
        ("LOGINNAMEATTRIBUTE", "uid"),
        ("LDAPSEARCHFILTER", "(uid=*)(objectClass=inetOrgPerson)"),
        (
            "USERINFO",
            r#"{"phone": "telephoneNumber", "mobile": "mobile", "email": "mail", "surname": "sn", "givenname": "givenName"}"#,
        ),
        ("UIDTYPE", "entryUUID"),
        ("TIMEOUT", "2"),
    ];
    for (k, v) in extra {
        form.retain(|(key, _)| key != k);
        form.push((k, v));
    }
    let saved = s.ok("/resolver/dir", &form).await;
    s.ok("/realm/corp", &[("resolvers", "dir")]).await;
    s.ok("/defaultrealm/corp", &[]).await;
    s.http_gateway("gw", &gw.url("/sms"), &[]).await;
    s.default_gateway_sending_every_time("gw").await;
    saved
}

/// Enrols an SMS token for `user` that sends to the directory's mobile number (`dynamic_phone`);
/// an empty serial or PIN is left out. Returns the answer.
async fn enroll_dynamic(s: &Server, user: &str, serial: &str, pin: &str) -> (u16, Value) {
    let mut form = vec![("type", "sms"), ("user", user), ("dynamic_phone", "1")];
    if !serial.is_empty() {
        form.push(("serial", serial));
    }
    if !pin.is_empty() {
        form.push(("pin", pin));
    }
    let answer = s.apost("/token/init", &form).await;
    assert_eq!(answer.0, 200, "{user}: {}", answer.1);
    answer
}

/// The first token of a user as listed by `/token/`.
async fn token_of(s: &Server, user: &str) -> Value {
    let (_, b) = s.aget("/token/", &[("user", user)]).await;
    b["result"]["value"]["tokens"][0].clone()
}

/// The two-step login; returns the second answer.
async fn two_step(s: &Server, gw: &Gateway, user: &str, pin: &str, phone: &str) -> Value {
    let (st, b) = s.check(&[("user", user), ("pass", pin)]).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let last = gw.last();
    assert_eq!(last.field("phone").as_deref(), Some(phone));
    let otp = otp_in(&last.field("text").unwrap());
    let (st, b) = s
        .check(&[("user", user), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(st, 200, "{b}");
    b
}

#[tokio::test]
async fn two_step_sms_login_for_a_user_that_exists_only_in_the_directory() {
    let ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    directory_realm(&s, &gw, &ldap.uri(), &[]).await;

    // The admin sees the directory's users, with mobile as a list (MULTIVALUEATTRIBUTES).
    let (_, users) = s.aget("/user/", &[("username", "al*")]).await;
    let list = value(&users).as_array().unwrap();
    assert_eq!(list.len(), 1, "{users}");
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(list[0]["givenname"], "Alice");
    assert_eq!(list[0]["email"], "alice@example.org");
    assert_eq!(list[0]["phone"], "+49301234");
    assert_eq!(list[0]["mobile"], serde_json::json!(["+4915100000001"]));
    assert_eq!(list[0]["editable"], false);
    let (_, all) = s.aget("/user/", &[]).await;
    assert_eq!(
        value(&all).as_array().unwrap().len(),
        7,
        "the printer is no user: {all}"
    );

    // SIZELIMIT bounds a list; SCOPE=LEVEL under the suffix sees no one (people are deeper).
    s.ok(
        "/resolver/dir",
        &[("type", "ldapresolver"), ("SIZELIMIT", "2")],
    )
    .await;
    let (_, two) = s.aget("/user/", &[]).await;
    assert_eq!(value(&two).as_array().unwrap().len(), 2, "{two}");
    s.ok(
        "/resolver/dir",
        &[
            ("type", "ldapresolver"),
            ("SCOPE", "LEVEL"),
            ("SIZELIMIT", ""),
        ],
    )
    .await;
    let (_, none) = s.aget("/user/", &[]).await;
    assert_eq!(value(&none), &serde_json::json!([]), "{none}");
    s.ok(
        "/resolver/dir",
        &[("type", "ldapresolver"), ("SCOPE", "SUBTREE")],
    )
    .await;
    let (_, again) = s.aget("/user/", &[]).await;
    assert_eq!(value(&again).as_array().unwrap().len(), 7, "{again}");

    // The token takes the number from the directory at each login (dynamic_phone).
    let (st, b) = enroll_dynamic(&s, "alice", "", "1234").await;
    assert_eq!(st, 200, "{b}");
    let b = two_step(&s, &gw, "alice", "1234", "+4915100000001").await;
    assert_eq!(b["result"]["value"], true, "{b}");

    // A multi-valued mobile: the SMS goes to the first number, as in privacyIDEA.
    enroll_dynamic(&s, "bob", "", "b0b").await;
    let b = two_step(&s, &gw, "bob", "b0b", "+4915100000002").await;
    assert_eq!(b["result"]["value"], true, "{b}");

    // The token is owned by the directory's stable id (entryUUID), shown in the token list.
    let t = token_of(&s, "alice").await;
    assert_eq!(t["username"], "alice");
    assert_eq!(t["resolver"], "dir");
    assert_eq!(t["user_id"].as_str().unwrap().len(), 36, "{t}");

    // Unknown users are unknown, as with any resolver.
    let (st, b) = s.check(&[("user", "mallory"), ("pass", "1234")]).await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(code(&b), 904, "{b}");
}

#[tokio::test]
async fn login_names_with_filter_metacharacters_cannot_change_the_search() {
    let ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    // privacyIDEA's default id: the entry's DN (looked up again with a base search).
    directory_realm(&s, &gw, &ldap.uri(), &[("UIDTYPE", "DN")]).await;
    // Each name finds exactly its own entry, never another one.
    for (login, phone) in [
        ("jo*e", "+4915100000004"),
        ("joe", "+4915100000005"),
        ("o'neil (ops), x", "+4915100000006"),
        ("jürgen", "+4915100000007"),
        ("ALICE", "+4915100000001"),
    ] {
        let serial = format!("LDAP{}", phone.get(phone.len() - 2..).unwrap());
        let (st, b) = enroll_dynamic(&s, login, &serial, "pin").await;
        assert_eq!(st, 200, "{login}: {b}");
        let b = two_step(&s, &gw, login, "pin", phone).await;
        assert_eq!(b["result"]["value"], true, "{login}: {b}");
    }
    // Owners are found again by their DN (with escaped characters) after the cache expired.
    s.advance(121);
    let t = s.token_info("LDAP06").await;
    assert_eq!(t["username"], "o'neil (ops), x", "{t}");
    assert!(
        t["user_id"]
            .as_str()
            .unwrap()
            .starts_with("uid=o'neil (ops)\\2C x,ou=people"),
        "{t}"
    );
    assert_eq!(s.token_info("LDAP07").await["username"], "jürgen");
    // Injection attempts match nobody (a wildcard or an extra clause would match someone).
    for login in [
        "*",
        "jo*",
        "*)(uid=*",
        "alice)(|(uid=*",
        "al\\2a",
        "alice\0",
        "a)(objectClass=*",
    ] {
        let (st, b) = s.check(&[("user", login), ("pass", "pin")]).await;
        // A NUL never reaches the directory: every parameter with one is refused (905).
        let want = if login.contains('\0') { 905 } else { 904 };
        assert_eq!((st, code(&b)), (400, want), "{login:?}: {b}");
    }
    let (_, b) = s.aget("/user/", &[("username", "jo*")]).await;
    let names: Vec<&str> = value(&b)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "jo* lists jo*e and joe: {b}");
    let (_, b) = s.aget("/user/", &[("username", "(uid=*)")]).await;
    assert_eq!(value(&b), &serde_json::json!([]), "{b}");
}

#[tokio::test]
async fn userstore_pin_is_checked_with_a_bind_as_the_user() {
    let ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    directory_realm(&s, &gw, &ldap.uri(), &[]).await;
    s.ok(
        "/policy/userstore",
        &[
            ("scope", "authentication"),
            ("action", "otppin=userstore"),
            ("realm", "corp"),
        ],
    )
    .await;
    enroll_dynamic(&s, "carol", "", "").await;
    let b = two_step(&s, &gw, "carol", "carol-dir-pw", "+4915100000003").await;
    assert_eq!(b["result"]["value"], true, "{b}");
    // A wrong directory password, and an empty one (an anonymous bind would "succeed").
    for pin in ["wrong", ""] {
        let (st, b) = s.check(&[("user", "carol"), ("pass", pin)]).await;
        assert_eq!(st, 200);
        assert_eq!(b["result"]["value"], false, "{pin:?}: {b}");
        assert_ne!(b["result"]["authentication"], "CHALLENGE", "{pin:?}: {b}");
    }
    // The user logs in to the API with the directory password too.
    let (st, b) = s
        .post(
            "/auth",
            &[("username", "carol"), ("password", "carol-dir-pw")],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, _) = s
        .post("/auth", &[("username", "carol"), ("password", "nope")])
        .await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn stable_ids_keep_tokens_when_a_name_changes_and_the_cache_follows_the_clock() {
    let ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    directory_realm(&s, &gw, &ldap.uri(), &[("CACHE_TIMEOUT", "120")]).await;
    enroll_dynamic(&s, "carol", "CAROL", "c").await;
    // Rename carol to caroline and give her a new number.
    ldap.modify(
        "dn: uid=carol,ou=people,dc=example,dc=org\nchangetype: modrdn\nnewrdn: uid=caroline\ndeleteoldrdn: 1\n\n\
         dn: uid=caroline,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: mobile\nmobile: +4915100000033\n",
    );
    // Within CACHE_TIMEOUT the cached entry answers (no directory round trip).
    let b = two_step(&s, &gw, "carol", "c", "+4915100000003").await;
    assert_eq!(b["result"]["value"], true, "{b}");
    // After it, the directory answers: the old name is gone, the token follows the new one.
    s.advance(121);
    let (st, b) = s.check(&[("user", "carol"), ("pass", "c")]).await;
    assert_eq!((st, code(&b)), (400, 904), "{b}");
    assert_eq!(s.token_info("CAROL").await["username"], "caroline");
    let b = two_step(&s, &gw, "caroline", "c", "+4915100000033").await;
    assert_eq!(b["result"]["value"], true, "{b}");
}

#[tokio::test]
async fn directory_down_is_a_clear_error_and_logins_recover_when_it_is_back() {
    let mut ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    directory_realm(
        &s,
        &gw,
        &ldap.uri(),
        &[("CACHE_TIMEOUT", "0"), ("TIMEOUT", "1")],
    )
    .await;
    enroll_dynamic(&s, "alice", "", "1234").await;
    let b = two_step(&s, &gw, "alice", "1234", "+4915100000001").await;
    assert_eq!(b["result"]["value"], true, "{b}");

    ldap.stop();
    let (st, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(code(&b), 907, "{b}");
    assert!(
        error(&b).starts_with("ERR907: Error performing bind operation"),
        "{b}"
    );
    assert!(!error(&b).contains(ROOT_PW));
    // The server itself stays healthy, and nothing counted against the user.
    let health = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let (_, users) = s.aget("/user/", &[]).await;
    assert_eq!(
        value(&users),
        &serde_json::json!([]),
        "a dead resolver is left out: {users}"
    );

    // Every server is skipped now (SERVERPOOL_SKIP, 30 s), but one request at a time still
    // tries the one that failed longest ago: still down, it fails as before; back after the
    // blip, logins work at once, not 30 s later.
    let (st, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!((st, code(&b)), (400, 907), "{b}");
    assert!(
        error(&b).contains(&ldap.uri()),
        "the skipped server was tried: {b}"
    );
    ldap.run().await;
    let b = two_step(&s, &gw, "alice", "1234", "+4915100000001").await;
    assert_eq!(b["result"]["value"], true, "{b}");
    let t = token_of(&s, "alice").await;
    assert_eq!(t["failcount"], 0, "{t}");
}

#[tokio::test]
async fn a_second_server_takes_over_when_the_first_is_down() {
    let ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let uris = format!("{dead}, {}", ldap.uri());
    directory_realm(&s, &gw, &uris, &[("TIMEOUT", "1")]).await;
    enroll_dynamic(&s, "alice", "", "1234").await;
    let b = two_step(&s, &gw, "alice", "1234", "+4915100000001").await;
    assert_eq!(b["result"]["value"], true, "{b}");
}

#[tokio::test]
async fn the_bind_password_is_sealed_censored_and_kept_and_test_resolver_reports() {
    let ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    directory_realm(&s, &gw, &ldap.uri(), &[]).await;
    let (_, b) = s.aget("/resolver/dir", &[]).await;
    let r = &value(&b)["dir"];
    assert_eq!(r["type"], "ldapresolver");
    assert_eq!(r["data"]["BINDPW"], "__CENSORED__");
    assert_eq!(r["censor_keys"], serde_json::json!(["BINDPW"]));
    assert_eq!(r["data"]["LDAPBASE"], SUFFIX);
    // The password is not in the database in the clear.
    let raw = s
        .app
        .services
        .store()
        .resolver_get("dir")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !raw.config.contains(ROOT_PW) && !raw.secret.contains(ROOT_PW) && !raw.secret.is_empty()
    );

    // Saving again with the censored value keeps the password; the directory still answers.
    let mut form: Vec<(String, String)> = r["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    form.push(("type".into(), "ldapresolver".into()));
    form.push(("TIMEOUT".into(), "3".into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    s.ok("/resolver/dir", &pairs).await;
    let (_, users) = s.aget("/user/", &[("username", "alice")]).await;
    assert_eq!(value(&users).as_array().unwrap().len(), 1, "{users}");

    // privacyIDEA's "test resolver": with the censored password of the saved resolver...
    let mut test = pairs.clone();
    test.push(("resolver", "dir"));
    let (st, b) = s.apost("/resolver/test", &test).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(value(&b), true, "{b}");
    let d = b["detail"]["description"].as_str().unwrap();
    assert!(
        d.starts_with("Your LDAP config seems to be OK, 7 user objects found in "),
        "{d}"
    );
    // ... with a wrong password, and with no server: 200, value false and the reason.
    let wrong: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| {
            if *k == "BINDPW" {
                (*k, "wrong")
            } else {
                (*k, *v)
            }
        })
        .collect();
    let (st, b) = s.apost("/resolver/test", &wrong).await;
    assert_eq!((st, value(&b)), (200, &Value::Bool(false)), "{b}");
    assert_eq!(
        b["detail"]["description"],
        "ERR907: Unable to perform bind operation: invalidCredentials (49)!"
    );
    let dead_uri = format!("ldap://127.0.0.1:{}", free_port());
    let dead: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| {
            if *k == "LDAPURI" {
                (*k, dead_uri.as_str())
            } else {
                (*k, *v)
            }
        })
        .collect();
    let (_, b) = s.apost("/resolver/test", &dead).await;
    assert_eq!(value(&b), false, "{b}");
    assert!(
        b["detail"]["description"]
            .as_str()
            .unwrap()
            .contains("Error performing bind operation"),
        "{b}"
    );

    // The kept password never goes to another server or over weaker TLS than it was saved for.
    let elsewhere = format!("ldap://127.0.0.1:{}", free_port());
    for (k, v) in [
        ("LDAPURI", elsewhere.as_str()),
        ("TLS_VERIFY", "0"),
        ("START_TLS", "1"),
    ] {
        let (st, b) = s
            .apost("/resolver/dir", &[("type", "ldapresolver"), (k, v)])
            .await;
        assert_eq!((st, code(&b)), (400, 905), "{k}: {b}");
        assert!(error(&b).contains("BINDPW must be given again"), "{b}");
        let moved: Vec<(&str, &str)> = test
            .iter()
            .map(|(key, val)| if *key == k { (*key, v) } else { (*key, *val) })
            .chain(std::iter::once((k, v)))
            .collect();
        let (st, b) = s.apost("/resolver/test", &moved).await;
        assert_eq!((st, code(&b)), (400, 905), "test {k}: {b}");
    }

    // A wrong saved password: the login says so instead of "unknown user".
    s.ok(
        "/resolver/dir",
        &[("type", "ldapresolver"), ("BINDPW", "wrong")],
    )
    .await;
    let (st, b) = s.check(&[("user", "alice"), ("pass", "x")]).await;
    assert_eq!((st, code(&b)), (400, 907), "{b}");
    assert!(msg(&b).is_empty() || !msg(&b).contains("wrong"));

    // Clear mistakes are refused when saving.
    for (k, v) in [
        ("LDAPURI", "http://127.0.0.1"),
        ("LDAPSEARCHFILTER", "uid=*"),
        ("USERINFO", "not json"),
        ("SCOPE", "ONE"),
        ("AUTHTYPE", "NTLM"),
        ("TLS_CA_FILE", "/nonexistent/ca.pem"),
    ] {
        let (st, b) = s
            .apost("/resolver/dir", &[("type", "ldapresolver"), (k, v)])
            .await;
        assert_eq!((st, code(&b)), (400, 905), "{k}={v}: {b}");
    }
}

#[tokio::test]
async fn ldaps_and_starttls_with_a_test_ca() {
    let ldap = Slapd::start(true).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    let ca = ldap.ca.display().to_string();
    // ldaps with the test CA.
    directory_realm(&s, &gw, &ldap.ldaps_uri(), &[("TLS_CA_FILE", &ca)]).await;
    enroll_dynamic(&s, "alice", "", "1234").await;
    let b = two_step(&s, &gw, "alice", "1234", "+4915100000001").await;
    assert_eq!(b["result"]["value"], true, "{b}");

    let base = [
        ("type", "ldapresolver"),
        ("LDAPBASE", SUFFIX),
        ("BINDDN", ROOT_DN),
        ("BINDPW", ROOT_PW),
        ("LOGINNAMEATTRIBUTE", "uid"),
        ("TIMEOUT", "2"),
    ];
    let s = &s;
    let test = |extra: Vec<(&'static str, String)>| {
        let mut form: Vec<(String, String)> = base
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        form.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        async move {
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (st, b) = s.apost("/resolver/test", &pairs).await;
            assert_eq!(st, 200, "{b}");
            (
                value(&b) == true,
                b["detail"]["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    // StartTLS on ldap:// with the CA works; without StartTLS the server refuses plain text.
    let (ok, d) = test(vec![
        ("LDAPURI", ldap.uri()),
        ("START_TLS", "1".into()),
        ("TLS_CA_FILE", ca.clone()),
    ])
    .await;
    assert!(ok, "{d}");
    let (ok, d) = test(vec![("LDAPURI", ldap.uri())]).await;
    assert!(!ok && d.contains("13"), "plain text must be refused: {d}");
    // A server certificate from an unknown CA is refused unless TLS_VERIFY is off.
    let (ok, d) = test(vec![("LDAPURI", ldap.ldaps_uri())]).await;
    assert!(!ok, "{d}");
    let (ok, d) = test(vec![
        ("LDAPURI", ldap.ldaps_uri()),
        ("TLS_VERIFY", "0".into()),
    ])
    .await;
    assert!(ok, "{d}");
}

#[tokio::test]
async fn active_directory_style_logins_by_account_or_principal_name_with_object_guid_ids() {
    let ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    directory_realm(
        &s,
        &gw,
        &ldap.uri(),
        &[
            ("LOGINNAMEATTRIBUTE", "sAMAccountName, userPrincipalName"),
            (
                "LDAPSEARCHFILTER",
                "(sAMAccountName=*)(objectClass=inetOrgPerson)",
            ),
            ("UIDTYPE", "objectGUID"),
            ("NOREFERRALS", "True"),
        ],
    )
    .await;
    let (_, all) = s.aget("/user/", &[]).await;
    let all = value(&all).as_array().unwrap();
    assert_eq!(
        all.len(),
        1,
        "only the AD-like entry has a sAMAccountName: {all:?}"
    );
    // The id is privacyIDEA's GUID string (first three fields little-endian).
    let guid = otpgate_ldap::guid_to_string(&DAVE_GUID).unwrap();
    assert_eq!(guid, "ffa51e9f-2800-5c2a-fe01-29807f1020c3");
    assert_eq!(all[0]["userid"], guid.as_str());
    assert_eq!(all[0]["username"], "dbrown");

    enroll_dynamic(&s, "dbrown", "DAVE", "d").await;
    // Either login name works, and both are the same user with the same token.
    for login in ["dbrown", "DBROWN", "dave.brown@example.org"] {
        let b = two_step(&s, &gw, login, "d", "+4915100000008").await;
        assert_eq!(b["result"]["value"], true, "{login}: {b}");
    }
    // The owner is found again by objectGUID (a binary search value) once the cache expired.
    s.advance(121);
    let t = s.token_info("DAVE").await;
    assert_eq!(
        (t["user_id"].as_str(), t["username"].as_str()),
        (Some(guid.as_str()), Some("dbrown")),
        "{t}"
    );
}

#[tokio::test]
async fn hostile_ldap_parameters_get_4xx_or_a_failed_test_never_a_5xx() {
    let ldap = Slapd::start(false).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    directory_realm(&s, &gw, &ldap.uri(), &[]).await;
    let hostile = [
        "",
        "\u{0}",
        "*)(uid=*",
        "ldap://127.0.0.1:1/??sub?(uid=*)",
        "ldap://[::1",
        "ldaps://",
        "{\"username\": {\"nested\": 1}}",
        "[\"mobile\"",
        "-1",
        "99999999999999999999",
        "NaN",
        "/etc/shadow",
        "(&(|(!(uid=*)))",
    ];
    let long = "A".repeat(10_000);
    let keys = [
        "LDAPURI",
        "LDAPBASE",
        "BINDDN",
        "LOGINNAMEATTRIBUTE",
        "LDAPSEARCHFILTER",
        "USERINFO",
        "UIDTYPE",
        "TIMEOUT",
        "SIZELIMIT",
        "CACHE_TIMEOUT",
        "SCOPE",
        "TLS_CA_FILE",
        "MULTIVALUEATTRIBUTES",
    ];
    let mut tried = 0;
    for k in keys {
        for v in hostile.iter().copied().chain([long.as_str()]) {
            for path in ["/resolver/dir2", "/resolver/test"] {
                let (st, b) = s
                    .apost(
                        path,
                        &[
                            ("type", "ldapresolver"),
                            ("LDAPURI", &ldap.uri()),
                            ("LDAPBASE", SUFFIX),
                            ("LOGINNAMEATTRIBUTE", "uid"),
                            ("TIMEOUT", "1"),
                            (k, v),
                        ],
                    )
                    .await;
                tried += 1;
                assert!(st < 500, "{path} {k}={v:.40}: {st} {b}");
                assert!(
                    b["result"]["status"].is_boolean(),
                    "{path} {k}={v:.40}: {b}"
                );
            }
        }
    }
    assert!(tried > 300, "{tried}");
    // The saved resolver still answers.
    let (_, users) = s.aget("/user/", &[("username", "alice")]).await;
    assert_eq!(value(&users).as_array().unwrap().len(), 1, "{users}");
}

#[tokio::test]
async fn an_ldap_directory_from_the_console_is_tested_saved_and_keeps_its_password() {
    let ldap = Slapd::start(false).await;
    let s = Server::start().await;
    let mut b = crate::web::Browser::new(&s);
    let csrf = b.admin_login().await;
    let uri = ldap.uri();
    // The form as the browser sends it (`name` only when the store is new).
    let form = |pw: &str, what: &str, new: bool| -> Vec<(String, String)> {
        let mut f = vec![
            ("csrf", csrf.as_str()),
            ("type", "ldapresolver"),
            ("LDAPURI", uri.as_str()),
            ("LDAPBASE", SUFFIX),
            ("BINDDN", ROOT_DN),
            ("BINDPW", pw),
            ("LOGINNAMEATTRIBUTE", "uid"),
            ("LDAPSEARCHFILTER", "(uid=*)(objectClass=inetOrgPerson)"),
            (
                "USERINFO",
                r#"{"mobile": "mobile", "email": "mail", "surname": "sn", "givenname": "givenName"}"#,
            ),
            ("UIDTYPE", "entryUUID"),
            ("TIMEOUT", "2"),
            ("do", what),
        ];
        if new {
            f.push(("name", "dir"));
        }
        f.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    async fn send(
        b: &mut crate::web::Browser<'_>,
        path: &str,
        f: &[(String, String)],
    ) -> crate::web::Page {
        let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        b.post(path, &refs).await
    }
    // "Test connection" with a wrong password: refused; with the right one: works; neither saves.
    let p = send(
        &mut b,
        "/ui/admin/resolvers/new",
        &form("not-it", "test", true),
    )
    .await;
    assert_eq!(p.status, 422, "{}", p.body);
    let p = send(
        &mut b,
        "/ui/admin/resolvers/new",
        &form(ROOT_PW, "test", true),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("The connection works"), "{}", p.body);
    let (_, r) = s.aget("/resolver/", &[]).await;
    assert!(
        r["result"]["value"].get("dir").is_none(),
        "a test saves nothing"
    );
    let p = send(
        &mut b,
        "/ui/admin/resolvers/new",
        &form(ROOT_PW, "save", true),
    )
    .await;
    assert_eq!(p.location, "/ui/admin/resolvers/dir?ok=saved", "{}", p.body);
    // The edit page never shows the password; left empty, the stored one is used.
    let page = b.get("/ui/admin/resolvers/dir").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"BINDPW\"") && page.body.contains("Stored encrypted"));
    assert!(!page.body.contains(ROOT_PW));
    let p = send(&mut b, "/ui/admin/resolvers/dir", &form("", "test", false)).await;
    assert!(p.body.contains("The connection works"), "{}", p.body);
    let p = send(&mut b, "/ui/admin/resolvers/dir", &form("", "save", false)).await;
    assert_eq!(p.status, 303, "{}", p.body);
    // A field emptied on the edit page is cleared, not kept.
    let mut cleared = form("", "save", false);
    for (k, v) in &mut cleared {
        if k == "TIMEOUT" {
            v.clear();
        }
    }
    let p = send(&mut b, "/ui/admin/resolvers/dir", &cleared).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, r) = s.aget("/resolver/dir", &[]).await;
    let timeout = &r["result"]["value"]["dir"]["data"]["TIMEOUT"];
    assert!(timeout.is_null() || timeout == "", "{r}");
    s.ok("/realm/corp", &[("resolvers", "dir")]).await;
    let users = b.get("/ui/admin/users?realm=corp").await;
    assert!(
        users.body.contains(">alice<") && users.body.contains(">bob<"),
        "{}",
        users.body
    );
}
