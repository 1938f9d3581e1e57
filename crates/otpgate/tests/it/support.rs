//! Test support: a server on port 0 with a manual clock, a real local HTTP SMS gateway that
//! records what it receives, a raw HTTP/HTTPS responder (for TLS and proxy tests), and a
//! small JSON client.

#![allow(dead_code)]

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Duration;
use otpgate::bootstrap;
use otpgate::config::Config;
use otpgate::serve;
use otpgate::state::App;
use otpgate_core::pin::PinParams;
use otpgate_core::{Clock, ManualClock};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const ADMIN_PW: &str = "admin-test-password";

/// A running otpgate on port 0.
pub struct Server {
    pub base: String,
    /// The RADIUS address when the config has RADIUS clients.
    pub radius: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub app: App,
    pub dir: tempfile::TempDir,
    token: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.server.data_dir = dir.join("data");
    c.security.pin_hash = PinParams::minimal();
    // Most web tests enroll a first phone with the user store password (off by default; the
    // tests of the default turn it off again).
    c.web.password_enrollment = true;
    // The tests send many requests from one address on a clock that does not move; the
    // per-address limit has its own tests.
    c.server.rate_limit_per_sec = 0.0;
    c
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Server {
        otpgate_gateways::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tweak(&mut config);
        // The manual clock starts at the real time so local-time answers look sensible.
        let clock = ManualClock::new(otpgate_core::SystemClock.now());
        let loaded = bootstrap::load_with_clock(config, Arc::new(clock.clone()))
            .await
            .unwrap();
        // A second node on a shared database finds the admin there: adding it again would set
        // its password anew and end the first node's token.
        if !loaded.services.admin_exists("admin").await.unwrap() {
            loaded.services.add_admin("admin", ADMIN_PW).await.unwrap();
        }
        let app = App::new(loaded.services, loaded.config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let udp = if app.config.radius.clients.is_empty() {
            None
        } else {
            Some(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap())
        };
        let radius = udp.as_ref().map(|u| u.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve::serve_all(listener, udp, app.clone(), async move {
            let _ = rx.await;
        }));
        // Over HTTPS (server.tls_cert) the helpers trust the test's certificate blindly; tests
        // of the TLS itself use a client of their own.
        let https = app.config.server.tls_cert.is_some();
        let client = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(https)
            .build()
            .unwrap();
        let base = if https {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        };
        let mut s = Server {
            base,
            radius,
            client,
            clock,
            app,
            dir,
            token: String::new(),
            stop: Some(tx),
            task: Some(task),
        };
        let (st, body) = s
            .post("/auth", &[("username", "admin"), ("password", ADMIN_PW)])
            .await;
        assert_eq!(st, 200, "{body}");
        s.token = body["result"]["value"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        s
    }

    /// Stops the server and waits for it to drain.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Stops the server (its database closed) but keeps its data directory.
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, Value) {
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// Anonymous form POST.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).form(form)).await
    }

    /// Anonymous form POST with extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut rb = self.client.post(self.url(path)).form(form);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.send(rb).await
    }

