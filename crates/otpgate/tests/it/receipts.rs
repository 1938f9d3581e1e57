//! Receipts that come back on a gateway's own connection. SMPP on one persistent session per
//! gateway: binds, `deliver_sm` receipts mapped onto the SMS records, reconnects, the
//! transmitter fallback, TLS, receipt-driven failover — against the project's SMSC (its own
//! codec) and against an SMSC built on Net::SMPP (Debian's libnet-smpp-perl), whose codec
//! shares nothing with otpgate's. GSM modems: `+CDS` status reports, in PDU and text mode, on
//! the simulated modem.

use crate::support::{Gateway, Server, Smsc, SmscOptions};
use otpgate_gateways::smpp::pdu;
use serde_json::Value;
use std::time::Duration;

const ALICE: &str = "+4915100000001";

/// A server whose default gateway `gw` is an SMPP gateway on `port` (with `extra` options),
/// and alice's token.
async fn smpp_server(port: u16, extra: &[(&str, &str)]) -> Server {
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    let mut opts = vec![("option.S_ADDR", "OTPGATE"), ("option.TIMEOUT", "2")];
    opts.extend_from_slice(extra);
    save_smpp(&s, port, &opts).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    s
}

/// Saves the SMPP gateway `gw` for the test SMSC on `port` (account otpgate/smpp-pw), with
/// `extra` options.
async fn save_smpp(s: &Server, port: u16, extra: &[(&str, &str)]) {
    let port = port.to_string();
    let mut form = vec![
        ("name", "gw"),
        ("module", "smpp"),
        ("option.SMSC_HOST", "127.0.0.1"),
        ("option.SMSC_PORT", port.as_str()),
        ("option.SYSTEM_ID", "otpgate"),
        ("option.PASSWORD", "smpp-pw"),
    ];
    form.extend_from_slice(extra);
    s.ok("/smsgateway", &form).await;
}

/// A server whose SMPP gateway `gw` on `port` (with `extra`) fails over to the HTTP gateway
/// `backup`, and alice's token; and that backup.
async fn smpp_with_backup(port: u16, extra: &[(&str, &str)]) -> (Server, Gateway) {
    let backup = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&backup.url("/sms")).await;
    s.http_gateway("backup", &backup.url("/sms"), &[]).await;
    let mut opts = vec![("option.FAILOVER", "backup")];
    opts.extend_from_slice(extra);
    save_smpp(&s, port, &opts).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    (s, backup)
}

fn smsc_options() -> SmscOptions {
    SmscOptions {
        system_id: "otpgate".into(),
        password: "smpp-pw".into(),
        ..Default::default()
    }
}

/// Step 1 for alice; the transaction id.
async fn login(s: &Server) -> String {
    let (st, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(st, 200, "{b}");
    b["detail"]["transaction_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no challenge: {b}"))
        .to_owned()
}

async fn answer(s: &Server, tid: &str, otp: &str) -> bool {
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", tid), ("pass", otp)])
        .await;
    b["result"]["value"] == true
}

