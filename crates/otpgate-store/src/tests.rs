//! Store tests on a real SQLite file with a connection pool and, when `TEST_POSTGRES_URL` is
//! set, on a fresh PostgreSQL database too, so concurrent statements really race each other
//! on both engines.

use super::*;
use std::collections::BTreeMap;

/// Runs a test body once per engine.
async fn for_each_store<F, Fut>(f: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    for s in testdb::stores(dir.path()).await.unwrap() {
        f(s).await;
    }
}

fn new_token(serial: &str) -> NewToken {
    NewToken {
        serial: serial.into(),
        tokentype: "sms".into(),
        description: String::new(),
        key_enc: "k".into(),
        pin_hash: "h".into(),
        otplen: 6,
        maxfail: 3,
        count_window: 10,
        sync_window: 1000,
        rollout_state: "enrolled".into(),
        info: BTreeMap::from([("phone".to_owned(), "+49".to_owned())]),
        owner: Some(TokenOwner {
            resolver: "r".into(),
            user_id: "1".into(),
            realm: "realm1".into(),
        }),
    }
}

#[tokio::test]
async fn token_round_trip_and_duplicate_serial() {
    for_each_store(|s| async move {
        let id = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        let t = s.token_by_serial("PISM1").await.unwrap().unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.info.get("phone").map(String::as_str), Some("+49"));
        assert_eq!(t.owner.as_ref().unwrap().realm, "realm1");
        assert!(matches!(
            s.token_insert(&new_token("PISM1"), 0).await,
            Err(StoreError::Conflict(_))
        ));
        let (list, total) = s
            .token_list(
                &TokenFilter {
                    serial: Some("PISM*".into()),
                    ..Default::default()
                },
                1,
                15,
                "t.id",
            )
            .await
            .unwrap();
        assert_eq!((list.len(), total), (1, 1));
        let (list, _) = s
            .token_list(
                &TokenFilter {
                    serial: Some("PIS_1".into()),
                    ..Default::default()
                },
                1,
                15,
                "t.id",
            )
            .await
            .unwrap();
        assert!(list.is_empty(), "LIKE metacharacters are escaped");
        let (list, _) = s
            .token_list(
                &TokenFilter {
                    serial: Some("pism*".into()),
                    ..Default::default()
                },
                1,
                15,
                "t.id",
            )
            .await
            .unwrap();
        assert_eq!(
            list.len(),
            1,
            "wildcard filters ignore case on every engine"
        );
    })
    .await;
}

#[tokio::test]
async fn fail_counter_saturates_and_never_loses_increments() {
    for_each_store(|s| async move {
        let id = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        s.token_set_attributes(id, Some(50), None, None)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..80 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.token_inc_failcount(id).await.unwrap()
            }));
        }
        let mut counted = 0;
        for t in tasks {
            if t.await.unwrap().is_some() {
                counted += 1;
            }
        }
        assert_eq!(counted, 50);
        assert_eq!(
            s.token_by_serial("PISM1").await.unwrap().unwrap().failcount,
            50
        );
        assert_eq!(
            s.token_next_counter(id).await.unwrap(),
            None,
            "a locked token sends no challenge"
        );
    })
    .await;
}

#[tokio::test]
async fn challenge_is_consumed_exactly_once_under_concurrency() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        let c = s.token_next_counter(tok).await.unwrap().unwrap();
        assert_eq!(c, 1);
        let cid = s
            .challenge_insert("123", tok, "PISM1", c, "", "", 0, 1000)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.challenge_consume(cid, 10, tok, Some(1), None)
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
    })
    .await;
}

#[tokio::test]
async fn an_accepted_challenge_is_consumed_once_and_only_then_counts_the_login() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PIACC1"), 0).await.unwrap();
        s.token_inc_failcount(tok).await.unwrap();
        s.token_inc_failcount(tok).await.unwrap();
        let c = s.token_next_counter(tok).await.unwrap().unwrap();
        let cid = s
            .challenge_insert("555", tok, "PIACC1", c, "", "", 0, 1000)
            .await
            .unwrap();
        let row = s.challenges_by_tid("555").await.unwrap().remove(0);
        assert_eq!(row.id, cid);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (s, row) = (s.clone(), row.clone());
            tasks.push(tokio::spawn(async move {
                s.challenge_accept(&row, 10, Some(c), None, &format!("login {i}"))
                    .await
                    .unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{:?}", s.backend());
        let t = s.token_by_serial("PIACC1").await.unwrap().unwrap();
        assert_eq!((t.count, t.failcount), (c + 1, 0));
        let info = |t: &TokenRow, k: &str| t.info.get(k).cloned().unwrap_or_default();
        assert_eq!(info(&t, "count_auth"), "1");
        assert_eq!(info(&t, "count_auth_success"), "1");
        assert!(info(&t, "last_auth").starts_with("login "));

        // Refused (expired; the counter moved on; too many wrong answers): nothing changes.
        s.token_inc_failcount(tok).await.unwrap();
        let c2 = s.token_next_counter(tok).await.unwrap().unwrap();
        let expired = s
            .challenge_insert("556", tok, "PIACC1", c2, "", "", 0, 1000)
            .await
            .unwrap();
        let late = s.challenges_by_tid("556").await.unwrap().remove(0);
        assert_eq!(late.id, expired);
        assert!(
            !s.challenge_accept(&late, 1000, None, None, "late")
                .await
                .unwrap()
        );
        let newer = s
            .challenge_insert("557", tok, "PIACC1", c2, "", "", 0, 5000)
            .await
            .unwrap();
        s.token_next_counter(tok).await.unwrap().unwrap();
        let stale = s.challenges_by_tid("557").await.unwrap().remove(0);
        assert_eq!(stale.id, newer);
        assert!(
            !s.challenge_accept(&stale, 10, Some(c2), None, "stale")
                .await
                .unwrap()
        );
        s.challenge_claim_answer(newer, None).await.unwrap();
        s.challenge_claim_answer(newer, None).await.unwrap();
        assert!(
            !s.challenge_accept(&stale, 10, None, Some(1), "used")
                .await
                .unwrap()
        );
        let t = s.token_by_serial("PIACC1").await.unwrap().unwrap();
        assert_eq!((t.count, t.failcount), (c2 + 1, 1));
        assert_eq!(info(&t, "count_auth"), "1");
        assert!(info(&t, "last_auth").starts_with("login "));

        // The counter never goes backwards: an older challenge accepted in concurrent mode.
        let c3 = s.token_next_counter(tok).await.unwrap().unwrap();
        assert!(
            s.challenge_accept(&stale, 10, None, None, "ok")
                .await
                .unwrap()
        );
        let t = s.token_by_serial("PIACC1").await.unwrap().unwrap();
        assert_eq!((t.count, t.failcount), (c3, 0));
        assert!(c3 > c2 + 1);
        assert_eq!(info(&t, "count_auth"), "2");
        assert_eq!(info(&t, "last_auth"), "ok");
    })
    .await;
}