    /// Anonymous JSON POST.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// Anonymous GET with a query.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        self.send(self.client.get(self.url(path)).query(query))
            .await
    }

    /// Admin form POST.
    pub async fn apost(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.send(
            self.client
                .post(self.url(path))
                .header("Authorization", &self.token)
                .form(form),
        )
        .await
    }

    /// Admin GET.
    pub async fn aget(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        self.send(
            self.client
                .get(self.url(path))
                .header("Authorization", &self.token)
                .query(query),
        )
        .await
    }

    /// Admin DELETE.
    pub async fn adelete(&self, path: &str) -> (u16, Value) {
        self.send(
            self.client
                .delete(self.url(path))
                .header("Authorization", &self.token),
        )
        .await
    }

    /// Admin JSON POST.
    pub async fn apost_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(
            self.client
                .post(self.url(path))
                .header("Authorization", &self.token)
                .json(body),
        )
        .await
    }

    /// An admin call that must succeed; returns `result.value`.
    pub async fn ok(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let (st, body) = self.apost(path, form).await;
        assert_eq!(st, 200, "POST {path} {form:?} -> {body}");
        assert_eq!(body["result"]["status"], true, "{body}");
        body["result"]["value"].clone()
    }

    /// `/validate/check` with form fields.
    pub async fn check(&self, form: &[(&str, &str)]) -> (u16, Value) {
        self.post("/validate/check", form).await
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(Duration::seconds(secs));
    }

    /// Moves the clock to the first second of a fixed window of `secs` (send limits count in
    /// windows aligned to the epoch), so a test's steps do not straddle a window boundary.
    pub fn start_of_window(&self, secs: i64) {
        use otpgate_core::Clock;
        let into = self.clock.now_ms().rem_euclid(secs * 1000);
        self.clock
            .advance(Duration::milliseconds(secs * 1000 - into + 1000));
    }

    /// A passwd file in the data dir with the given lines; returns its path.
    pub fn passwd_file(&self, lines: &[&str]) -> String {
        let p = self
            .dir
            .path()
            .join(format!("users-{}.passwd", lines.len()));
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p.display().to_string()
    }

    /// Standard set-up: internal resolver `local` with alice, bob (same realm `realm1`,
    /// default), an HTTP gateway `gw` pointing at `gw_url` as the system default.
    pub async fn setup(&self, gw_url: &str) {
        self.ok("/resolver/local", &[("type", "internalresolver")])
            .await;
        self.ok("/realm/realm1", &[("resolvers", "local")]).await;
        for (u, m) in [
            ("alice", "+4915100000001"),
            ("bob", "+4915100000002"),
            ("carol", "+4915100000003"),
        ] {
            self.ok(
                "/user/",
                &[
                    ("user", u),
                    ("resolver", "local"),
                    ("mobile", m),
                    ("givenname", &capitalize(u)),
                    ("surname", "Test"),
                    ("password", &format!("{u}-pw")),
                ],
            )
            .await;
        }
        self.ok(
            "/smsgateway",
            &[
                ("name", "gw"),
                (
                    "module",
                    "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider",
                ),
                ("option.URL", gw_url),
                ("option.HTTP_METHOD", "POST"),
                ("option.RETURN_SUCCESS", "ID"),
                ("option.text", "{otp}"),
                ("option.phone", "{phone}"),
            ],
        )
        .await;
        self.default_gateway_sending_every_time("gw").await;
    }

    /// Makes `gateway` the default and, as privacyIDEA behaves and the tests of other features
    /// expect, lets every PIN request send, without per-user or per-number limits (the limits
    /// have their own tests).
    pub async fn default_gateway_sending_every_time(&self, gateway: &str) {
        self.ok(
            "/system/setConfig",
            &[
                ("sms.identifier", gateway),
                ("sms.resend_cooldown_secs", "0"),
                ("sms.limit.user", "0"),
                ("sms.limit.phone", "0"),
            ],
        )
        .await;
    }

    /// Saves an HTTP gateway `name` that posts `{otp}` as `text` and `{phone}` as `phone` to
    /// `url` and wants `ID` in the answer, with `extra` options.
    pub async fn http_gateway(&self, name: &str, url: &str, extra: &[(&str, &str)]) {
        let mut form = vec![
            ("name", name),
            ("module", "http"),
            ("option.URL", url),
            ("option.HTTP_METHOD", "POST"),
            ("option.RETURN_SUCCESS", "ID"),
            ("option.text", "{otp}"),
            ("option.phone", "{phone}"),
        ];
        form.extend_from_slice(extra);
        self.ok("/smsgateway", &form).await;
    }

    /// Enrols an SMS token; returns its serial.
    pub async fn enroll(&self, user: &str, serial: &str, pin: &str, phone: &str) -> String {
        let v = self
            .apost(
                "/token/init",
                &[
                    ("type", "sms"),
                    ("user", user),
                    ("serial", serial),
                    ("pin", pin),
                    ("phone", phone),
                ],
            )
            .await;
        assert_eq!(v.0, 200, "{}", v.1);
        v.1["detail"]["serial"].as_str().unwrap().to_owned()
    }

    /// A token as listed by `/token/`.
    pub async fn token_info(&self, serial: &str) -> Value {
        let (_, b) = self.aget("/token/", &[("serial", serial)]).await;
        b["result"]["value"]["tokens"][0].clone()
    }
}

pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// What the gateway answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 with this body.
    Ok(&'static str),
    /// This status with body "error".
    Status(u16),
    /// Never answers (until the test ends).
    Hang,
}

/// One request as the gateway saw it.
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, Vec<String>>,
    pub form: BTreeMap<String, Vec<String>>,
    pub json: Option<Value>,
    pub headers: BTreeMap<String, String>,
}

impl Received {
    /// The first value of a field from query, form or JSON body.
    pub fn field(&self, k: &str) -> Option<String> {
        if let Some(j) = &self.json {
            return j.get(k).map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            });
        }
        self.form
            .get(k)
            .or(self.query.get(k))
            .and_then(|v| v.first().cloned())
    }
}

#[derive(Clone)]
struct GwState {
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
    basic: Option<String>,
}

/// A real HTTP SMS gateway on port 0.
#[derive(Clone)]
pub struct Gateway {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
}

