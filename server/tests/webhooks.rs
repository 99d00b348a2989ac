//! Webhooks, end to end: a real Basalt server, real Postgres, and a real HTTP
//! receiver on 127.0.0.1 in the test. A tenant's audit events reach its
//! webhook signed with its secret (verified here independently), filtered by
//! pattern, never another tenant's; a failing receiver is retried and then
//! marked failed; redelivery, the test ping and secret rotation work; the
//! secret is never read back nor stored in plain text; internal targets are
//! refused (at write and at delivery); another tenant's webhook is 404.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use basalt_client::*;
use common::TestApp;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

fn opts() -> RequestOptions {
    RequestOptions::default()
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// A local HTTP receiver that records every request and answers `status`.
#[derive(Clone)]
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                g.lock().unwrap().push(Received { path: uri.path().to_string(), headers, body });
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, got, status }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.got.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

/// A server whose webhooks may call the receiver on 127.0.0.1, polling and
/// retrying fast.
async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.webhooks.allow_private_targets = true;
        c.webhooks.poll_interval = Duration::from_millis(100);
        c.webhooks.retry_base = Duration::from_millis(100);
        c.webhooks.max_attempts = 3;
        c.webhooks.timeout = Duration::from_secs(2);
    })
    .await
}

/// Polls `f` until it answers `Some`, for at most 20 s.
async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn create_webhook(c: &Client, url: &str, events: &[&str]) -> CreatedWebhook {
    let body =
        CreateWebhook { url: url.into(), events: events.iter().map(|e| e.to_string()).collect(), ..Default::default() };
    c.send(Method::POST, "/v1/webhooks", Some(&body), &opts()).await.expect("create webhook")
}

async fn create_group(c: &Client, name: &str) {
    let body = CreateGroup { name: name.into(), ..Default::default() };
    c.send::<_, Group>(Method::POST, "/v1/groups", Some(&body), &opts()).await.expect("create group");
}

async fn deliveries(c: &Client, webhook: Uuid) -> Vec<WebhookDelivery> {
    let page: Page<WebhookDelivery> = c
        .send::<(), _>(Method::GET, &format!("/v1/webhooks/{webhook}/deliveries"), None, &opts())
        .await
        .expect("deliveries");
    page.items
}

/// Checks `Basalt-Signature` of `r` under `secret`, independently of the server's code.
fn signed_with(r: &Received, secret: &str) -> bool {
    let sig = r.header("basalt-signature");
    let Some((t, v1)) = sig.strip_prefix("t=").and_then(|rest| rest.split_once(",v1=")) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let fresh = t.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
    fresh && hex::encode(mac.finalize().into_bytes()) == v1
}

fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String, Option<String>) {
    match r.expect_err("must be refused") {
        ClientError::Api { status, body } => {
            let field = body.error.details.get("field").and_then(|f| f.as_str()).map(String::from);
            (status, body.error.code, field)
        }
        e => panic!("unexpected error {e:?}"),
    }
}