#[tokio::test]
async fn challenge_consumption_respects_expiry_and_newer_challenges() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        let c1 = s.token_next_counter(tok).await.unwrap().unwrap();
        let old = s
            .challenge_insert("1", tok, "PISM1", c1, "", "", 0, 1000)
            .await
            .unwrap();
        assert!(
            !s.challenge_consume(old, 1000, tok, None, None)
                .await
                .unwrap(),
            "expired at expires_at"
        );
        let c2 = s.token_next_counter(tok).await.unwrap().unwrap();
        let newer = s
            .challenge_insert("2", tok, "PISM1", c2, "", "", 0, 5000)
            .await
            .unwrap();
        let c3 = s.token_next_counter(tok).await.unwrap().unwrap();
        assert!(
            !s.challenge_consume(newer, 10, tok, Some(c2), None)
                .await
                .unwrap(),
            "counter moved on to {c3}"
        );
        assert!(
            s.challenge_consume(newer, 10, tok, None, None)
                .await
                .unwrap(),
            "concurrent mode ignores the counter"
        );
    })
    .await;
}

#[tokio::test]
async fn counter_never_goes_backwards() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        s.token_auth_success(tok, 5).await.unwrap();
        s.token_auth_success(tok, 2).await.unwrap();
        assert_eq!(s.token_by_serial("PISM1").await.unwrap().unwrap().count, 5);
    })
    .await;
}