fn parse_pairs(s: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(s.as_bytes()) {
        m.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    m
}

async fn gw_handler(State(st): State<GwState>, req: Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let ctype = headers.get("content-type").cloned().unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let rec = Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parse_pairs(parts.uri.query().unwrap_or_default()),
        form: if ctype.starts_with("application/x-www-form-urlencoded") {
            parse_pairs(&text)
        } else {
            BTreeMap::new()
        },
        json: if ctype.starts_with("application/json") {
            serde_json::from_str(&text).ok()
        } else {
            None
        },
        headers: headers.clone(),
    };
    if let Some(expected) = &st.basic
        && headers.get("authorization") != Some(expected)
    {
        return (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    }
    let mode = st.mode.lock().unwrap().clone();
    st.received.lock().unwrap().push(rec);
    match mode {
        Mode::Ok(body) => (StatusCode::OK, body).into_response(),
        Mode::Status(s) => (StatusCode::from_u16(s).unwrap(), "error").into_response(),
        Mode::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

impl Gateway {
    pub async fn start() -> Gateway {
        Self::start_with_basic(None).await
    }

    /// A gateway that requires `Authorization: Basic base64(user:pass)`.
    pub async fn start_with_basic(basic: Option<(&str, &str)>) -> Gateway {
        use base64::Engine;
        let basic = basic.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let mode = Arc::new(Mutex::new(Mode::Ok("ID 12345")));
        let received = Arc::new(Mutex::new(Vec::new()));
        let st = GwState {
            mode: mode.clone(),
            received: received.clone(),
            basic,
        };
        let router = axum::Router::new().fallback(gw_handler).with_state(st);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Gateway {
            addr,
            mode,
            received,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn last(&self) -> Received {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the gateway received nothing")
    }

    /// The OTP (first run of 6 or 8 digits) of the newest message to `phone`.
    pub fn last_otp(&self, phone: &str) -> String {
        let msgs = self.received();
        let m = msgs
            .iter()
            .rev()
            .find(|r| r.field("phone").as_deref() == Some(phone))
            .expect("no SMS to this phone");
        otp_in(&m.field("text").unwrap())
    }
}

/// Sends alice's transaction id and OTP to every URL at once; how many were accepted.
pub async fn accepted_in_race(
    targets: Vec<(reqwest::Client, String)>,
    tid: &str,
    otp: &str,
) -> usize {
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|(client, url)| {
            let form = [
                ("user", "alice".to_owned()),
                ("transaction_id", tid.to_owned()),
                ("pass", otp.to_owned()),
            ];
            tokio::spawn(async move {
                let r = client.post(url).form(&form).send().await.unwrap();
                r.json::<Value>().await.unwrap()["result"]["value"] == true
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    accepted
}

/// The first run of 6 or 8 digits in a text.
pub fn otp_in(text: &str) -> String {
    let re = regex_lite(text);
    re.unwrap_or_else(|| panic!("no OTP in {text:?}"))
}

fn regex_lite(text: &str) -> Option<String> {
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            if run.len() == 6 || run.len() == 8 {
                return Some(run);
            }
            run.clear();
        }
    }
    None
}

/// A raw HTTP/1.1 responder (optionally over TLS with a self-signed certificate): records
/// each request's head and answers `200 ID 42`. Used as an HTTPS gateway and as a proxy.
pub struct RawServer {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RawServer {
    pub async fn start(tls: bool) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let acceptor = if tls {
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
            ])
            .unwrap();
            let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
                ck.signing_key.serialize_der().into(),
            );
            let cfg = tokio_rustls::rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![ck.cert.der().clone()], key)
                .unwrap();
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
        } else {
            None
        };
        let h = heads.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let h = h.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(s) = a.accept(sock).await {
                                answer(s, h).await;
                            }
                        }
                        None => answer(sock, h).await,
                    }
                });
            }
        });
        RawServer { addr, heads }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    heads: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = s.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let Ok(n) = s.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            heads.lock().unwrap().push(head);
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nID 42",
                )
                .await;
            let _ = s.shutdown().await;
            return;
        }
    }
}

/// `detail.message` of a validate answer.
pub fn msg(body: &Value) -> &str {
    body["detail"]["message"].as_str().unwrap_or_default()
}

/// `result.value`.
pub fn value(body: &Value) -> &Value {
    &body["result"]["value"]
}

/// `result.error.code`.
pub fn code(body: &Value) -> i64 {
    body["result"]["error"]["code"].as_i64().unwrap_or_default()
}

/// `result.error.message`.
pub fn error(body: &Value) -> &str {
    body["result"]["error"]["message"]
        .as_str()
        .unwrap_or_default()
}