/// The records of transaction `tid`, once `done` holds for them (up to 5 s).
async fn records_when(s: &Server, tid: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut list = Vec::new();
    for _ in 0..100 {
        let (st, b) = s
            .aget("/smsgateway/messages", &[("transaction_id", tid)])
            .await;
        assert_eq!(st, 200, "{b}");
        list = b["result"]["value"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&list) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the records of {tid} did not get there: {list:?}");
}

fn states(list: &[Value]) -> Vec<(&str, &str)> {
    list.iter()
        .map(|m| (m["gateway"].as_str().unwrap(), m["state"].as_str().unwrap()))
        .collect()
}

async fn delivered(s: &Server, tid: &str) -> Vec<Value> {
    records_when(s, tid, |l| {
        l.len() == 1 && l.iter().all(|m| m["state"] == "delivered")
    })
    .await
}

#[tokio::test]
async fn one_session_carries_every_login_and_its_receipts_mark_the_sms_delivered() {
    let smsc = Smsc::start(SmscOptions {
        receipt: Some("DELIVRD"),
        // Hexadecimal ids in submit_sm_resp, decimal in the receipts.
        decimal_receipt_ids: true,
        ..smsc_options()
    })
    .await;
    let s = smpp_server(smsc.port, &[("option.ENQUIRE_LINK", "0.2")]).await;
    for _ in 0..3 {
        let tid = login(&s).await;
        let sub = smsc.submits().pop().unwrap();
        assert_eq!(sub.registered_delivery, 1, "a receipt is asked for");
        let list = delivered(&s, &tid).await;
        assert_eq!(list[0]["status"], "DELIVRD", "{list:?}");
        let otp = String::from_utf8(sub.message).unwrap();
        assert!(answer(&s, &tid, &otp).await);
    }
    assert_eq!(
        smsc.binds(),
        vec![pdu::BIND_TRANSCEIVER],
        "one bound session for three logins"
    );
    // The console shows the token's SMS with their delivery, and the audit log's SMS view.
    let mut browser = crate::web::Browser::new(&s);
    browser.admin_login().await;
    let p = browser.get("/ui/admin/tokens/SMS1").await;
    assert!(
        p.body.contains("The last SMS of this token (3 in all)"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<span class=\"badge ok\">delivered</span> <small>DELIVRD</small>"),
        "{}",
        p.body
    );
    let p = browser
        .get("/ui/admin/audit/sms?serial=SMS1&state=delivered")
        .await;
    assert!(p.body.contains("SMS, newest first (3)"), "{}", p.body);
    assert!(
        p.body.contains("<td data-label=\"To\">DE +4915100…</td>"),
        "{}",
        p.body
    );
    let p = browser.get("/ui/admin/").await;
    assert!(
        p.body.contains("<td data-label=\"Route\">gw → DE</td><td data-label=\"Sent\">3</td><td data-label=\"Delivered\">3</td>"),
        "the dashboard shows the destination country: {}",
        p.body
    );
    let p = browser.get("/ui/admin/audit/sms?state=failed").await;
    assert!(p.body.contains("No SMS."), "{}", p.body);
    // A quiet session is checked with enquire_link (every 0.2 s here) and stays the one.
    for _ in 0..100 {
        if smsc.commands().contains(&pdu::ENQUIRE_LINK) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(smsc.commands().contains(&pdu::ENQUIRE_LINK));
    assert_eq!(smsc.binds().len(), 1);
    let m = s.metrics().await;
    assert!(
        m.contains("otpgate_sms_delivery_total{gateway=\"gw\",state=\"delivered\"} 3"),
        "{m}"
    );
    // The route's statistics count the three, delivered, converted (noted off the login's
    // path, so looked for a moment).
    let mut gw = Value::Null;
    for _ in 0..100 {
        let (st, b) = s.aget("/smsgateway/stats", &[]).await;
        assert_eq!(st, 200, "{b}");
        gw = b["result"]["value"]["routes"]
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|r| r["gateway"] == "gw" && r["country"] == "")
                    .cloned()
            })
            .unwrap_or_default();
        if gw["conversion"] == 100.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (&gw["sent"], &gw["delivered"], &gw["conversion"]),
        (&Value::from(3), &Value::from(3), &Value::from(100.0)),
        "{gw}"
    );
}

#[tokio::test]
async fn a_dropped_session_is_bound_again_and_tlv_receipts_count() {
    let smsc = Smsc::start(SmscOptions {
        receipt: Some("DELIVRD"),
        receipt_tlv: true,
        drop_after: Some(1),
        ..smsc_options()
    })
    .await;
    let s = smpp_server(smsc.port, &[]).await;
    for round in 1..=2 {
        let tid = login(&s).await;
        delivered(&s, &tid).await;
        let otp = String::from_utf8(smsc.submits().pop().unwrap().message).unwrap();
        assert!(answer(&s, &tid, &otp).await, "round {round}");
    }
    // Bound again after each drop (the one after the second login may still be under way).
    let binds = smsc.binds();
    assert!(
        (2..=3).contains(&binds.len()) && binds.iter().all(|b| *b == pdu::BIND_TRANSCEIVER),
        "{binds:?}"
    );
}

