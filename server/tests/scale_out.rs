//! Scale-out on real parts: two `basalt-server` processes against one Postgres
//! through PgBouncer in transaction pooling mode (Debian's `pgbouncer`), both
//! reaching one libvirt (`test+unix:///default`: the daemon's test driver, which
//! every client of the daemon shares, as replicas share real hosts).
//!
//! Nothing that matters may live in one process's memory, so whatever one
//! replica starts the other can finish: a login, an idempotency key, an
//! operation, a console ticket, a revoked token, an HMAC nonce. The periodic
//! jobs (reconciler, purge) run under transaction-scoped advisory locks: while
//! someone else holds the lock neither replica runs them, and when a replica is
//! killed the other carries on alone. The isolation sweep through PgBouncer is in
//! `isolation_sql.rs` (`through_pgbouncer::*`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use basalt_server::federation::signing::{self, Caller, Keyring};
use basalt_server::testing::TestDb;
use common::procs::{eventually, free_port, write_atomically, Api, Pgbouncer, Proc, BIN};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// libvirtd's test driver: one shared world for every process that connects.
const SHARED_HOST: &str = "test+unix:///default";

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("basalt-{what}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// The provider admin's API token, made by the CLI on `db`.
fn create_admin(db: &TestDb, state: &Path) -> String {
    let out = Command::new(BIN)
        .args(["create-admin", "--database-url", &db.url, "--state-dir", state.to_str().expect("path")])
        .output()
        .expect("create-admin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_string()
}

/// One replica: migrations over the direct URL, requests through PgBouncer, jobs
/// every second. Replicas share the state directory (the JWT signing key).
fn replica(db: &TestDb, bouncer: &Pgbouncer, state: &Path, extra: &[&str], log: PathBuf) -> Proc {
    let port = free_port();
    let mut args: Vec<String> = [
        "serve",
        "--database-url",
        &db.url,
        "--app-database-url",
        &bouncer.app_url(&db.name),
        "--state-dir",
        state.to_str().expect("path"),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--db-max-connections",
        "4",
        "--reconcile-interval-seconds",
        "1",
        "--purge-interval-seconds",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::start(args, port, log)
}

async fn ready(api: &Api, p: &Proc) {
    let url = format!("{}/readyz", p.url());
    eventually(Duration::from_secs(60), "replica ready", || async {
        api.call(Method::GET, &url, "", None).await.0 == 200
    })
    .await;
}

/// A websocket upgrade: Ok, or the HTTP status it was refused with.
async fn websocket(url: String) -> Result<(), u16> {
    tokio_tungstenite::connect_async(url).await.map(drop).map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("websocket: {other}"),
    })
}

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh").args(["-c", SHARED_HOST]).args(args).output().expect("virsh");
    assert!(out.status.success(), "virsh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn domain_state(vm: &str) -> String {
    virsh(&["domstate", &format!("basalt-{vm}")])
}

/// Holds a job's advisory lock in a session of its own, as a third replica
/// busy with that job would.
async fn hold_lock(db: &TestDb, key: i64) -> PgConnection {
    let mut conn = PgConnection::connect(&db.url).await.expect("lock connection");
    sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut conn).await.expect("lock");
    conn
}