/// A real XML-RPC server (Python's standard `xmlrpc.server`) standing in for Sipgate: it
/// checks basic auth, records each `samurai.SessionInitiate` call as a JSON line, and answers
/// with an XML-RPC fault when the content contains `FAULT`.
pub struct XmlRpcPeer {
    pub port: u16,
    child: std::process::Child,
    record: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

const XMLRPC_PEER: &str = r#"
import sys, json, base64
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler
user, pw, rec = sys.argv[1], sys.argv[2], sys.argv[3]
expected = 'Basic ' + base64.b64encode(f'{user}:{pw}'.encode()).decode()
class Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ('/RPC2',)
    def do_POST(self):
        if self.headers.get('Authorization') != expected:
            self.send_response(401)
            self.end_headers()
            return
        super().do_POST()
    def log_message(self, *args):
        pass
server = SimpleXMLRPCServer(('127.0.0.1', 0), requestHandler=Handler, logRequests=False, allow_none=True)
def initiate(params):
    with open(rec, 'a') as f:
        f.write(json.dumps(params) + '\n')
    if 'FAULT' in params.get('Content', ''):
        raise Exception('refused')
    return {'StatusCode': 200, 'SessionID': 'abc'}
server.register_function(initiate, 'samurai.SessionInitiate')
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

impl XmlRpcPeer {
    pub fn start(user: &str, password: &str) -> XmlRpcPeer {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("peer.py");
        let record = dir.path().join("calls.jsonl");
        std::fs::write(&script, XMLRPC_PEER).unwrap();
        let mut child = std::process::Command::new("python3")
            .arg(&script)
            .args([user, password, record.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the XML-RPC peer");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        XmlRpcPeer {
            port: line.trim().parse().expect("the peer's port"),
            child,
            record,
            _dir: dir,
        }
    }

    /// The recorded calls' struct parameters.
    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for XmlRpcPeer {
    fn drop(&mut self) {
        // Ended by its PID, never by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mail as the test SMTP server received it.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    pub user: Option<String>,
    pub tls: bool,
}

impl Mail {
    /// A header's value (first occurrence).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// The body (after the blank line).
    pub fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.trim_end().to_owned())
            .unwrap_or_default()
    }
}

/// How the test SMTP server behaves.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Offer STARTTLS (and require it before AUTH).
    pub starttls: bool,
    /// TLS from the first byte (smtps).
    pub implicit_tls: bool,
    /// Require AUTH with these credentials.
    pub auth: Option<(String, String)>,
    /// Answer 550 to every RCPT TO.
    pub reject_recipients: bool,
}

/// A real SMTP server on loopback (EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA).
pub struct SmtpPeer {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

fn self_signed_acceptor() -> tokio_rustls::TlsAcceptor {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
        ck.signing_key.serialize_der().into(),
    );
    let cfg = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

impl SmtpPeer {
    pub async fn start(opts: SmtpOptions) -> SmtpPeer {
        otpgate_gateways::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let acceptor = self_signed_acceptor();
        let m = mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (opts, m, acceptor) = (opts.clone(), m.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let stream: Box<dyn Io> = if opts.implicit_tls {
                        match acceptor.accept(sock).await {
                            Ok(s) => Box::new(s),
                            Err(_) => return,
                        }
                    } else {
                        Box::new(sock)
                    };
                    let _ = smtp_session(stream, opts.implicit_tls, &opts, &acceptor, &m).await;
                });
            }
        });
        SmtpPeer { port, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn smtp_session(
    stream: Box<dyn Io>,
    mut tls: bool,
    opts: &SmtpOptions,
    acceptor: &tokio_rustls::TlsAcceptor,
    mails: &Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    use base64::Engine;
    use tokio::io::AsyncBufReadExt;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut io = tokio::io::BufReader::new(stream);
    io.get_mut()
        .write_all(b"220 localhost test ESMTP\r\n")
        .await?;
    let mut mail = Mail {
        tls,
        ..Default::default()
    };
    let mut authed: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut r = String::from("250-localhost\r\n");
            if opts.starttls && !tls {
                r.push_str("250-STARTTLS\r\n");
            }
            if opts.auth.is_some() && (tls || !opts.starttls) {
                r.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            r.push_str("250 OK\r\n");
            r
        } else if upper == "STARTTLS" && opts.starttls && !tls {
            io.get_mut()
                .write_all(b"220 2.0.0 Ready to start TLS\r\n")
                .await?;
            let plain = io.into_inner();
            let upgraded = acceptor.accept(plain).await?;
            io = tokio::io::BufReader::new(Box::new(upgraded) as Box<dyn Io>);
            tls = true;
            mail.tls = true;
            continue;
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
            let encoded = if rest.trim().is_empty() {
                io.get_mut().write_all(b"334 \r\n").await?;
                line.clear();
                io.read_line(&mut line).await?;
                line.trim().to_owned()
            } else {
                cmd[10..].trim().to_owned()
            };
            let decoded = b64.decode(encoded).unwrap_or_default();
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            let (u, p) = (
                String::from_utf8_lossy(parts.get(1).copied().unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(parts.get(2).copied().unwrap_or_default()).into_owned(),
            );
            if opts.auth.as_ref() == Some(&(u.clone(), p)) {
                authed = Some(u);
                "235 2.7.0 Authentication successful\r\n".into()
            } else {
                "535 5.7.8 Authentication credentials invalid\r\n".into()
            }
        } else if upper.starts_with("AUTH LOGIN") {
            io.get_mut().write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            line.clear();
            io.read_line(&mut line).await?;
            let u =
                String::from_utf8_lossy(&b64.decode(line.trim()).unwrap_or_default()).into_owned();
            io.get_mut().write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            line.clear();
            io.read_line(&mut line).await?;
            let p =
                String::from_utf8_lossy(&b64.decode(line.trim()).unwrap_or_default()).into_owned();
            if opts.auth.as_ref() == Some(&(u.clone(), p)) {
                authed = Some(u);
                "235 2.7.0 Authentication successful\r\n".into()
            } else {
                "535 5.7.8 Authentication credentials invalid\r\n".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            if opts.auth.is_some() && authed.is_none() {
                "530 5.7.0 Authentication required\r\n".into()
            } else {
                mail.from = cmd[10..].trim().trim_matches(['<', '>']).to_owned();
                "250 OK\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            if opts.reject_recipients {
                "550 5.1.1 Recipient rejected\r\n".into()
            } else {
                mail.to
                    .push(cmd[8..].trim().trim_matches(['<', '>']).to_owned());
                "250 OK\r\n".into()
            }
        } else if upper == "DATA" {
            io.get_mut()
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if io.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            mail.data = data;
            mail.user = authed.clone();
            mails.lock().unwrap().push(mail.clone());
            mail = Mail {
                tls,
                ..Default::default()
            };
            "250 OK queued\r\n".into()
        } else if upper == "QUIT" {
            io.get_mut().write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            "250 OK\r\n".into()
        } else {
            "502 Command not implemented\r\n".into()
        };
        io.get_mut().write_all(reply.as_bytes()).await?;
    }
}

/// A test CA and a `localhost` certificate it signed, written to `dir`: the CA's PEM, the
/// certificate's and the key's paths.
pub fn tls_files(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca.pem(), cert_path, key_path)
}

/// How the test SMSC behaves.
#[derive(Clone, Debug, Default)]
pub struct SmscOptions {
    /// Accepted system_id and password.
    pub system_id: String,
    pub password: String,
    /// Answer submit_sm with this error status.
    pub submit_error: Option<u32>,
    /// Never answer anything.
    pub silent: bool,
    /// After each accepted submit_sm that asks for one, send a receipt with this state.
    pub receipt: Option<&'static str>,
    /// Send the receipt's id and state as TLVs (receipted_message_id, message_state) and
    /// leave its text empty.
    pub receipt_tlv: bool,
    /// Give ids in hexadecimal in submit_sm_resp and in decimal in receipts (a common SMSC
    /// quirk).
    pub decimal_receipt_ids: bool,
    /// Close each connection after this many submit_sm.
    pub drop_after: Option<usize>,
    /// Refuse bind_transceiver with this status (ESME_RINVCMDID: a transmitter-only SMSC;
    /// 0x05 ESME_RALYBND: "already bound").
    pub refuse_transceiver: Option<u32>,
    /// Speak TLS with this certificate and key (PEM files).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Answer each submit_sm this late.
    pub answer_after: Option<std::time::Duration>,
}

/// A local SMSC speaking SMPP 3.4, built from otpgate's PDU codec (the independent one is
/// Net::SMPP, in `delivery.rs`): it checks bind credentials, records every bind and submit_sm,
/// answers enquire_link, and sends delivery receipts as deliver_sm when asked to.
pub struct Smsc {
    pub port: u16,
    submits: Arc<Mutex<Vec<otpgate_gateways::smpp::pdu::Submit>>>,
    commands: Arc<Mutex<Vec<u32>>>,
}

trait SmscIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> SmscIo for T {}

/// A deliver_sm body carrying a delivery receipt for message `id` in state `stat`.
fn receipt_body(id: &str, stat: &str, tlv: bool) -> Vec<u8> {
    use otpgate_gateways::smpp::pdu;
    let mut b = Vec::new();
    pdu::cstr(&mut b, ""); // service_type
    b.extend([1, 1]);
    pdu::cstr(&mut b, "4915100000001");
    b.extend([5, 0]);
    pdu::cstr(&mut b, "OTPGATE");
    b.extend([0x04, 0, 0]); // esm_class: SMSC delivery receipt
    pdu::cstr(&mut b, "");
    pdu::cstr(&mut b, "");
    b.extend([0, 0, 0, 0]);
    let text = if tlv {
        String::new()
    } else {
        format!(
            "id:{id} sub:001 dlvrd:001 submit date:2612051200 done date:2612051200 stat:{stat} err:000 Text:Your code"
        )
    };
    b.push(u8::try_from(text.len()).unwrap());
    b.extend(text.as_bytes());
    if tlv {
        b.extend(pdu::TAG_RECEIPTED_MESSAGE_ID.to_be_bytes());
        b.extend(u16::try_from(id.len() + 1).unwrap().to_be_bytes());
        pdu::cstr(&mut b, id);
        let state: u8 = match stat {
            "DELIVRD" => 2,
            "EXPIRED" => 3,
            "UNDELIV" => 5,
            "REJECTD" => 8,
            _ => 1,
        };
        b.extend(pdu::TAG_MESSAGE_STATE.to_be_bytes());
        b.extend(1u16.to_be_bytes());
        b.push(state);
    }
    b
}

impl Smsc {
    pub async fn start(opts: SmscOptions) -> Smsc {
        use otpgate_gateways::smpp::pdu;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let submits = Arc::new(Mutex::new(Vec::new()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let (rec, seen) = (submits.clone(), commands.clone());
        let next_id = Arc::new(std::sync::atomic::AtomicU64::new(500));
        let acceptor = opts.tls.as_ref().map(|(cert, key)| {
            tokio_rustls::TlsAcceptor::from(Arc::new(
                otpgate::tls::server_config(cert, key).unwrap(),
            ))
        });
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (opts, rec, seen, next_id, acceptor) = (
                    opts.clone(),
                    rec.clone(),
                    seen.clone(),
                    next_id.clone(),
                    acceptor.clone(),
                );
                tokio::spawn(async move {
                    let mut sock: Box<dyn SmscIo> = match acceptor {
                        None => Box::new(tcp),
                        Some(a) => match a.accept(tcp).await {
                            Ok(t) => Box::new(t),
                            Err(_) => return,
                        },
                    };
                    let mut taken = 0usize;
                    let mut seq = 0x1000u32;
                    loop {
                        let mut header = [0u8; 16];
                        if sock.read_exact(&mut header).await.is_err() {
                            return;
                        }
                        let len = pdu::announced_len(&header).unwrap();
                        let mut full = header.to_vec();
                        full.resize(len, 0);
                        sock.read_exact(&mut full[16..]).await.unwrap();
                        let p = pdu::decode(&full).unwrap();
                        seen.lock().unwrap().push(p.command);
                        if opts.silent {
                            continue;
                        }
                        let mut after = None;
                        let (command, status, body) = match p.command {
                            pdu::BIND_TRANSMITTER | pdu::BIND_TRANSCEIVER => {
                                let mut pos = 0;
                                let id = pdu::read_cstr(&p.body, &mut pos).unwrap();
                                let pw = pdu::read_cstr(&p.body, &mut pos).unwrap();
                                assert_eq!(
                                    p.body.get(pos + 1),
                                    Some(&0x34),
                                    "interface version 3.4"
                                );
                                let status = if p.command == pdu::BIND_TRANSCEIVER
                                    && let Some(refusal) = opts.refuse_transceiver
                                {
                                    refusal
                                } else if id == opts.system_id && pw == opts.password {
                                    0
                                } else {
                                    0x0E
                                };
                                let mut b = Vec::new();
                                pdu::cstr(&mut b, "testsmsc");
                                (p.command | pdu::RESPONSE_BIT, status, b)
                            }
                            pdu::SUBMIT_SM => {
                                let sub =
                                    pdu::parse_submit_sm(&p.body).expect("a well-formed submit_sm");
                                let wants = sub.registered_delivery & 1 == 1;
                                rec.lock().unwrap().push(sub);
                                taken += 1;
                                let n = next_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                let mut b = Vec::new();
                                pdu::cstr(&mut b, &format!("{n:x}"));
                                if wants
                                    && opts.submit_error.is_none()
                                    && let Some(stat) = opts.receipt
                                {
                                    let id = if opts.decimal_receipt_ids {
                                        n.to_string()
                                    } else {
                                        format!("{n:x}")
                                    };
                                    after = Some(receipt_body(&id, stat, opts.receipt_tlv));
                                }
                                if let Some(d) = opts.answer_after {
                                    tokio::time::sleep(d).await;
                                }
                                (pdu::SUBMIT_SM_RESP, opts.submit_error.unwrap_or(0), b)
                            }
                            pdu::ENQUIRE_LINK => (pdu::ENQUIRE_LINK_RESP, 0, vec![]),
                            pdu::UNBIND => (pdu::UNBIND_RESP, 0, vec![]),
                            pdu::DELIVER_SM_RESP => continue,
                            _ => (pdu::GENERIC_NACK, 3, vec![]),
                        };
                        let reply = pdu::encode(&pdu::Pdu {
                            command,
                            status,
                            sequence: p.sequence,
                            body,
                        });
                        if sock.write_all(&reply).await.is_err() || command == pdu::UNBIND_RESP {
                            return;
                        }
                        if let Some(body) = after {
                            seq += 1;
                            let dlr = pdu::encode(&pdu::Pdu {
                                command: pdu::DELIVER_SM,
                                status: 0,
                                sequence: seq,
                                body,
                            });
                            if sock.write_all(&dlr).await.is_err() {
                                return;
                            }
                        }
                        if opts.drop_after.is_some_and(|n| taken >= n) {
                            return;
                        }
                    }
                });
            }
        });
        Smsc {
            port,
            submits,
            commands,
        }
    }

    pub fn submits(&self) -> Vec<otpgate_gateways::smpp::pdu::Submit> {
        self.submits.lock().unwrap().clone()
    }

    /// The bind commands received, in order (one per connection).
    pub fn binds(&self) -> Vec<u32> {
        use otpgate_gateways::smpp::pdu;
        self.commands()
            .into_iter()
            .filter(|c| [pdu::BIND_TRANSCEIVER, pdu::BIND_TRANSMITTER].contains(c))
            .collect()
    }

    /// Every command received, in order.
    pub fn commands(&self) -> Vec<u32> {
        self.commands.lock().unwrap().clone()
    }
}

