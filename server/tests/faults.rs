//! Fault injection with real processes.
//!
//! * Postgres: a private cluster (the one `basalt-server dev` runs, on its own
//!   Unix socket) is stopped and started again in the middle of a load of
//!   creates. Every request either succeeds or fails cleanly with 503 (never a
//!   500, never a hang); after recovery every acknowledged object exists; and a
//!   client that retries its failed creates with the same `Idempotency-Key` ends
//!   with every object exactly once, whether or not the first attempt's commit
//!   reached the disk before the connection died.
//! * libvirt: the daemon of a cluster's only host (the second libvirtd of
//!   `scripts/second-libvirtd`, real QEMU) goes away. A VM operation then fails
//!   with a clear error (the host is unreachable; its address is never shown to a
//!   tenant), the VM is not marked running, a create leaves
//!   nothing behind (no VM, no quota used), and once the daemon is back creates
//!   work again.

mod common;
mod guest;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_server::app::{self, AppState};
use basalt_server::config::Config;
use basalt_server::embedded_pg::EmbeddedPostgres;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use uuid::Uuid;

const WORKERS: usize = 4;
const LOAD: Duration = Duration::from_secs(6);

/// One create: the tenant name doubles as its idempotency key.
async fn create(http: &reqwest::Client, endpoint: &str, token: &str, name: &str) -> u16 {
    http.post(format!("{endpoint}/v1/tenants"))
        .bearer_auth(token)
        .header("idempotency-key", name)
        .json(&json!({ "name": name }))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn names_in_api(http: &reqwest::Client, endpoint: &str, token: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{endpoint}/v1/tenants?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http.get(url).bearer_auth(token).send().await.expect("list").json().await.expect("json");
        for t in page["items"].as_array().expect("items") {
            names.push(t["name"].as_str().expect("name").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return names,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_during_creates_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("basalt-faults-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pg_dir = dir.clone();
    let pg =
        tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&pg_dir)).await.expect("join").expect("postgres");
    let mut config = Config::with_database(pg.admin_url(), dir.join("state")).expect("config");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.db_max_connections = 4;
    let listener = app::bind(config.listen).await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let state = AppState::start(config).await.expect("start");
    let token = basalt_server::dev::ensure_admin(&state.db, &dir.join("state")).await.expect("admin");
    let serving = state.clone();
    let server = tokio::spawn(async move {
        let _ = app::serve(serving, listener, std::future::pending()).await;
    });
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");

    // The load: WORKERS clients creating tenants as fast as they are answered.
    let outcomes: Arc<Mutex<BTreeMap<String, u16>>> = Arc::default();
    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (http, endpoint, token, outcomes) = (http.clone(), endpoint.clone(), token.clone(), outcomes.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while start.elapsed() < LOAD {
                    let name = format!("t{w}-{i}");
                    let status = create(&http, &endpoint, &token, &name).await;
                    outcomes.lock().await.insert(name, status);
                    i += 1;
                    if status != 201 {
                        // As a client would: back off a little on 503.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect();

    // The fault: Postgres goes away for two seconds in the middle of it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pg = Arc::new(pg);
    let stopping = pg.clone();
    tokio::task::spawn_blocking(move || stopping.stop()).await.expect("join").expect("stop postgres");
    let down_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restart_dir = dir.clone();
    let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&restart_dir))
        .await
        .expect("join")
        .expect("restart");
    let down_for = down_at.elapsed();
    for w in workers {
        w.await.expect("worker");
    }

    let outcomes = outcomes.lock().await.clone();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for s in outcomes.values() {
        *by_status.entry(*s).or_default() += 1;
    }
    println!("{} creates, Postgres down for {down_for:?}: by status {by_status:?}", outcomes.len());
    assert!(
        outcomes.values().all(|s| *s == 201 || *s == 503),
        "every create succeeded or failed cleanly with 503: {by_status:?}"
    );
    assert!(by_status.get(&503).copied().unwrap_or(0) > 0, "the fault was felt (else this test proves nothing)");
    assert!(by_status.get(&201).copied().unwrap_or(0) > 0, "creates succeeded around it");

    // After recovery: everything acknowledged exists.
    let listed: BTreeSet<String> = names_in_api(&http, &endpoint, &token).await.into_iter().collect();
    let acknowledged: BTreeSet<&String> = outcomes.iter().filter(|(_, s)| **s == 201).map(|(n, _)| n).collect();
    let lost: Vec<&&String> = acknowledged.iter().filter(|n| !listed.contains(n.as_str())).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // The client retries what failed, with the same keys: each ends up once.
    for (name, _) in outcomes.iter().filter(|(_, s)| **s != 201) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = create(&http, &endpoint, &token, name).await;
            if status == 201 {
                break;
            }
            assert!(status == 503 && Instant::now() < deadline, "retrying {name}: {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let listed = names_in_api(&http, &endpoint, &token).await;
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no tenant twice");
    let requested: BTreeSet<&String> = outcomes.keys().collect();
    assert_eq!(unique, requested, "exactly the requested tenants exist");

    server.abort();
    state.db.pool().close().await;
    let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn finish(client: &basalt_client::Client, op: &basalt_client::Operation) -> basalt_client::Operation {
    let op = client.wait_operation(op.id, Duration::from_secs(180)).await.expect("poll");
    assert!(op.status.is_done(), "{} still {:?}", op.kind, op.status);
    op
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_libvirt_daemon_fails_vm_work_clearly_and_leaves_nothing_half_made() {
    use basalt_client::{
        Cluster, CreateCluster, CreateQuota, CreateTemplate, CreateVm, Operation, OperationStatus, Quota,
        RequestOptions, Template, Vm, VmState,
    };
    let kernel = guest::tiny_guest();
    let host = guest::second_host();
    let app = common::TestApp::spawn().await;
    let opts = RequestOptions::default();
    let cluster: Cluster = app
        .admin
        .post_at(
            "/v1/clusters",
            &CreateCluster { name: "lonely".into(), hosts: vec![host.into()], ..Default::default() },
            &opts,
        )
        .await
        .expect("a cluster of the second host");
    let template = CreateTemplate {
        name: "tiny-guest".into(),
        vcpus: 1,
        memory_mib: 256,
        kernel: Some(kernel.kernel.to_string_lossy().into_owned()),
        initrd: Some(kernel.initrd.to_string_lossy().into_owned()),
        cmdline: Some(kernel.cmdline.clone()),
        ..Default::default()
    };
    let template: Template = app.admin.post_at("/v1/templates", &template, &opts).await.unwrap();
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    let quota = CreateQuota { tenant_id: tenant.id, cluster_id: cluster.id, vcpus: 4, memory_mib: 2048, max_vms: 3 };
    let quota: Quota = app.admin.post_at("/v1/quotas", &quota, &opts).await.unwrap();
    let create = |name: &str| CreateVm {
        name: name.into(),
        cluster_id: cluster.id,
        template_id: template.id,
        power_state: Some(basalt_client::PowerState::Stopped),
        ..Default::default()
    };
    let op: Operation = client.post_at("/v1/vms", &create("before"), &opts).await.unwrap();
    let op = finish(&client, &op).await;
    assert_eq!(op.status, OperationStatus::Succeeded, "{:?}", op.error);
    let id = op.target_id;

    // The host's libvirt daemon goes away.
    guest::script("second-libvirtd", &["stop"]);

    let op: Operation = client.post_at(&format!("/v1/vms/{id}/start"), &json!({}), &opts).await.unwrap();
    let op = finish(&client, &op).await;
    assert_eq!(op.status, OperationStatus::Failed, "a start without a daemon");
    let message = op.error.as_ref().and_then(|e| e["message"].as_str()).unwrap_or_default().to_string();
    // Clear, and white-label: a tenant learns that the host is unreachable, never its URI.
    assert!(message.contains("unreachable"), "the error says what is wrong: {message:?}");
    assert!(!message.contains(host) && !message.contains("127.0.0.1"), "no host address for tenants: {message:?}");
    let vm: Vm = client.get_at(&format!("/v1/vms/{id}")).await.unwrap();
    assert_ne!(vm.state, VmState::Running, "not marked running");

    let op: Operation = client.post_at("/v1/vms", &create("during"), &opts).await.unwrap();
    let op = finish(&client, &op).await;
    assert_eq!(op.status, OperationStatus::Failed, "a create without a daemon");
    let during = client.get_at::<Vm>(&format!("/v1/vms/{}", op.target_id)).await;
    assert_eq!(during.map_err(|e| e.status()).err(), Some(Some(404)), "no half-made VM");
    let used: Quota = app.admin.get_at(&format!("/v1/quotas/{}", quota.id)).await.unwrap();
    assert_eq!(used.vms_used, 1, "the failed create gave its quota back");

    // The daemon is back: creates work again.
    guest::second_host();
    let op: Operation = client.post_at("/v1/vms", &create("after"), &opts).await.unwrap();
    let op = finish(&client, &op).await;
    assert_eq!(op.status, OperationStatus::Succeeded, "{:?}", op.error);
    app.stop().await;
}