#[tokio::test]
async fn gateways_replace_all_and_option_delete() {
    for_each_store(|s| async move {
        let opts = vec![
            (
                "URL".to_owned(),
                "http://x".to_owned(),
                "option".to_owned(),
                false,
            ),
            ("h1".to_owned(), "v".to_owned(), "header".to_owned(), false),
        ];
        let id = s.gateway_upsert("gw", "http", "d", &opts).await.unwrap();
        let id2 = s
            .gateway_upsert("gw", "http", "", &opts[..1])
            .await
            .unwrap();
        assert_eq!(id, id2);
        let g = s.gateway_by_name("gw").await.unwrap().unwrap();
        assert_eq!(g.options.len(), 1);
        assert_eq!(g.description, "");
        assert!(
            s.gateway_delete_option(id, "URL", "header")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.gateway_delete_option(id, "URL", "option")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(s.gateway_delete("gw").await.unwrap(), Some(id));
        assert_eq!(s.gateway_delete("gw").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn realms_default_and_resolver_in_use() {
    for_each_store(|s| async move {
        let r = s
            .resolver_upsert("res", "passwdresolver", "{}", "")
            .await
            .unwrap();
        s.realm_set("a", &[(r, None)]).await.unwrap();
        s.realm_set("b", &[(r, Some(2))]).await.unwrap();
        let realms = s.realm_list().await.unwrap();
        assert!(
            realms.iter().find(|x| x.name == "a").unwrap().is_default,
            "first realm is the default"
        );
        assert!(matches!(
            s.resolver_delete("res").await,
            Err(StoreError::InUse(_))
        ));
        s.realm_set_default("b").await.unwrap();
        assert!(
            s.realm_list()
                .await
                .unwrap()
                .iter()
                .find(|x| x.name == "b")
                .unwrap()
                .is_default
        );
        assert_eq!(s.realm_set_default("nope").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn config_insert_update_delete_and_audit_filter() {
    for_each_store(|s| async move {
        assert!(s.config_set("k", "1", "", "").await.unwrap());
        assert!(!s.config_set("k", "2", "", "").await.unwrap());
        assert_eq!(s.config_get("k").await.unwrap().as_deref(), Some("2"));
        assert!(s.config_delete("k").await.unwrap());
        for (i, a) in ["POST /validate/check", "GET /token/"].iter().enumerate() {
            s.audit_insert(&AuditEntry {
                ts: i as i64,
                action: (*a).into(),
                user: "alice".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let f = AuditFilter {
            columns: vec![("action", "*validate*".into())],
            ..Default::default()
        };
        let (rows, total) = s.audit_list(&f, 1, 10).await.unwrap();
        assert_eq!((rows.len(), total), (1, 1));
        let f = AuditFilter {
            columns: vec![("user", "ali*".into())],
            ..Default::default()
        };
        assert_eq!(
            s.audit_list(&f, 2, 1).await.unwrap().0[0].action,
            "POST /validate/check"
        );
    })
    .await;
}

#[tokio::test]
async fn copy_moves_every_row_and_refuses_a_target_with_any_row() {
    for_each_store(|s| async move {
        s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        s.audit_insert(&AuditEntry {
            action: "POST /token/init".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
        let target = Store::connect(&url("copy.db")).await.unwrap();
        assert!(target.is_empty().await.unwrap());
        let report = s.copy_into(&target).await.unwrap();
        let count = |t: &str| report.iter().find(|(n, _)| *n == t).unwrap().1;
        assert_eq!(
            (count("token"), count("tokeninfo"), count("audit")),
            (1, 1, 1)
        );
        assert!(target.token_by_serial("PISM1").await.unwrap().is_some());
        // A second copy into the same database is refused, and so is one into a database
        // holding nothing but an audit entry.
        assert!(s.copy_into(&target).await.is_err());
        let audited = Store::connect(&url("audited.db")).await.unwrap();
        audited.audit_insert(&AuditEntry::default()).await.unwrap();
        assert!(!audited.is_empty().await.unwrap());
        assert!(s.copy_into(&audited).await.is_err());
    })
    .await;
}

fn outbox_item(key: &str) -> crate::NewOutboxItem {
    crate::NewOutboxItem {
        dedupe_key: key.into(),
        handler_id: 1,
        handler_name: "h".into(),
        event: "token_init".into(),
        channel: "sms".into(),
        config: "gw".into(),
        recipient: "+491".into(),
        subject: String::new(),
        body: "text".into(),
    }
}

#[tokio::test]
async fn outbox_items_are_claimed_once_and_settle_only_from_sending() {
    for_each_store(|s| async move {
        let n = s
            .outbox_insert(&[outbox_item("a"), outbox_item("b"), outbox_item("a")], 100)
            .await
            .unwrap();
        assert_eq!(n, 2, "the repeated key is skipped");
        assert!(
            s.outbox_due(99, 10).await.unwrap().is_empty(),
            "not due yet"
        );
        let due = s.outbox_due(100, 10).await.unwrap();
        assert_eq!(due.len(), 2);
        let id = due[0].id;
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.outbox_claim(id, 100, 1000).await.unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "one worker cluster-wide");
        // Retry puts it back with a later due time; only a claimed item can be settled.
        assert!(s.outbox_retry(id, "down", 500, 110).await.unwrap());
        assert!(!s.outbox_sent(id, "gw", 120).await.unwrap(), "not claimed");
        assert!(!s.outbox_claim(id, 499, 1000).await.unwrap(), "not due");
        assert!(s.outbox_claim(id, 500, 1000).await.unwrap());
        assert!(s.outbox_sent(id, "gw", 510).await.unwrap());
        let (rows, count) = s.outbox_list(Some("sent"), 1, 10).await.unwrap();
        assert_eq!(
            (count, rows[0].attempts, rows[0].delivered_by.as_str()),
            (1, 2, "gw")
        );
        // A claimed item whose lease runs out is dead-lettered, not resent; a requeue revives it.
        let other = due[1].id;
        assert!(s.outbox_claim(other, 100, 1000).await.unwrap());
        assert_eq!(s.outbox_reap_interrupted(999).await.unwrap(), 0);
        assert_eq!(s.outbox_reap_interrupted(1000).await.unwrap(), 1);
        let (rows, _) = s.outbox_list(Some("dead"), 1, 10).await.unwrap();
        assert_eq!(rows[0].last_error, crate::INTERRUPTED);
        assert!(s.outbox_requeue(other, 2000).await.unwrap());
        assert!(
            !s.outbox_requeue(other, 2000).await.unwrap(),
            "only dead items"
        );
        let counts = s.outbox_counts().await.unwrap();
        assert_eq!(counts, [("pending".to_owned(), 1), ("sent".to_owned(), 1)]);
        // Purging keeps what is recent or still pending.
        assert_eq!(s.outbox_purge(510).await.unwrap(), 0);
        assert_eq!(s.outbox_purge(511).await.unwrap(), 1);
        assert_eq!(s.outbox_list(None, 1, 10).await.unwrap().1, 1);
    })
    .await;
}

#[tokio::test]
async fn event_handlers_save_update_toggle_delete() {
    for_each_store(|s| async move {
        let mut h = crate::EventHandlerRow {
            name: "n".into(),
            events: "token_init".into(),
            handlermodule: "UserNotification".into(),
            action: "sendsms".into(),
            position: "post".into(),
            active: true,
            options: "{}".into(),
            conditions: "{}".into(),
            ..Default::default()
        };
        let id = s.event_save(&h).await.unwrap().unwrap();
        h.id = id;
        h.name = "renamed".into();
        assert_eq!(s.event_save(&h).await.unwrap(), Some(id));
        h.id = id + 100;
        assert_eq!(s.event_save(&h).await.unwrap(), None, "unknown id");
        assert!(s.event_set_active(id, false).await.unwrap());
        let list = s.event_list().await.unwrap();
        assert_eq!(
            (list.len(), list[0].name.as_str(), list[0].active),
            (1, "renamed", false)
        );
        assert!(s.event_delete(id).await.unwrap());
        assert!(!s.event_delete(id).await.unwrap());
        assert!(!s.event_set_active(id, true).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn send_windows_count_exactly_under_concurrency_all_or_nothing() {
    for_each_store(|s| async move {
        let key = |k: &str, limit: i64| crate::WindowKey {
            key: k.into(),
            window_start: 600_000,
            limit,
        };
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let s = s.clone();
            let keys = vec![key("phone:+491", 5), key("global", 100)];
            tasks.push(tokio::spawn(async move {
                s.send_window_take(&keys).await.unwrap()
            }));
        }
        let mut passed = 0;
        for t in tasks {
            match t.await.unwrap() {
                None => passed += 1,
                Some(i) => assert_eq!(i, 0, "refused by the phone key"),
            }
        }
        assert_eq!(passed, 5);
        assert_eq!(s.send_window_count("phone:+491", 600_000).await.unwrap(), 5);
        assert_eq!(
            s.send_window_count("global", 600_000).await.unwrap(),
            5,
            "a refused send counts nowhere"
        );
        // The second key refuses: the first is not counted either.
        let keys = [key("user:a", 10), key("phone:+491", 5)];
        assert_eq!(s.send_window_take(&keys).await.unwrap(), Some(1));
        assert_eq!(s.send_window_count("user:a", 600_000).await.unwrap(), 0);
        // Giving back makes room; a new window starts at zero.
        s.send_window_give_back(&[key("phone:+491", 5)])
            .await
            .unwrap();
        assert_eq!(s.send_window_take(&keys).await.unwrap(), None);
        let next = crate::WindowKey {
            window_start: 1_200_000,
            ..key("phone:+491", 5)
        };
        assert_eq!(s.send_window_take(&[next]).await.unwrap(), None);
        assert_eq!(s.send_window_purge(1_200_000).await.unwrap(), 3);
        assert_eq!(
            s.send_window_count("phone:+491", 1_200_000).await.unwrap(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn parallel_answers_claim_no_more_checks_than_a_challenge_allows() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        let c = s.token_next_counter(tok).await.unwrap().unwrap();
        let cid = s
            .challenge_insert("7", tok, "PISM1", c, "", "", 0, 1000)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.challenge_claim_answer(cid, Some(3)).await.unwrap()
            }));
        }
        let mut claimed = Vec::new();
        for t in tasks {
            if let Some(n) = t.await.unwrap() {
                claimed.push(n);
            }
        }
        claimed.sort_unstable();
        assert_eq!(claimed, [1, 2, 3], "exactly three checks");
        assert!(s.challenge_drop_used_up(cid, 3).await.unwrap());
        assert_eq!(
            s.challenge_claim_answer(cid, Some(3)).await.unwrap(),
            None,
            "gone"
        );
    })
    .await;
}

#[tokio::test]
async fn a_challenge_with_too_many_wrong_answers_dies_and_cannot_be_consumed() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        let c = s.token_next_counter(tok).await.unwrap().unwrap();
        let cid = s
            .challenge_insert("9", tok, "PISM1", c, "", "", 0, 1000)
            .await
            .unwrap();
        assert!(!s.challenge_inc_received(cid, Some(2)).await.unwrap());
        assert!(
            s.challenge_consume(cid, 10, tok, Some(c), Some(2))
                .await
                .is_ok()
        );
        let cid = s
            .challenge_insert("9", tok, "PISM1", c, "", "", 0, 1000)
            .await
            .unwrap();
        assert!(!s.challenge_inc_received(cid, Some(2)).await.unwrap());
        // Counted past the limit (answers claimed by others): consumption refuses it; at the
        // limit it is the claim of the very answer being consumed.
        sqlx::query("UPDATE challenge SET received_count = 3 WHERE id = $1")
            .bind(cid)
            .execute(&s.pool)
            .await
            .unwrap();
        assert!(
            !s.challenge_consume(cid, 10, tok, Some(c), Some(2))
                .await
                .unwrap()
        );
        assert!(
            s.challenge_consume(cid, 10, tok, Some(c), None)
                .await
                .unwrap(),
            "no limit"
        );
        let cid = s
            .challenge_insert("9", tok, "PISM1", c, "", "", 0, 1000)
            .await
            .unwrap();
        assert!(!s.challenge_inc_received(cid, Some(2)).await.unwrap());
        assert!(
            s.challenge_inc_received(cid, Some(2)).await.unwrap(),
            "dies at 2"
        );
        assert!(s.challenges_by_tid("9").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn opening_a_challenge_counts_advances_and_stores_all_or_nothing() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        let w = |limit: i64| crate::WindowKey {
            key: "phone:+491".into(),
            window_start: 0,
            limit,
        };
        let open = s
            .challenge_open(&[w(1)], tok, "7", "PISM1", "", 0, 1000, None)
            .await
            .unwrap();
        let crate::Opened::Open { counter, id } = open else {
            panic!("{open:?}")
        };
        assert_eq!(counter, 1);
        assert_eq!(s.challenges_by_tid("7").await.unwrap()[0].id, id);
        // The limit refuses: no counter step, no challenge.
        assert_eq!(
            s.challenge_open(&[w(1)], tok, "8", "PISM1", "", 0, 1000, None)
                .await
                .unwrap(),
            crate::Opened::Refused(0)
        );
        assert!(s.challenges_by_tid("8").await.unwrap().is_empty());
        // An unfit token: the count is not taken either.
        sqlx::query("UPDATE token SET active = 0 WHERE id = $1")
            .bind(tok)
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(
            s.challenge_open(&[w(2)], tok, "9", "PISM1", "", 0, 1000, None)
                .await
                .unwrap(),
            crate::Opened::Unfit
        );
        assert_eq!(s.send_window_count("phone:+491", 0).await.unwrap(), 1);
        assert_eq!(s.token_by_serial("PISM1").await.unwrap().unwrap().count, 1);
        // Without send limits (on PostgreSQL one statement): unfit, then fit again.
        assert_eq!(
            s.challenge_open(&[], tok, "10", "PISM1", "", 0, 1000, None)
                .await
                .unwrap(),
            crate::Opened::Unfit
        );
        assert!(s.challenges_by_tid("10").await.unwrap().is_empty());
        s.token_set_active(tok, true).await.unwrap();
        // The counter runs ahead of the challenge ids, so the two cannot be mixed up.
        assert_eq!(s.token_next_counter(tok).await.unwrap(), Some(2));
        let open = s
            .challenge_open(&[], tok, "11", "PISM1", "c", 5, 1000, None)
            .await
            .unwrap();
        let crate::Opened::Open { counter, id } = open else {
            panic!("{open:?}")
        };
        let stored = s.challenges_by_tid("11").await.unwrap();
        assert_eq!((stored.len(), stored[0].id, counter), (1, id, 3));
        let c = &stored[0];
        assert_eq!(
            (
                c.token_id,
                c.otp_counter,
                c.challenge.as_str(),
                c.created_at
            ),
            (tok, 3, "c", 5)
        );
        assert_eq!((c.expires_at, c.sent_at, c.session.as_str()), (1000, 5, ""));
        assert_eq!(s.token_by_serial("PISM1").await.unwrap().unwrap().count, 3);
    })
    .await;
}

#[tokio::test]
async fn parallel_openings_within_the_cooldown_open_one_challenge() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PICOOL"), 0).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.challenge_open(
                    &[],
                    tok,
                    &format!("t{i}"),
                    "PICOOL",
                    "",
                    100,
                    10_000,
                    Some(50),
                )
                .await
                .unwrap()
            }));
        }
        let mut opened = Vec::new();
        for t in tasks {
            opened.push(t.await.unwrap());
        }
        let open = opened
            .iter()
            .filter(|o| matches!(o, crate::Opened::Open { .. }))
            .count();
        let recent = opened
            .iter()
            .filter(|o| **o == crate::Opened::Recent)
            .count();
        assert_eq!((open, recent), (1, 7), "{:?}: {opened:?}", s.backend());
        // The refused ones took no counter step.
        assert_eq!(s.token_by_serial("PICOOL").await.unwrap().unwrap().count, 1);
        // A challenge sent before the cooldown's start does not hold a new one back.
        let open = s
            .challenge_open(&[], tok, "later", "PICOOL", "", 200, 10_000, Some(100))
            .await
            .unwrap();
        assert!(
            matches!(open, crate::Opened::Open { counter: 2, .. }),
            "{open:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_live_challenge_is_re_sent_once_per_cooldown_under_concurrency() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        let w = |limit: i64| crate::WindowKey {
            key: "user:r/1".into(),
            window_start: 0,
            limit,
        };
        let crate::Opened::Open { id, .. } = s
            .challenge_open(&[w(5)], tok, "7", "PISM1", "", 0, 100_000, None)
            .await
            .unwrap()
        else {
            panic!("not opened")
        };
        // Sixteen requests past the cooldown at once: one claims the re-send.
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.challenge_resend(&[w(5)], id, 40_000, 10_000)
                    .await
                    .unwrap()
            }));
        }
        let mut due = 0;
        for t in tasks {
            match t.await.unwrap() {
                crate::Resent::Due => due += 1,
                r => assert_eq!(r, crate::Resent::NotDue),
            }
        }
        assert_eq!(due, 1);
        let c = &s.challenges_by_tid("7").await.unwrap()[0];
        assert_eq!((c.created_at, c.sent_at), (0, 40_000));
        assert_eq!(s.send_window_count("user:r/1", 0).await.unwrap(), 2);
        // A send limit at its end refuses without marking the challenge sent.
        assert_eq!(
            s.challenge_resend(&[w(2)], id, 80_000, 50_000)
                .await
                .unwrap(),
            crate::Resent::Refused(0)
        );
        assert_eq!(s.challenges_by_tid("7").await.unwrap()[0].sent_at, 40_000);
        // An expired challenge is not re-sent.
        assert_eq!(
            s.challenge_resend(&[w(5)], id, 100_000, 90_000)
                .await
                .unwrap(),
            crate::Resent::NotDue
        );
    })
    .await;
}