#[tokio::test]
async fn an_smsc_that_drops_every_session_after_its_bind_is_retried_with_back_off() {
    let smsc = Smsc::start(SmscOptions {
        drop_after: Some(0),
        ..smsc_options()
    })
    .await;
    let s = smpp_server(smsc.port, &[]).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert!(b["detail"]["transaction_id"].is_null(), "{b}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Bound and dropped, bound again at once and dropped, again after 1 s, then after 2 s…:
    // not a loop.
    let binds = smsc.binds().len();
    assert!((2..=4).contains(&binds), "{binds} binds in 1.5 s");
}

#[tokio::test]
async fn an_smsc_that_refuses_a_transceiver_is_bound_as_a_transmitter() {
    let smsc = Smsc::start(SmscOptions {
        refuse_transceiver: Some(pdu::ESME_RINVCMDID),
        receipt: Some("DELIVRD"),
        ..smsc_options()
    })
    .await;
    let (s, backup) = smpp_with_backup(smsc.port, &[("option.DLR_TIMEOUT", "5")]).await;
    let tid = login(&s).await;
    assert_eq!(
        smsc.binds(),
        vec![pdu::BIND_TRANSCEIVER, pdu::BIND_TRANSMITTER]
    );
    let sub = smsc.submits().pop().unwrap();
    assert_eq!(sub.registered_delivery, 0, "no receipts on a transmitter");
    let list = records_when(&s, &tid, |l| l.len() == 1 && l[0]["state"] != "sending").await;
    assert_eq!(states(&list), vec![("gw", "accepted")]);
    // No receipts can come on this session: DLR_TIMEOUT does not send the code again.
    s.advance(10);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(backup.count(), 0);
    assert!(answer(&s, &tid, &String::from_utf8(sub.message).unwrap()).await);
    // BIND=transmitter binds as privacyIDEA does, at once.
    let plain = Smsc::start(smsc_options()).await;
    let s = smpp_server(plain.port, &[("option.BIND", "transmitter")]).await;
    login(&s).await;
    assert_eq!(plain.binds(), vec![pdu::BIND_TRANSMITTER]);
    assert_eq!(plain.submits()[0].registered_delivery, 0);
    // Wrong credentials are not retried as a transmitter.
    let strict = Smsc::start(SmscOptions {
        password: "other".into(),
        ..smsc_options()
    })
    .await;
    let s = smpp_server(strict.port, &[]).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert!(
        b["detail"]["sms_error"]
            .as_str()
            .unwrap_or_default()
            .contains("bind refused (status 0x0000000e)"),
        "{b}"
    );
    assert_eq!(strict.binds(), vec![pdu::BIND_TRANSCEIVER]);
    // Nor is "already bound" (the account's one bind is taken): a transmitter there would
    // quietly go without receipts.
    let taken = Smsc::start(SmscOptions {
        refuse_transceiver: Some(0x05),
        ..smsc_options()
    })
    .await;
    let s = smpp_server(taken.port, &[]).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert!(
        b["detail"]["sms_error"]
            .as_str()
            .unwrap_or_default()
            .contains("bind refused (status 0x00000005)"),
        "{b}"
    );
    assert_eq!(taken.binds(), vec![pdu::BIND_TRANSCEIVER]);
}

#[tokio::test]
async fn the_session_of_a_gateway_another_node_deleted_or_changed_ends() {
    let smsc = Smsc::start(smsc_options()).await;
    let s = smpp_server(smsc.port, &[]).await;
    login(&s).await;
    // Nothing changed: the session stays.
    s.app.services.prune_gateway_providers().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!smsc.commands().contains(&pdu::UNBIND));
    // Deleted behind this node's back (as another node of the cluster would): the next round
    // of housekeeping ends the session with an unbind.
    s.app.services.store().gateway_delete("gw").await.unwrap();
    s.app.services.prune_gateway_providers().await.unwrap();
    for _ in 0..100 {
        if smsc.commands().contains(&pdu::UNBIND) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        smsc.commands().contains(&pdu::UNBIND),
        "{:?}",
        smsc.commands()
    );
}

/// `gw`'s SMS of `tid` failed (`UNDELIV`), `backup` carried the same `code`, and the login
/// completes with it.
async fn failed_over(s: &Server, tid: &str, code: &str, backup: &Gateway) {
    let list = records_when(s, tid, |l| {
        l.len() == 2 && l.iter().all(|m| m["state"] != "sending")
    })
    .await;
    assert_eq!(
        states(&list),
        vec![("backup", "accepted"), ("gw", "failed")],
        "{list:?}"
    );
    assert_eq!(list[1]["status"], "UNDELIV");
    assert_eq!(backup.last_otp(ALICE), code, "the same code");
    assert!(answer(s, tid, code).await);
}

#[tokio::test]
async fn a_failed_receipt_sends_the_same_code_through_the_backup() {
    let smsc = Smsc::start(SmscOptions {
        receipt: Some("UNDELIV"),
        ..smsc_options()
    })
    .await;
    let (s, backup) = smpp_with_backup(smsc.port, &[]).await;
    let tid = login(&s).await;
    let code = String::from_utf8(smsc.submits().pop().unwrap().message).unwrap();
    failed_over(&s, &tid, &code, &backup).await;
}