#[tokio::test]
async fn a_tenants_events_are_delivered_signed_filtered_and_never_another_tenants() {
    let app = app().await;
    let rx = Receiver::start().await;
    let (alpha, _, a) = app.tenant_with_user("alpha").await;
    let (beta, _, b) = app.tenant_with_user("beta").await;
    let hook = create_webhook(&a, &rx.url("/alpha"), &["group.*"]).await;
    assert!(hook.secret.starts_with("whsec_") && hook.secret.len() > 40, "a strong secret, shown once");
    assert_eq!(hook.webhook.tenant_id, alpha.id);
    let beta_hook = create_webhook(&b, &rx.url("/beta"), &["*"]).await;

    create_group(&a, "ops").await;
    // Not matching alpha's pattern: never delivered to it.
    a.create_user(
        &CreateUser { username: "carol".into(), password: Some(common::PASSWORD.into()), ..Default::default() },
        &opts(),
    )
    .await
    .unwrap();
    create_group(&b, "beta-ops").await;

    let got = wait_for("alpha's group.create", || async { rx.at("/alpha").into_iter().next() }).await;
    assert_eq!(got.header("basalt-webhook-id"), hook.webhook.id.to_string());
    assert_eq!(got.header("basalt-event"), "group.create");
    assert!(got.header("content-type").starts_with("application/json"));
    assert!(signed_with(&got, &hook.secret), "the signature verifies with the webhook's secret");
    assert!(!signed_with(&got, &beta_hook.secret));
    let body = got.json();
    assert_eq!(body["type"], "group.create");
    assert_eq!(body["tenant_id"], json!(alpha.id));
    assert_eq!(body["event"]["action"], "group.create");
    assert_eq!(body["event"]["details"]["after"]["name"], "ops");

    // Beta's receiver hears beta's events (its own group among them) ...
    wait_for("beta's group.create", || async {
        rx.at("/beta").into_iter().find(|r| r.json()["event"]["details"]["after"]["name"] == "beta-ops")
    })
    .await;
    // ... and a few passes later alpha's still holds only its one matching event.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alpha_got = rx.at("/alpha");
    assert_eq!(alpha_got.len(), 1, "pattern filtering: user.create is not group.*");
    assert!(rx.at("/beta").iter().all(|r| r.json()["tenant_id"] == json!(beta.id)));
    assert!(alpha_got.iter().all(|r| r.json()["tenant_id"] == json!(alpha.id)), "never another tenant's events");

    let list = deliveries(&a, hook.webhook.id).await;
    assert_eq!(list.len(), 1);
    let d = &list[0];
    assert_eq!((d.status.as_str(), d.attempts, d.last_status_code), ("succeeded", 1, Some(200)));
    assert_eq!(d.event_type, "group.create");
    assert_eq!(got.header("basalt-delivery-id"), d.id.to_string());
    app.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_then_marked_failed_and_can_be_redelivered() {
    let app = app().await;
    let rx = Receiver::start().await;
    rx.answer(500);
    let (_, _, a) = app.tenant_with_user("alpha").await;
    let hook = create_webhook(&a, &rx.url("/hook"), &["group.create"]).await;
    create_group(&a, "ops").await;

    let failed = wait_for("the delivery to fail", || async {
        deliveries(&a, hook.webhook.id).await.into_iter().find(|d| d.status == "failed")
    })
    .await;
    assert_eq!(failed.attempts, 3, "bounded attempts");
    assert_eq!(failed.last_status_code, Some(500));
    assert_eq!(failed.next_attempt_at, None);
    let tries = rx.at("/hook");
    assert_eq!(tries.len(), 3, "one request per attempt");
    assert!(tries.iter().all(|r| r.header("basalt-delivery-id") == failed.id.to_string()));
    assert!(tries.iter().all(|r| signed_with(r, &hook.secret)));

    rx.answer(204);
    let path = format!("/v1/webhooks/{}/deliveries/{}/redeliver", hook.webhook.id, failed.id);
    let again: WebhookDelivery = a.send::<(), _>(Method::POST, &path, None, &opts()).await.expect("redeliver");
    assert_eq!((again.redelivery_of, again.status.as_str()), (Some(failed.id), "pending"));
    assert_eq!(again.event_id, failed.event_id);
    let done = wait_for("the redelivery to succeed", || async {
        deliveries(&a, hook.webhook.id).await.into_iter().find(|d| d.id == again.id && d.status == "succeeded")
    })
    .await;
    assert_eq!((done.attempts, done.last_status_code), (1, Some(204)));
    let last = rx.at("/hook").pop().unwrap();
    assert_eq!(last.header("basalt-delivery-id"), again.id.to_string());
    assert_eq!(last.body, tries[0].body, "the same event body");
    // Newest first.
    let list = deliveries(&a, hook.webhook.id).await;
    assert_eq!(list.iter().map(|d| d.id).collect::<Vec<_>>(), vec![again.id, failed.id]);
    app.stop().await;
}

#[tokio::test]
async fn the_test_ping_answers_its_outcome_and_rotation_changes_the_key() {
    let app = app().await;
    let rx = Receiver::start().await;
    let (_, _, a) = app.tenant_with_user("alpha").await;
    let hook = create_webhook(&a, &rx.url("/ping"), &["vm.*"]).await;
    let test_path = format!("/v1/webhooks/{}/test", hook.webhook.id);

    let result: WebhookTestResult = a.send::<(), _>(Method::POST, &test_path, None, &opts()).await.unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!((result.status_code, result.error.as_deref()), (Some(200), None));
    assert!(result.duration_ms >= 0);
    let ping = rx.at("/ping").pop().expect("the ping arrived");
    assert_eq!(ping.header("basalt-event"), "ping");
    assert_eq!(ping.header("basalt-delivery-id"), result.delivery_id.to_string());
    assert_eq!(ping.json()["type"], "ping");
    assert!(signed_with(&ping, &hook.secret));

    let rotate = format!("/v1/webhooks/{}/rotate-secret", hook.webhook.id);
    let rotated: CreatedWebhook = a.send::<(), _>(Method::POST, &rotate, None, &opts()).await.unwrap();
    assert_ne!(rotated.secret, hook.secret);
    assert_eq!(rotated.webhook.version, hook.webhook.version + 1);
    a.send::<(), WebhookTestResult>(Method::POST, &test_path, None, &opts()).await.unwrap();
    let ping = rx.at("/ping").pop().unwrap();
    assert!(signed_with(&ping, &rotated.secret), "signed with the new secret");
    assert!(!signed_with(&ping, &hook.secret), "the old secret no longer signs");

    // A receiver that answers 500: the outcome says so (a ping is not retried).
    rx.answer(500);
    let failed: WebhookTestResult = a.send::<(), _>(Method::POST, &test_path, None, &opts()).await.unwrap();
    assert_eq!((failed.success, failed.status_code), (false, Some(500)));
    let list = deliveries(&a, hook.webhook.id).await;
    assert_eq!(list.len(), 3);
    assert_eq!((list[0].status.as_str(), list[0].attempts), ("failed", 1));

    // Nobody listening: an error, with its duration.
    let gone = a
        .send::<_, Webhook>(
            Method::PATCH,
            &format!("/v1/webhooks/{}", hook.webhook.id),
            Some(&UpdateWebhook { url: Some("http://127.0.0.1:9/".into()), ..Default::default() }),
            &RequestOptions { if_match: Some(rotated.webhook.version), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(gone.url, "http://127.0.0.1:9/");
    let refused: WebhookTestResult = a.send::<(), _>(Method::POST, &test_path, None, &opts()).await.unwrap();
    assert!(!refused.success && refused.status_code.is_none());
    assert!(refused.error.as_deref().unwrap_or("").contains("connect"), "{refused:?}");

    // https is spoken (TLS): a plain-HTTP receiver fails the handshake, and hears no request.
    let before = rx.at("/tls").len();
    let tls = UpdateWebhook { url: Some(rx.url("/tls").replace("http://", "https://")), ..Default::default() };
    let opts_v = RequestOptions { if_match: Some(gone.version), ..Default::default() };
    a.send::<_, Webhook>(Method::PATCH, &format!("/v1/webhooks/{}", hook.webhook.id), Some(&tls), &opts_v)
        .await
        .unwrap();
    let handshake: WebhookTestResult = a.send::<(), _>(Method::POST, &test_path, None, &opts()).await.unwrap();
    assert!(!handshake.success && handshake.status_code.is_none(), "{handshake:?}");
    assert_eq!(rx.at("/tls").len(), before);
    app.stop().await;
}

#[tokio::test]
async fn the_secret_is_never_read_back_nor_stored_in_plain_text() {
    let app = app().await;
    let rx = Receiver::start().await;
    let (_, _, a) = app.tenant_with_user("alpha").await;
    let hook = create_webhook(&a, &rx.url("/s"), &["*"]).await;
    let rotate = format!("/v1/webhooks/{}/rotate-secret", hook.webhook.id);
    let rotated: CreatedWebhook = a.send::<(), _>(Method::POST, &rotate, None, &opts()).await.unwrap();

    let http = app.http();
    let token = a.token().unwrap();
    for path in [format!("/v1/webhooks/{}", hook.webhook.id), "/v1/webhooks".into()] {
        let text = http.get(format!("{}{path}", app.endpoint)).bearer_auth(token).send().await.unwrap();
        let text = text.text().await.unwrap();
        assert!(text.contains(&hook.webhook.id.to_string()), "{path}: {text}");
        for secret in [&hook.secret, &rotated.secret] {
            assert!(!text.contains(secret.as_str()), "{path} answers the secret");
        }
        assert!(!text.contains("secret"), "{path} names no secret field: {text}");
    }

    let mut conn = app.db.admin().await;
    let (sealed,): (Vec<u8>,) = sqlx::query_as("SELECT secret_sealed FROM webhooks WHERE id = $1")
        .bind(hook.webhook.id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    for secret in [&hook.secret, &rotated.secret] {
        let hex_part = secret.trim_start_matches("whsec_");
        assert!(!sealed.windows(hex_part.len()).any(|w| w == hex_part.as_bytes()), "the column holds no plain text");
        // Nowhere in the database: not in the audit trail, not in an idempotency replay.
        let tables: Vec<(String,)> =
            sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        for (t,) in tables {
            let (n,): (i64,) =
                sqlx::query_as(&format!("SELECT count(*) FROM {t} x WHERE x::text LIKE '%' || $1 || '%'"))
                    .bind(hex_part)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            assert_eq!(n, 0, "table {t} holds a webhook secret");
        }
    }
    assert!(!sealed.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn internal_targets_are_refused_at_write_and_at_delivery() {
    // The default configuration: private targets are not allowed.
    let app = TestApp::spawn_with(|c| c.webhooks.poll_interval = Duration::from_millis(100)).await;
    let rx = Receiver::start().await;
    let (_, _, a) = app.tenant_with_user("alpha").await;
    let body = |url: &str| CreateWebhook { url: url.into(), events: vec!["*".into()], ..Default::default() };
    for url in [rx.url("/x"), "http://10.0.0.1/x".into(), "http://169.254.169.254/latest/meta-data/".into()] {
        let r = a.send::<_, CreatedWebhook>(Method::POST, "/v1/webhooks", Some(&body(&url)), &opts()).await;
        let (status, code, field) = refusal(r);
        assert_eq!((status, code.as_str(), field.as_deref()), (422, "url_not_allowed", Some("url")), "{url}");
    }
    let mut conn = app.db.admin().await;
    let count = |sql: &'static str| sqlx::query_as::<_, (i64,)>(sql);
    assert_eq!(count("SELECT count(*) FROM webhooks").fetch_one(&mut conn).await.unwrap().0, 0, "nothing written");

    // A name that resolved to a public address at write and to an internal one
    // now (DNS changed; simulated by rewriting the row): the call is refused.
    // (Only group events: nothing is sent before the row is rewritten.)
    let public =
        CreateWebhook { url: "http://93.184.216.34/x".into(), events: vec!["group.*".into()], ..Default::default() };
    let hook: CreatedWebhook =
        a.send(Method::POST, "/v1/webhooks", Some(&public), &opts()).await.expect("a public address is accepted");
    sqlx::query("UPDATE webhooks SET url = $2 WHERE id = $1")
        .bind(hook.webhook.id)
        .bind(rx.url("/x"))
        .execute(&mut conn)
        .await
        .unwrap();
    let test_path = format!("/v1/webhooks/{}/test", hook.webhook.id);
    let result: WebhookTestResult = a.send::<(), _>(Method::POST, &test_path, None, &opts()).await.unwrap();
    assert!(!result.success && result.status_code.is_none());
    assert!(result.error.as_deref().unwrap_or("").contains("internal address"), "{result:?}");
    create_group(&a, "ops").await;
    let d = wait_for("the event's delivery attempt", || async {
        deliveries(&a, hook.webhook.id).await.into_iter().find(|d| d.event_type == "group.create" && d.attempts > 0)
    })
    .await;
    assert!(d.last_error.as_deref().unwrap_or("").contains("internal address"), "{d:?}");
    assert!(rx.at("/x").is_empty(), "the receiver on 127.0.0.1 was never called");
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_webhook_is_404_and_updates_check_versions_and_roles() {
    let app = app().await;
    let rx = Receiver::start().await;
    let (_, _, a) = app.tenant_with_user("alpha").await;
    let (_, _, b) = app.tenant_with_user("beta").await;
    let hook = create_webhook(&a, &rx.url("/a"), &["vm.*"]).await;
    a.send::<(), WebhookTestResult>(Method::POST, &format!("/v1/webhooks/{}/test", hook.webhook.id), None, &opts())
        .await
        .unwrap();
    let delivery = deliveries(&a, hook.webhook.id).await[0].id;
    let id = hook.webhook.id;
    let patch = json!({ "enabled": false });
    let attempts: Vec<(Method, String, Option<&Value>)> = vec![
        (Method::GET, format!("/v1/webhooks/{id}"), None),
        (Method::PATCH, format!("/v1/webhooks/{id}"), Some(&patch)),
        (Method::DELETE, format!("/v1/webhooks/{id}"), None),
        (Method::POST, format!("/v1/webhooks/{id}/rotate-secret"), None),
        (Method::POST, format!("/v1/webhooks/{id}/test"), None),
        (Method::GET, format!("/v1/webhooks/{id}/deliveries"), None),
        (Method::POST, format!("/v1/webhooks/{id}/deliveries/{delivery}/redeliver"), None),
    ];
    for (method, path, body) in attempts {
        let r = b.send::<Value, Value>(method.clone(), &path, body, &opts()).await;
        assert_eq!(refusal(r).0, 404, "{method} {path}");
    }
    let listed: Page<Webhook> = b.send::<(), _>(Method::GET, "/v1/webhooks", None, &opts()).await.unwrap();
    assert!(listed.items.is_empty());
    // A delivery of another webhook of the same tenant is 404 through this one.
    let other = create_webhook(&a, &rx.url("/b"), &["*"]).await;
    let r = a
        .send::<(), Value>(
            Method::POST,
            &format!("/v1/webhooks/{}/deliveries/{delivery}/redeliver", other.webhook.id),
            None,
            &opts(),
        )
        .await;
    assert_eq!(refusal(r).0, 404);
    assert_eq!(rx.at("/a").len(), 1, "only alpha's ping was sent");

    // If-Match: a stale version is a conflict; the current one updates.
    let stale = RequestOptions { if_match: Some(hook.webhook.version + 5), ..Default::default() };
    let upd = UpdateWebhook { events: Some(vec!["user.*".into()]), ..Default::default() };
    let r = a.send::<_, Webhook>(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(&upd), &stale).await;
    assert_eq!(refusal(r).0, 409);
    let fresh = RequestOptions { if_match: Some(hook.webhook.version), ..Default::default() };
    let updated: Webhook = a.send(Method::PATCH, &format!("/v1/webhooks/{id}"), Some(&upd), &fresh).await.unwrap();
    assert_eq!((updated.events.clone(), updated.version), (vec!["user.*".to_string()], hook.webhook.version + 1));

    // A tenant operator reads webhooks but cannot make or fire them.
    let operator = a
        .create_user(
            &CreateUser { username: "op".into(), password: Some(common::PASSWORD.into()), ..Default::default() },
            &opts(),
        )
        .await
        .unwrap();
    app.bind(&a, &operator, "tenant-operator").await;
    let op = app.login("op", Some("alpha")).await;
    let seen: Page<Webhook> = op.send::<(), _>(Method::GET, "/v1/webhooks", None, &opts()).await.unwrap();
    assert_eq!(seen.items.len(), 2);
    let r = op.send::<(), Value>(Method::POST, &format!("/v1/webhooks/{id}/test"), None, &opts()).await;
    assert_eq!(refusal(r).0, 403);
    let body = CreateWebhook { url: rx.url("/op"), events: vec!["*".into()], ..Default::default() };
    let r = op.send::<_, Value>(Method::POST, "/v1/webhooks", Some(&body), &opts()).await;
    assert_eq!(refusal(r).0, 403);

    a.send::<(), Value>(Method::DELETE, &format!("/v1/webhooks/{id}"), None, &opts()).await.unwrap();
    let r = a.send::<(), Value>(Method::GET, &format!("/v1/webhooks/{id}/deliveries"), None, &opts()).await;
    assert_eq!(refusal(r).0, 404, "deleted with its deliveries");
    app.stop().await;
}

/// The tenants the delivery job will visit.
async fn noted(conn: &mut sqlx::PgConnection) -> Vec<Uuid> {
    let rows: Vec<(Uuid,)> = sqlx::query_as("SELECT tenant_id FROM job_tenants WHERE job = 'webhooks' ORDER BY 1")
        .fetch_all(conn)
        .await
        .unwrap();
    rows.into_iter().map(|(t,)| t).collect()
}

/// The job visits only tenants with an enabled webhook (`job_tenants`, kept
/// by a trigger): a tenant joins with its first enabled webhook, stays while one
/// is enabled, and leaves when none is; another tenant is never noted.
#[tokio::test]
async fn the_job_visits_only_tenants_with_an_enabled_webhook() {
    let app = app().await;
    let rx = Receiver::start().await;
    let (alpha, _, a) = app.tenant_with_user("alpha").await;
    let (_, _, _b) = app.tenant_with_user("beta").await;
    let mut conn = app.db.admin().await;
    assert!(noted(&mut conn).await.is_empty(), "no webhook, nobody to visit");
    let one = create_webhook(&a, &rx.url("/1"), &["*"]).await.webhook;
    let two = create_webhook(&a, &rx.url("/2"), &["*"]).await.webhook;
    assert_eq!(noted(&mut conn).await, vec![alpha.id], "alpha only");
    let disable = json!({ "enabled": false });
    for hook in [&one, &two] {
        let path = format!("/v1/webhooks/{}", hook.id);
        a.send::<Value, Webhook>(Method::PATCH, &path, Some(&disable), &opts()).await.expect("disable");
    }
    assert!(noted(&mut conn).await.is_empty(), "no enabled webhook left");
    let enable = json!({ "enabled": true });
    let path = format!("/v1/webhooks/{}", one.id);
    a.send::<Value, Webhook>(Method::PATCH, &path, Some(&enable), &opts()).await.expect("enable");
    assert_eq!(noted(&mut conn).await, vec![alpha.id]);
    a.send::<(), Value>(Method::DELETE, &path, None, &opts()).await.ok();
    assert!(noted(&mut conn).await.is_empty(), "its enabled webhook deleted");
    app.stop().await;
}

#[tokio::test]
async fn one_replica_delivers_at_a_time() {
    use basalt_server::webhooks::worker;
    let app = app().await;
    let rx = Receiver::start().await;
    let (_, _, a) = app.tenant_with_user("alpha").await;
    create_webhook(&a, &rx.url("/lock"), &["group.*"]).await;
    // Another replica's pass holds the lock: this one does nothing, delivers nothing.
    let mut other = app.db.admin().await;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(worker::WEBHOOK_LOCK).execute(&mut other).await.unwrap();
    create_group(&a, "ops").await;
    assert_eq!(worker::pass(&app.state).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rx.at("/lock").is_empty(), "no pass ran while another replica held the lock");
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(worker::WEBHOOK_LOCK).execute(&mut other).await.unwrap();
    wait_for("the delivery once the lock is free", || async { rx.at("/lock").into_iter().next() }).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.at("/lock").len(), 1, "delivered once");
    app.stop().await;
}