/// How the simulated GSM modem behaves.
#[derive(Clone, Debug, Default)]
pub struct ModemOptions {
    /// The SIM asks for this PIN before it is ready.
    pub sim_pin: Option<String>,
    /// Not registered in a network (`+CREG: 0,2`).
    pub unregistered: bool,
    /// Answer every submitted message with `+CMS ERROR: 500`.
    pub refuse: bool,
    /// Record commands but never answer.
    pub silent: bool,
    /// Offer status reports (`AT+CNMI=…,1,…` accepted) and send one with this TP-ST for each
    /// message that asks for it (`+CDS`, as PDU or text as the mode is).
    pub report_status: Option<u8>,
}

/// An SMS-STATUS-REPORT in PDU mode (hex, no SMSC field) for message reference `mr` to
/// `number` (digits) with status `st`.
fn status_report_pdu(mr: u8, number: &str, st: u8) -> String {
    let digits: Vec<u8> = number
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    let mut b = vec![0x00, 0x06, mr, u8::try_from(digits.len()).unwrap(), 0x91];
    for pair in digits.chunks(2) {
        b.push((pair.get(1).copied().unwrap_or(0x0F) << 4) | pair[0]);
    }
    let stamp = [0x62, 0x21, 0x50, 0x21, 0x00, 0x00, 0x40];
    b.extend(stamp);
    b.extend(stamp);
    b.push(st);
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// What the modem saw.
#[derive(Clone, Debug, Default)]
pub struct ModemLog {
    /// Command lines, in order.
    pub commands: Vec<String>,
    /// The bodies after the `> ` prompt (PDU hex or text), without Ctrl-Z.
    pub bodies: Vec<String>,
}

/// A GSM modem simulated on a pseudo-terminal: otpgate opens the slave side by its
/// `/dev/pts/N` path like any serial device; a thread on the master side speaks the AT
/// dialogue of 3GPP TS 27.005 (echo until `ATE0`, `+CPIN`, `+CREG`, `+CMGF`, `+CMGS` with the
/// `> ` prompt and Ctrl-Z).
pub struct FakeModem {
    pub device: String,
    log: Arc<Mutex<ModemLog>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    _slave: serialport::TTYPort,
}

impl FakeModem {
    pub fn start(opts: ModemOptions) -> FakeModem {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let (mut master, slave) = serialport::TTYPort::pair().expect("a pseudo-terminal");
        serialport::SerialPort::set_timeout(&mut master, std::time::Duration::from_millis(20))
            .unwrap();
        let device = serialport::SerialPort::name(&slave).expect("the slave's path");
        let log = Arc::new(Mutex::new(ModemLog::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (rec, halt) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut echo = true;
            let mut pin_ok = opts.sim_pin.is_none();
            let mut in_body = false;
            let mut pending: Vec<u8> = Vec::new();
            let mut chunk = [0u8; 512];
            let mut refs = 0u32;
            let mut text_mode = false;
            let mut text_reports = false;
            let mut reports_on = false;
            let mut last_number = String::new();
            while !halt.load(Ordering::Relaxed) {
                match master.read(&mut chunk) {
                    Ok(n) => pending.extend_from_slice(&chunk[..n]),
                    Err(_) => continue,
                }
                loop {
                    if in_body {
                        // ESC cancels the message.
                        if let Some(esc) = pending.iter().position(|b| *b == 0x1B) {
                            pending.drain(..=esc);
                            in_body = false;
                            continue;
                        }
                        let Some(end) = pending.iter().position(|b| *b == 0x1A) else {
                            break;
                        };
                        let body: Vec<u8> = pending.drain(..=end).collect();
                        rec.lock()
                            .unwrap()
                            .bodies
                            .push(String::from_utf8_lossy(&body[..body.len() - 1]).into_owned());
                        in_body = false;
                        refs += 1;
                        let mr = u8::try_from(refs % 256).unwrap();
                        let answer = if opts.refuse {
                            "\r\n+CMS ERROR: 500\r\n".to_owned()
                        } else {
                            format!("\r\n+CMGS: {mr}\r\n\r\nOK\r\n")
                        };
                        master.write_all(answer.as_bytes()).unwrap();
                        // A status report when one was asked for (TP-SRR in the PDU's first
                        // octet after its SMSC field; CSMP's fo in text mode).
                        let body = String::from_utf8_lossy(&body[..body.len() - 1]).into_owned();
                        let asked = if text_mode {
                            text_reports
                        } else {
                            let smsc = usize::from_str_radix(&body[..2], 16).unwrap();
                            let first =
                                u8::from_str_radix(&body[2 + 2 * smsc..4 + 2 * smsc], 16).unwrap();
                            first & 0x20 != 0
                        };
                        if let (Some(st), true, true, false) =
                            (opts.report_status, reports_on, asked, opts.refuse)
                        {
                            let report = if text_mode {
                                format!(
                                    "\r\n+CDS: 6,{mr},\"{last_number}\",145,\"26/12/05,12:00:00+04\",\"26/12/05,12:00:04+04\",{st}\r\n"
                                )
                            } else {
                                let pdu = status_report_pdu(mr, &last_number, st);
                                format!("\r\n+CDS: {}\r\n{pdu}\r\n", pdu.len() / 2 - 1)
                            };
                            master.write_all(report.as_bytes()).unwrap();
                        }
                        continue;
                    }
                    let Some(end) = pending.iter().position(|b| *b == b'\r') else {
                        break;
                    };
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let cmd = String::from_utf8_lossy(&line)
                        .trim_matches(|c: char| c.is_whitespace() || c == '\u{1b}')
                        .to_owned();
                    if cmd.is_empty() {
                        continue;
                    }
                    rec.lock().unwrap().commands.push(cmd.clone());
                    if opts.silent {
                        continue;
                    }
                    if echo {
                        master.write_all(&line).unwrap();
                    }
                    let ok = |body: &str| format!("\r\n{body}\r\n\r\nOK\r\n");
                    let answer = match cmd.as_str() {
                        "AT" => "\r\nOK\r\n".to_owned(),
                        "ATE0" => {
                            echo = false;
                            "\r\nOK\r\n".to_owned()
                        }
                        "AT+CPIN?" if pin_ok => ok("+CPIN: READY"),
                        "AT+CPIN?" => ok("+CPIN: SIM PIN"),
                        c if c.starts_with("AT+CPIN=") => {
                            let given = c.trim_start_matches("AT+CPIN=").trim_matches('"');
                            if Some(given) == opts.sim_pin.as_deref() {
                                pin_ok = true;
                                "\r\nOK\r\n".to_owned()
                            } else {
                                "\r\n+CME ERROR: 16\r\n".to_owned()
                            }
                        }
                        "AT+CREG?" if opts.unregistered => ok("+CREG: 0,2"),
                        "AT+CREG?" => ok("+CREG: 0,1"),
                        "AT+CMGF=0" | "AT+CMGF=1" => {
                            text_mode = cmd == "AT+CMGF=1";
                            "\r\nOK\r\n".to_owned()
                        }
                        "AT+CNMI=2,1,0,1,0" if opts.report_status.is_some() => {
                            reports_on = true;
                            "\r\nOK\r\n".to_owned()
                        }
                        c if c.starts_with("AT+CSMP=") && opts.report_status.is_some() => {
                            let fo: u8 = c[8..].split(',').next().unwrap().parse().unwrap();
                            text_reports = fo & 0x20 != 0;
                            "\r\nOK\r\n".to_owned()
                        }
                        c if c.starts_with("AT+CSCA=") => "\r\nOK\r\n".to_owned(),
                        c if c.starts_with("AT+CMGS=") && pin_ok => {
                            in_body = true;
                            last_number =
                                c[8..].trim_matches('"').trim_start_matches('+').to_owned();
                            if !text_mode {
                                last_number = "4915100000001".into();
                            }
                            "\r\n> ".to_owned()
                        }
                        _ => "\r\nERROR\r\n".to_owned(),
                    };
                    master.write_all(answer.as_bytes()).unwrap();
                }
            }
        });
        FakeModem {
            device,
            log,
            stop,
            _slave: slave,
        }
    }

    pub fn log(&self) -> ModemLog {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for FakeModem {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A decoded SMS-SUBMIT as a phone network would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedSubmit {
    pub smsc: Vec<u8>,
    pub international: bool,
    pub destination: String,
    pub dcs: u8,
    pub udh: Vec<u8>,
    pub text: String,
}

/// Decodes a PDU-mode body (SMSC field + SMS-SUBMIT, 3GPP TS 23.040) independently of
/// otpgate's encoder: BCD address, GSM-7 unpacking with fill bits, UCS-2.
pub fn decode_submit(hex: &str) -> DecodedSubmit {
    let b: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let smsc_len = usize::from(b[0]);
    let smsc = b[..=smsc_len].to_vec();
    let mut i = smsc_len + 1;
    let first = b[i];
    assert_eq!(first & 0x03, 0x01, "SMS-SUBMIT");
    let has_udh = first & 0x40 != 0;
    i += 2; // first octet, TP-MR
    let digits = usize::from(b[i]);
    let toa = b[i + 1];
    i += 2;
    let mut destination = String::new();
    for octet in &b[i..i + digits.div_ceil(2)] {
        for nibble in [octet & 0x0F, octet >> 4] {
            if nibble < 10 {
                destination.push(char::from(b'0' + nibble));
            }
        }
    }
    i += digits.div_ceil(2);
    i += 1; // TP-PID
    let dcs = b[i];
    let udl = usize::from(b[i + 1]);
    i += 2;
    let ud = &b[i..];
    let udh = if has_udh {
        ud[..=usize::from(ud[0])].to_vec()
    } else {
        vec![]
    };
    let text = if dcs == 0x08 {
        let units: Vec<u16> = ud[udh.len()..]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).unwrap()
    } else {
        // Septets start after the header and its fill bits.
        let skip = (udh.len() * 8).div_ceil(7);
        let basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
        let table: Vec<char> = basic.chars().collect();
        (skip..udl)
            .map(|n| {
                let bit = n * 7;
                let (byte, shift) = (bit / 8, bit % 8);
                let mut v = u16::from(ud[byte]) >> shift;
                if shift > 1 {
                    v |= u16::from(ud[byte + 1]) << (8 - shift);
                }
                table[usize::from(v & 0x7F)]
            })
            .collect()
    };
    DecodedSubmit {
        smsc,
        international: toa == 0x91,
        destination,
        dcs,
        udh,
        text,
    }
}