#[tokio::test]
async fn the_verify_back_off_doubles_in_one_conditional_statement() {
    for_each_store(|s| async move {
        let tok = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        sqlx::query("UPDATE token SET maxfail = 100 WHERE id = $1")
            .bind(tok)
            .execute(&s.pool)
            .await
            .unwrap();
        use crate::Reserve;
        // Off: always reserved.
        assert_eq!(
            s.token_reserve_attempt(tok, 0, 0).await.unwrap(),
            Reserve::Reserved(1, 100)
        );
        s.token_note_failure(tok, 1_000).await.unwrap();
        // One kept failure at 1 s, back-off 10 s: held until 11 s.
        assert_eq!(
            s.token_reserve_attempt(tok, 10_000, 10_999).await.unwrap(),
            Reserve::BackOff { until_ms: 11_000 }
        );
        assert_eq!(
            s.token_reserve_attempt(tok, 10_000, 11_000).await.unwrap(),
            Reserve::Reserved(2, 100)
        );
        s.token_note_failure(tok, 11_000).await.unwrap();
        assert_eq!(
            s.token_reserve_attempt(tok, 10_000, 30_999).await.unwrap(),
            Reserve::BackOff { until_ms: 31_000 },
            "doubled"
        );
        // Many failures: the factor stops at 4096.
        sqlx::query("UPDATE token SET failcount = 9 WHERE id = $1")
            .bind(tok)
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(
            s.token_reserve_attempt(tok, 1_000, 11_000).await.unwrap(),
            Reserve::BackOff {
                until_ms: 11_000 + 256_000
            }
        );
        sqlx::query("UPDATE token SET failcount = 40 WHERE id = $1")
            .bind(tok)
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(
            s.token_reserve_attempt(tok, 1_000, 11_000).await.unwrap(),
            Reserve::BackOff {
                until_ms: 11_000 + 4_096_000
            }
        );
        assert_eq!(
            s.token_reserve_attempt(tok, 1_000, 11_000 + 4_096_000)
                .await
                .unwrap(),
            Reserve::Reserved(41, 100)
        );
        sqlx::query("UPDATE token SET failcount = 100 WHERE id = $1")
            .bind(tok)
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(
            s.token_reserve_attempt(tok, 0, 0).await.unwrap(),
            Reserve::Saturated
        );
    })
    .await;
}