async fn tenant_rows(sql: &mut PgConnection, id: Uuid) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM tenants WHERE id = $1").bind(id).fetch_one(sql).await.expect("count");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_pgbouncer_share_all_state_and_take_over_jobs() {
    let dir = temp_dir("scale-out");
    let db = TestDb::new().await.expect("db");
    let bouncer = Pgbouncer::start();
    let state = dir.join("state");
    let admin = create_admin(&db, &state);
    let mut a = replica(&db, &bouncer, &state, &[], dir.join("a.log"));
    let api = Api { http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client") };
    ready(&api, &a).await;
    let b = replica(&db, &bouncer, &state, &[], dir.join("b.log"));
    ready(&api, &b).await;
    let (ua, ub) = (a.url(), b.url());

    // --- The estate, made on A -------------------------------------------------
    let cluster = api
        .ok(Method::POST, &format!("{ua}/v1/clusters"), &admin, Some(json!({"name": "c1", "hosts": [SHARED_HOST]})))
        .await;
    let template = api
        .ok(
            Method::POST,
            &format!("{ua}/v1/templates"),
            &admin,
            Some(json!({"name": "tiny", "vcpus": 1, "memory_mib": 64})),
        )
        .await;
    // Each tenant's admin logs in on B with a password set on A.
    let mut tokens = Vec::new();
    for name in ["acme", "beta"] {
        let tenant = api.ok(Method::POST, &format!("{ua}/v1/tenants"), &admin, Some(json!({"name": name}))).await;
        api.ok(
            Method::POST,
            &format!("{ua}/v1/quotas"),
            &admin,
            Some(json!({"tenant_id": tenant["id"], "cluster_id": cluster["id"], "vcpus": 4, "memory_mib": 1024, "max_vms": 4})),
        )
        .await;
        let token = api.tenant_admin(&ua, &ub, &admin, name).await;
        tokens.push((tenant, token));
    }
    let ((acme, acme_token), (_, beta_token)) = (tokens[0].clone(), tokens[1].clone());

    // --- An idempotency key claimed on A answers the same on B -------------------
    let create = json!({"name": "web", "cluster_id": cluster["id"], "template_id": template["id"]});
    let post_with_key = |base: String, body: Value| {
        let http = api.http.clone();
        let token = acme_token.clone();
        async move {
            let resp = http
                .post(format!("{base}/v1/vms"))
                .bearer_auth(token)
                .header("idempotency-key", "web-1")
                .json(&body)
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("json"))
        }
    };
    let (s1, op) = post_with_key(ua.clone(), create.clone()).await;
    let (s2, again) = post_with_key(ub.clone(), create.clone()).await;
    assert_eq!(s1, 202, "{op}");
    assert_eq!((s2, &again), (202, &op), "a retry on the other replica is answered from the stored result");
    let (s3, reused) =
        post_with_key(ub.clone(), json!({"name": "other", "cluster_id": cluster["id"], "template_id": template["id"]}))
            .await;
    assert_eq!((s3, reused["error"]["code"].as_str()), (422, Some("idempotency_key_reused")), "{reused}");

    // --- An operation started on A is polled to its end on B ---------------------
    let vm = op["target_id"].as_str().expect("vm id").to_string();
    let op_url = format!("{ub}/v1/operations/{}", op["id"].as_str().expect("op id"));
    eventually(Duration::from_secs(60), "the create finishes", || async {
        api.ok(Method::GET, &op_url, &acme_token, None).await["status"] == "succeeded"
    })
    .await;
    let vms = api.ok(Method::GET, &format!("{ua}/v1/vms"), &acme_token, None).await;
    assert_eq!(vms["items"].as_array().map(Vec::len), Some(1), "exactly one VM for two tries: {vms}");
    assert_eq!(domain_state(&vm), "running");

    // Another tenant learns nothing of it on either replica.
    for base in [&ua, &ub] {
        let (status, _, _) = api.call(Method::GET, &format!("{base}/v1/vms/{vm}"), &beta_token, None).await;
        assert_eq!(status, 404);
        let listed = api.ok(Method::GET, &format!("{base}/v1/vms"), &beta_token, None).await;
        assert_eq!(listed["items"], json!([]));
    }

    // --- A console ticket issued by A is spent on B, once ------------------------
    let ticket = api.ok(Method::POST, &format!("{ua}/v1/vms/{vm}/console"), &acme_token, Some(json!({}))).await;
    let path = ticket["url"].as_str().expect("url").to_string();
    // Past the ticket: the test driver has no serial console, which it says (422).
    assert_eq!(websocket(format!("{}{path}", ub.replace("http://", "ws://"))).await, Err(422));
    assert_eq!(websocket(format!("{}{path}", ua.replace("http://", "ws://"))).await, Err(401), "a spent ticket");

    // --- A token revoked on B stops working on A at once -------------------------
    let made = api.ok(Method::POST, &format!("{ua}/v1/tokens"), &acme_token, Some(json!({"name": "ci"}))).await;
    let secret = made["secret"].as_str().expect("secret").to_string();
    assert_eq!(api.call(Method::GET, &format!("{ua}/v1/me"), &secret, None).await.0, 200);
    let revoke = format!("{ub}/v1/tokens/{}", made["id"].as_str().expect("id"));
    assert_eq!(api.call(Method::DELETE, &revoke, &acme_token, None).await.0, 204);
    assert_eq!(api.call(Method::GET, &format!("{ua}/v1/me"), &secret, None).await.0, 401);

    // --- The reconciler: excluded by its lock, carried on by the survivor --------
    let lock = hold_lock(&db, basalt_server::compute::reconciler::RECONCILE_LOCK).await;
    virsh(&["destroy", &format!("basalt-{vm}")]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(domain_state(&vm), "shut off", "a replica reconciled while another held the lock");
    lock.close().await.expect("unlock");
    eventually(Duration::from_secs(30), "a replica restarts the VM once the lock is free", || async {
        domain_state(&vm) == "running"
    })
    .await;
    a.kill();
    virsh(&["destroy", &format!("basalt-{vm}")]);
    eventually(Duration::from_secs(30), "B alone restarts the VM", || async { domain_state(&vm) == "running" }).await;

    // --- The purge: excluded by its lock, then done by the survivor --------------
    let doomed = api.ok(Method::POST, &format!("{ub}/v1/tenants"), &admin, Some(json!({"name": "doomed"}))).await;
    let doomed_id: Uuid = doomed["id"].as_str().expect("id").parse().expect("uuid");
    assert_eq!(api.call(Method::DELETE, &format!("{ub}/v1/tenants/{doomed_id}"), &admin, None).await.0, 204);
    let mut sql = PgConnection::connect(&db.url).await.expect("admin connection");
    let lock = hold_lock(&db, basalt_server::jobs::PURGE_LOCK).await;
    sqlx::query("UPDATE tenants SET purge_after = now() - interval '1 second' WHERE id = $1")
        .bind(doomed_id)
        .execute(&mut sql)
        .await
        .expect("expire retention");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(tenant_rows(&mut sql, doomed_id).await, 1, "purged while another held the purge lock");
    lock.close().await.expect("unlock");
    let start = std::time::Instant::now();
    while tenant_rows(&mut sql, doomed_id).await != 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "B did not purge the tenant");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Clean the shared libvirt world: the VM goes, through the survivor.
    let gone = api.call(Method::DELETE, &format!("{ub}/v1/vms/{vm}"), &acme_token, None).await;
    assert_eq!(gone.0, 202, "{:?}", gone.1);
    let del_url = format!("{ub}/v1/operations/{}", gone.1["id"].as_str().expect("op"));
    eventually(Duration::from_secs(60), "the delete finishes", || async {
        api.ok(Method::GET, &del_url, &acme_token, None).await["status"] == "succeeded"
    })
    .await;
    let _ = acme;
    drop(b);
    drop(a);
    assert!(!bouncer.log_text().contains("FATAL"), "pgbouncer: {}", bouncer.log_text());
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two controllers behind PgBouncer: a signed service call accepted by one is a
/// replay at the other (nonces live in Postgres, not in a process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hmac_nonce_used_at_one_replica_is_a_replay_at_the_other() {
    let dir = temp_dir("scale-out-nonce");
    let db = TestDb::new().await.expect("db");
    let bouncer = Pgbouncer::start();
    let keys = dir.join("global.keys");
    write_atomically(&keys, &format!("k1 {}\n", hex::encode(rand::random::<[u8; 32]>())));
    let state = dir.join("state");
    let global = ["--mode", "global", "--federation-keys", keys.to_str().expect("path")];
    let api = Api { http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client") };
    let g1 = replica(&db, &bouncer, &state, &global, dir.join("g1.log"));
    ready(&api, &g1).await;
    let g2 = replica(&db, &bouncer, &state, &global, dir.join("g2.log"));
    ready(&api, &g2).await;

    // What region r1 is given, and a registration signed with it.
    let master = Keyring::parse(&std::fs::read_to_string(&keys).expect("keys"), "global.keys").expect("keyring");
    let r1 = master.derive_for_region("r1");
    let (key_id, key) = r1.signing();
    let body = serde_json::to_vec(&json!({"name": "r1", "endpoint": "http://127.0.0.1:9"})).expect("body");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("value"));
    let now = chrono::Utc::now().timestamp();
    let path = "/v1/federation/register";
    signing::sign(key_id, key, Caller::Region, "r1", &Method::POST, path, None, &mut headers, &body, now);
    let send = |base: String| {
        let (http, headers, body) = (api.http.clone(), headers.clone(), body.clone());
        async move {
            let resp = http.post(format!("{base}{path}")).headers(headers).body(body).send().await.expect("send");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
    };
    let (first, text) = send(g1.url()).await;
    assert_eq!(first, 200, "the signed registration is accepted: {text}");
    let (replayed, text) = send(g2.url()).await;
    assert_eq!(replayed, 401, "the same call at the other replica: {text}");
    assert!(text.contains("nonce"), "{text}");
    drop(g2);
    drop(g1);
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}