#[tokio::test]
async fn over_tls_the_smscs_certificate_is_checked_against_the_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert, key) = crate::support::tls_files(dir.path());
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let smsc = Smsc::start(SmscOptions {
        receipt: Some("DELIVRD"),
        tls: Some((cert, key)),
        ..smsc_options()
    })
    .await;
    let ca = ca.to_str().unwrap().to_owned();
    let s = smpp_server(
        smsc.port,
        &[
            ("option.SMSC_HOST", "localhost"),
            ("option.SMSC_TLS", "yes"),
            ("option.TLS_CA_FILE", &ca),
        ],
    )
    .await;
    let tid = login(&s).await;
    delivered(&s, &tid).await;
    let otp = String::from_utf8(smsc.submits().pop().unwrap().message).unwrap();
    assert!(answer(&s, &tid, &otp).await);
    // Checked against the system's roots, the test CA's certificate is refused.
    let port = smsc.port.to_string();
    let (st, b) = s
        .apost(
            "/smsgateway",
            &[
                ("name", "gw"),
                ("module", "smpp"),
                ("option.SMSC_HOST", "localhost"),
                ("option.SMSC_PORT", &port),
                ("option.SMSC_TLS", "yes"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let why = b["detail"]["sms_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("certificate") || why.contains("UnknownIssuer"),
        "{b}"
    );
    // A CA file without TLS, or one that is not there, is refused when saved.
    for (opt, want) in [
        (vec![("option.TLS_CA_FILE", ca.as_str())], "needs SMSC_TLS"),
        (
            vec![
                ("option.SMSC_TLS", "yes"),
                ("option.TLS_CA_FILE", "/nonexistent.pem"),
            ],
            "cannot be read",
        ),
        (vec![("option.WINDOW", "0")], "WINDOW"),
        (vec![("option.BIND", "receiver")], "BIND"),
    ] {
        let mut form = vec![
            ("name", "gw2"),
            ("module", "smpp"),
            ("option.SMSC_HOST", "localhost"),
            ("option.SMSC_PORT", "2775"),
        ];
        form.extend(opt);
        let (st, b) = s.apost("/smsgateway", &form).await;
        assert_eq!(st, 400, "{b}");
        assert!(
            b["result"]["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(want),
            "{b}"
        );
    }
}

/// Net::SMPP's SMSC (tests/smsc/netsmpp-smsc.pl), stopped when dropped.
struct NetSmpp {
    child: std::process::Child,
    port: u16,
    record: tempfile::NamedTempFile,
}

impl NetSmpp {
    fn start(stat: &str) -> NetSmpp {
        use std::io::BufRead;
        let record = tempfile::NamedTempFile::new().unwrap();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smsc/netsmpp-smsc.pl");
        let mut child = std::process::Command::new("perl")
            .arg(script)
            .args(["otpgate", "smpp-pw", stat])
            .arg(record.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("perl");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("Net::SMPP's SMSC did not start (apt-get install libnet-smpp-perl): {line:?}")
        });
        NetSmpp {
            child,
            port,
            record,
        }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.record.path())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for NetSmpp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unhex(h: &str) -> String {
    let bytes: Vec<u8> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn net_smpps_smsc_takes_the_session_and_its_receipts_reach_the_records() {
    let smsc = NetSmpp::start("DELIVRD");
    let s = smpp_server(smsc.port, &[]).await;
    for _ in 0..2 {
        let tid = login(&s).await;
        let list = delivered(&s, &tid).await;
        assert_eq!(list[0]["status"], "DELIVRD");
        let lines = smsc.lines();
        let submit: Vec<&str> = lines
            .iter()
            .rev()
            .find(|l| l.starts_with("submit "))
            .unwrap()
            .split(' ')
            .collect();
        assert_eq!(&submit[2..4], &["1", "+4915100000001"], "{lines:?}");
        assert!(answer(&s, &tid, &unhex(submit[4])).await, "{lines:?}");
    }
    let lines = smsc.lines();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("bind ")).count(),
        1,
        "one session: {lines:?}"
    );
    assert!(
        lines.contains(&"bind 9".to_owned()),
        "a transceiver: {lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| *l == "receipt_answered 0").count(),
        2,
        "each receipt answered: {lines:?}"
    );
}

/// A server whose default gateway `gw` is the simulated modem `device` (with `extra`).
async fn modem_server(device: &str, extra: &[(&str, &str)]) -> Server {
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    let mut form = vec![
        ("name", "gw"),
        ("module", "modem"),
        ("option.DEVICE", device),
        ("option.TIMEOUT", "2"),
    ];
    form.extend_from_slice(extra);
    s.ok("/smsgateway", &form).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    s
}

#[tokio::test]
async fn a_gsm_modems_status_reports_mark_the_sms_delivered_in_pdu_and_text_mode() {
    use crate::support::{FakeModem, ModemOptions};
    let modem = FakeModem::start(ModemOptions {
        report_status: Some(0),
        ..Default::default()
    });
    let s = modem_server(&modem.device, &[("option.MODE", "pdu")]).await;
    let tid = login(&s).await;
    let list = delivered(&s, &tid).await;
    assert_eq!(list[0]["status"], "DELIVRD", "{list:?}");
    let commands = modem.log().commands;
    assert!(
        commands.contains(&"AT+CNMI=2,1,0,1,0".to_owned()),
        "{commands:?}"
    );
    // Text mode asks with AT+CSMP (first octet 49: status report requested).
    let texting = FakeModem::start(ModemOptions {
        report_status: Some(0),
        ..Default::default()
    });
    let s = modem_server(&texting.device, &[("option.MODE", "text")]).await;
    let tid = login(&s).await;
    let list = delivered(&s, &tid).await;
    assert_eq!(list[0]["status"], "DELIVRD", "{list:?}");
    assert!(
        texting
            .log()
            .commands
            .contains(&"AT+CSMP=49,167,0,0".to_owned())
    );
    // STATUS_REPORTS=no asks for none.
    let quiet = FakeModem::start(ModemOptions {
        report_status: Some(0),
        ..Default::default()
    });
    let s = modem_server(
        &quiet.device,
        &[("option.MODE", "pdu"), ("option.STATUS_REPORTS", "no")],
    )
    .await;
    let tid = login(&s).await;
    let list = records_when(&s, &tid, |l| l.len() == 1 && l[0]["state"] != "sending").await;
    assert_eq!(states(&list), vec![("gw", "accepted")]);
    assert!(
        !quiet
            .log()
            .commands
            .iter()
            .any(|c| c.starts_with("AT+CNMI"))
    );
}

#[tokio::test]
async fn a_modems_failed_status_report_sends_the_same_code_through_the_backup() {
    use crate::support::{FakeModem, ModemOptions};
    // TP-ST 0x41: incompatible destination, the SMSC gave up.
    let modem = FakeModem::start(ModemOptions {
        report_status: Some(0x41),
        ..Default::default()
    });
    let backup = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&backup.url("/sms")).await;
    s.http_gateway("backup", &backup.url("/sms"), &[]).await;
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", "modem"),
            ("option.DEVICE", &modem.device),
            ("option.MODE", "text"),
            ("option.FAILOVER", "backup"),
        ],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    let tid = login(&s).await;
    let code = modem.log().bodies.pop().unwrap();
    failed_over(&s, &tid, &code, &backup).await;
}

#[tokio::test]
async fn a_message_waiting_for_the_window_past_its_logins_budget_is_not_sent_late() {
    // One message on its way at a time, answered after a second; a login's send budget is
    // 400 ms: the second login's SMS, still waiting for the window when its budget ran out,
    // never goes to the SMSC (its login was already refused).
    let smsc = Smsc::start(SmscOptions {
        answer_after: Some(Duration::from_millis(1000)),
        ..smsc_options()
    })
    .await;
    let s = smpp_server(
        smsc.port,
        &[("option.WINDOW", "1"), ("option.TIMEOUT", "5")],
    )
    .await;
    s.ok("/system/setConfig", &[("sms.send_budget_ms", "400")])
        .await;
    s.enroll("bob", "SMS2", "5678", "+4915100000002").await;
    let (a, b) = tokio::join!(
        s.check(&[("user", "alice"), ("pass", "1234")]),
        s.check(&[("user", "bob"), ("pass", "5678")])
    );
    for (_, body) in [&a, &b] {
        assert!(
            body["detail"]["transaction_id"].is_null(),
            "over budget: {body}"
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        smsc.submits().len(),
        1,
        "only the message already on its way reached the SMSC"
    );
}