#[tokio::test]
async fn sqlite_files_commit_with_the_chosen_synchronous_level() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    for (full, name, want) in [(false, "normal.db", 1_i64), (true, "full.db", 2)] {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
        let opts = ConnectOptions {
            max_connections: 3,
            sqlite_full_sync: full,
            ..ConnectOptions::default()
        };
        let s = Store::connect_with(&url, &opts).await.unwrap();
        // A commit that waits for the disk stays off the runtime's threads: no direct
        // connection with FULL.
        assert_eq!(s.is_direct(), !full, "{name}");
        // Every connection of the pool, not only the first one.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut c = s.pool.acquire().await.unwrap();
            let level: i64 = sqlx::query("PRAGMA synchronous")
                .fetch_one(&mut *c)
                .await
                .unwrap()
                .try_get(0)
                .unwrap();
            assert_eq!(level, want, "{name}");
            held.push(c);
        }
        drop(held);
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(mode, "wal");
    }
}

#[tokio::test]
async fn auth_counts_are_one_upsert_that_keeps_counting() {
    for_each_store(|s| async move {
        let id = s.token_insert(&new_token("PICNT1"), 0).await.unwrap();
        s.token_count_auth(id, false, "never").await.unwrap();
        s.token_count_auth(id, true, "2026-11-29 01:00:00")
            .await
            .unwrap();
        s.token_count_auth(id, true, "2026-11-29 01:00:05")
            .await
            .unwrap();
        s.token_count_auth(id, false, "never").await.unwrap();
        let t = s.token_by_serial("PICNT1").await.unwrap().unwrap();
        let info = |k: &str| t.info.get(k).cloned().unwrap_or_default();
        assert_eq!(info("count_auth"), "4");
        assert_eq!(info("count_auth_success"), "2");
        assert_eq!(info("last_auth"), "2026-11-29 01:00:05");
    })
    .await;
}

#[tokio::test]
async fn every_settings_change_moves_the_settings_version() {
    for_each_store(|s| async move {
        let mut last = s.settings_version().await.unwrap();
        let mut moved = |v: i64, what: &str| {
            assert!(v > last, "{what} did not move the settings version");
            last = v;
        };
        s.config_set("splitAtSign", "0", "", "").await.unwrap();
        moved(s.settings_version().await.unwrap(), "config insert");
        s.config_set("splitAtSign", "1", "", "").await.unwrap();
        moved(s.settings_version().await.unwrap(), "config update");
        s.config_delete("splitAtSign").await.unwrap();
        moved(s.settings_version().await.unwrap(), "config delete");
        // Token changes are not settings: the login path reads them fresh anyway.
        let before = s.settings_version().await.unwrap();
        s.token_insert(&new_token("PIVER1"), 0).await.unwrap();
        assert_eq!(s.settings_version().await.unwrap(), before);
    })
    .await;
}

#[tokio::test]
async fn audit_rows_written_together_keep_every_value_and_their_order() {
    for_each_store(|s| async move {
        let n = audit::AUDIT_BATCH + 44;
        let entries: Vec<AuditEntry> = (0..n)
            .map(|i| AuditEntry {
                ts: 1_000 + i64::try_from(i).unwrap(),
                action: format!("POST /validate/check {i}"),
                success: i % 2 == 0,
                serial: format!("PISM{i}"),
                user: "o'brien; DROP TABLE audit".into(),
                info: "ü ✓".into(),
                duration_ms: 7,
                ..Default::default()
            })
            .collect();
        s.audit_insert_many(&entries).await.unwrap();
        s.audit_insert_many(&[]).await.unwrap();
        let (rows, count) = s
            .audit_list(&AuditFilter::default(), 1, 1000)
            .await
            .unwrap();
        assert_eq!(count, i64::try_from(n).unwrap());
        // Newest first: the last entry written comes first.
        let last = &rows[0];
        assert_eq!(last.action, format!("POST /validate/check {}", n - 1));
        assert_eq!(last.serial, format!("PISM{}", n - 1));
        assert_eq!(last.user, "o'brien; DROP TABLE audit");
        assert_eq!(last.info, "ü ✓");
        assert_eq!(last.duration_ms, 7);
        let first = &rows[n - 1];
        assert_eq!((first.ts, first.success), (1_000, true));
        assert!(rows.windows(2).all(|w| w[0].id > w[1].id));
    })
    .await;
}

#[tokio::test]
async fn a_users_tokens_come_with_their_info_in_one_read() {
    for_each_store(|s| async move {
        let mut a = new_token("PISM2");
        a.info.insert("phone".into(), "+4915100000002".into());
        a.info.insert("sms.identifier".into(), "gw".into());
        let mut b = new_token("PISM1");
        b.info.clear();
        let mut hotp = new_token("OATH1");
        hotp.tokentype = "hotp".into();
        let mut other = new_token("PISM9");
        other.owner = Some(TokenOwner {
            resolver: "r".into(),
            user_id: "2".into(),
            realm: "realm1".into(),
        });
        let ida = s.token_insert(&a, 0).await.unwrap();
        let idb = s.token_insert(&b, 0).await.unwrap();
        s.token_insert(&hotp, 0).await.unwrap();
        s.token_insert(&other, 0).await.unwrap();
        let owner = new_token("x").owner.unwrap();
        let got = s.tokens_of_user(&owner).await.unwrap();
        let serials: Vec<&str> = got.iter().map(|t| t.serial.as_str()).collect();
        // By type, then in the order they were made.
        assert_eq!(serials, ["OATH1", "PISM2", "PISM1"]);
        let by = |id: i64| got.iter().find(|t| t.id == id).unwrap();
        assert_eq!(by(ida).info.len(), 2);
        assert_eq!(by(ida).info["phone"], "+4915100000002");
        assert_eq!(by(ida).info["sms.identifier"], "gw");
        assert!(
            by(idb).info.is_empty(),
            "a token without info is still there"
        );
        assert_eq!(by(idb).owner.as_ref().unwrap().user_id, "1");
        // The same rows as reading each token alone.
        for t in &got {
            let alone = s.token_by_serial(&t.serial).await.unwrap().unwrap();
            assert_eq!(format!("{t:?}"), format!("{alone:?}"));
        }
    })
    .await;
}

#[tokio::test]
async fn sms_counts_add_up_per_day_gateway_and_outcome_from_concurrent_flushes() {
    for_each_store(|s| async move {
        let stat = |gw: &str, outcome: &str, n: i64| SmsStat {
            day: "2026-11-29".into(),
            gateway: gw.into(),
            outcome: outcome.into(),
            count: n,
        };
        // Two nodes flush at once, several times: every count arrives.
        let mut flushes = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            flushes.push(tokio::spawn(async move {
                s.sms_stat_add(&[stat("gw", "delivered", 3), stat("", "limit:user", 1)])
                    .await
            }));
        }
        for f in flushes {
            f.await.unwrap().unwrap();
        }
        s.sms_stat_add(&[SmsStat {
            day: "2026-11-28".into(),
            ..stat("gw", "delivered", 100)
        }])
        .await
        .unwrap();
        let today = s.sms_stat_day("2026-11-29").await.unwrap();
        assert_eq!(
            today,
            vec![stat("", "limit:user", 8), stat("gw", "delivered", 24)]
        );
    })
    .await;
}

#[tokio::test]
async fn signed_out_sessions_are_known_until_they_expire() {
    for_each_store(|s| async move {
        s.web_logout_insert("sid1", 1_000).await.unwrap();
        s.web_logout_insert("sid1", 1_000).await.unwrap();
        assert!(s.web_logged_out("sid1").await.unwrap());
        assert!(!s.web_logged_out("sid2").await.unwrap());
        assert_eq!(s.web_logout_purge(999).await.unwrap(), 0);
        assert_eq!(s.web_logout_purge(1_000).await.unwrap(), 1);
        assert!(!s.web_logged_out("sid1").await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn a_verified_enrollment_finishes_once_and_replaces_the_old_token_with_its_pin() {
    for_each_store(|s| async move {
        let mut old = new_token("PISMOLD");
        old.pin_hash = "old-pin-hash".into();
        let old_id = s.token_insert(&old, 0).await.unwrap();
        let mut new = new_token("PISMNEW");
        new.rollout_state = "verify".into();
        let new_id = s.token_insert(&new, 0).await.unwrap();
        // Two requests race to finish it: exactly one wins.
        let (a, b) = tokio::join!(
            s.token_finish_verify(new_id, Some(old_id)),
            s.token_finish_verify(new_id, Some(old_id))
        );
        assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);
        let t = s.token_by_serial("PISMNEW").await.unwrap().unwrap();
        assert_eq!(t.rollout_state, "enrolled");
        assert_eq!(t.pin_hash, "old-pin-hash");
        assert!(s.token_by_serial("PISMOLD").await.unwrap().is_none());
        // An enrolled token is not "verified" again.
        assert!(!s.token_finish_verify(new_id, None).await.unwrap());
        // A disabled token is not replaced: nothing changes.
        let keep_id = s.token_insert(&new_token("PISMKEEP"), 0).await.unwrap();
        s.token_set_active(keep_id, false).await.unwrap();
        let mut pending = new_token("PISMPEND");
        pending.rollout_state = "verify".into();
        let pending_id = s.token_insert(&pending, 0).await.unwrap();
        assert!(
            !s.token_finish_verify(pending_id, Some(keep_id))
                .await
                .unwrap()
        );
        assert!(s.token_by_serial("PISMKEEP").await.unwrap().is_some());
        let p = s.token_by_serial("PISMPEND").await.unwrap().unwrap();
        assert_eq!(p.rollout_state, "verify");
    })
    .await;
}

#[tokio::test]
async fn guarded_policy_changes_cannot_together_break_the_guard() {
    for_each_store(|s| async move {
        for round in 0..8 {
            let names: Vec<String> = (0..4).map(|i| format!("keep{round}-{i}")).collect();
            for n in &names {
                let p = PolicyRow {
                    name: n.clone(),
                    scope: "admin".into(),
                    action: "policyread".into(),
                    priority: 1,
                    active: true,
                    ..Default::default()
                };
                s.policy_upsert(&p).await.unwrap();
            }
            // Every change alone keeps one of them; all four at once, from four tasks, may
            // not remove the last one.
            let mut tasks = Vec::new();
            for (i, n) in names.iter().enumerate() {
                let (s, n, names) = (s.clone(), n.clone(), names.clone());
                tasks.push(tokio::spawn(async move {
                    let keeps = |after: &[PolicyRow]| {
                        after.iter().any(|p| p.active && names.contains(&p.name))
                    };
                    let change = if i % 2 == 0 {
                        PolicyChange::Delete(&n)
                    } else {
                        PolicyChange::SetActive(&n, false)
                    };
                    s.policy_change_if(change, keeps).await.unwrap()
                }));
            }
            let mut done = 0;
            for t in tasks {
                if matches!(t.await.unwrap(), Guarded::Done(Some(_))) {
                    done += 1;
                }
            }
            assert_eq!(done, 3, "round {round}: all but one change");
            let left = s
                .policy_list()
                .await
                .unwrap()
                .into_iter()
                .filter(|p| p.active && names.contains(&p.name))
                .count();
            assert_eq!(left, 1, "round {round}");
        }
    })
    .await;
}

#[tokio::test]
async fn sqlite_statements_run_on_the_direct_connection_and_take_the_pool_while_another_writer_holds_the_lock()
 {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
    let s = Store::connect(&url).await.unwrap();
    assert!(
        s.direct.is_some(),
        "a SQLite file gets the direct connection"
    );
    let id = s.token_insert(&new_token("D1"), 0).await.unwrap();
    // Another connection takes the write lock for 300 ms.
    let holder = rusqlite::Connection::open(dir.path().join("d.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    holder
        .execute("UPDATE token SET description = 'held' WHERE id = ?1", [id])
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        holder.execute_batch("COMMIT").unwrap();
    });
    // Reads go on meanwhile (WAL) on the direct connection, and see the last commit.
    assert_eq!(
        s.token_by_serial("D1").await.unwrap().unwrap().description,
        ""
    );
    // A write and a transaction are refused there as busy and wait in the pool instead,
    // then land after the holder's commit, nothing lost.
    let started = std::time::Instant::now();
    s.token_set_info(id, "k", "v").await.unwrap();
    assert!(
        s.send_window_take(&[WindowKey {
            key: "phone:x".into(),
            window_start: 0,
            limit: 1
        }])
        .await
        .unwrap()
        .is_none()
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    release.await.unwrap();
    let t = s.token_by_serial("D1").await.unwrap().unwrap();
    assert_eq!(
        (t.description.as_str(), t.info["k"].as_str()),
        ("held", "v")
    );
    assert_eq!(s.send_window_count("phone:x", 0).await.unwrap(), 1);
    // A transaction dropped without its commit leaves nothing behind, on either path.
    {
        let mut tx = s.begin().await.unwrap();
        tx.exec("UPDATE token SET count = 99 WHERE id = $1", &[id.into()])
            .await
            .unwrap();
    }
    assert_eq!(s.token_by_serial("D1").await.unwrap().unwrap().count, 0);
    // The direct connection leaves checkpoints to the checkpoint thread.
    let auto = s.row("PRAGMA wal_autocheckpoint", &[], |r| r.int(0)).await;
    assert_eq!(auto.unwrap(), Some(0));
}

#[tokio::test]
async fn setup_progress_sees_users_sms_tokens_and_a_first_login() {
    for_each_store(|s| async move {
        let none = SetupProgress::default();
        assert_eq!(s.setup_progress(true).await.unwrap(), none);
        let r = s
            .resolver_upsert("local", "internalresolver", "{}", "")
            .await
            .unwrap();
        let u = InternalUserRow {
            username: "alice".into(),
            ..Default::default()
        };
        s.iuser_create(r, &u).await.unwrap();
        // A token of another type is no SMS token.
        let mut hotp = new_token("OATH1");
        hotp.tokentype = "hotp".into();
        let h = s.token_insert(&hotp, 0).await.unwrap();
        s.token_count_auth(h, true, "now").await.unwrap();
        let p = s.setup_progress(true).await.unwrap();
        assert!(p.internal_users && !p.sms_tokens && !p.sms_logins, "{p:?}");
        let id = s.token_insert(&new_token("PISM1"), 0).await.unwrap();
        // A failed attempt is no login.
        s.token_count_auth(id, false, "").await.unwrap();
        let p = s.setup_progress(true).await.unwrap();
        assert!(p.sms_tokens && !p.sms_logins, "{p:?}");
        s.token_count_auth(id, true, "now").await.unwrap();
        let p = s.setup_progress(true).await.unwrap();
        assert!(p.sms_logins, "{p:?}");
        // Not asked: not looked for.
        assert!(!s.setup_progress(false).await.unwrap().sms_logins);
    })
    .await;
}

/// PostgreSQL's hot connections (`db::Hot`, with a timeout): a transaction dropped before its
/// commit is rolled back at once, not at the connection's next use, so its row locks do not
/// hold up another connection (the race of `cluster::send_limits_are_shared…` once ran into
/// the lock timeout that way); its change is gone and its connection is used again.
#[tokio::test]
async fn a_hot_transaction_dropped_before_its_commit_gives_its_locks_back_at_once() {
    let Some(s) = hot_store(Duration::from_millis(300)).await else {
        return;
    };
    assert!(
        s.hot.is_some(),
        "PostgreSQL with a timeout has hot connections"
    );
    let bump = "UPDATE settings_version SET version = version + 1 WHERE id = 1";
    let before = s.settings_version().await.unwrap();
    for round in 0..3 {
        let mut tx = s.begin().await.unwrap();
        assert_eq!(tx.exec(bump, &[]).await.unwrap(), 1);
        drop(tx);
        // Another connection (the main pool's) takes the same row lock within the 300 ms
        // lock timeout: the dropped transaction has let go of it.
        sqlx::query(bump)
            .execute(&s.pool)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the row is still locked: {e}"));
    }
    assert_eq!(
        s.settings_version().await.unwrap(),
        before + 3,
        "only the main pool's changes count"
    );
    // The rolled-back connections went back (a round's `begin` may have opened another one
    // while the last round's rollback was still running).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let idle = s.hot.as_ref().map(|h| h.idle_count()).unwrap_or_default();
    assert!((1..=4).contains(&idle), "{idle} idle hot connections");
}

/// PostgreSQL's hot connections: when the server ends their sessions (a restart, an admin's
/// `pg_terminate_backend`), the statement that meets the first one fails and the others are
/// tested before use, so every later statement succeeds. A `FATAL` error is not an answer
/// that leaves the connection usable.
#[tokio::test]
async fn hot_connections_whose_sessions_the_server_ended_cost_at_most_one_statement() {
    let Some(s) = hot_store(Duration::from_millis(1000)).await else {
        return;
    };
    // Several hot connections, idle.
    let reads = futures_util_join(&s).await;
    assert!(reads.iter().all(Result::is_ok), "{reads:?}");
    let idle = s.hot.as_ref().map(|h| h.idle_count()).unwrap_or_default();
    assert!(idle >= 2, "{idle} idle hot connections");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&s.pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = s.settings_version().await;
    for i in 0..6 {
        s.settings_version().await.unwrap_or_else(|e| {
            panic!("statement {i} after the first ({first:?}) failed too: {e}")
        });
    }
}

/// A store on a fresh PostgreSQL database with `timeout` (so with hot connections); None
/// without the test server.
async fn hot_store(timeout: Duration) -> Option<Store> {
    let admin = std::env::var(testdb::ENV).ok()?;
    let url = testdb::fresh_postgres(&admin).await.unwrap();
    let options = ConnectOptions {
        timeout: Some(timeout),
        ..ConnectOptions::default()
    };
    Some(Store::connect_with(&url, &options).await.unwrap())
}

/// Four version reads at once, so the hot path opens several connections.
async fn futures_util_join(s: &Store) -> Vec<Result<i64>> {
    let (a, b, c, d) = tokio::join!(
        s.settings_version(),
        s.settings_version(),
        s.settings_version(),
        s.settings_version()
    );
    vec![a, b, c, d]
}
