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
    let quota = CreateQuota {
        tenant_id: tenant.id,
        cluster_id: cluster.id,
        vcpus: 4,
        memory_mib: 2048,
        max_vms: 3,
        disk_gib: None,
    };
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

/// `basalt-server serve` as a child process on `db`, killed when dropped.
struct ServerProcess(std::process::Child);

impl ServerProcess {
    fn start(db_url: &str, state_dir: &std::path::Path, port: u16) -> ServerProcess {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_basalt-server"))
            .args(["serve", "--database-url", db_url, "--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(state_dir)
            .env("BASALT_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start basalt-server");
        ServerProcess(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn until_up(http: &reqwest::Client, endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{endpoint}/readyz")).send().await.map(|r| r.status().is_success()).ok() != Some(true) {
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server is killed (SIGKILL) while VM creates on a real QEMU host are in
/// flight. On restart its reconciler finishes or undoes each one: every VM is
/// then running with its domain, or gone; no operation is left pending; the
/// quota counts exactly the VMs that exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_create_is_reconciled_on_restart() {
    use basalt_client::{Client, CreateCluster, CreateQuota, CreateTemplate, CreateVm, Operation, Page, Quota, Vm};
    let kernel = guest::tiny_guest();
    let db = basalt_server::testing::TestDb::new().await.expect("db");
    let dir = std::env::temp_dir().join(format!("basalt-kill-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_basalt-server"))
        .args(["create-admin", "--database-url", &db.url])
        .arg("--state-dir")
        .arg(&dir)
        .output()
        .expect("create-admin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf8").trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut server = ServerProcess::start(&db.url, &dir, port);
    until_up(&http, &endpoint).await;

    let admin = Client::new(&endpoint, Some(token));
    let opts = basalt_client::RequestOptions::default();
    let cluster: basalt_client::Cluster = admin
        .post_at(
            "/v1/clusters",
            &CreateCluster { name: "kvm".into(), hosts: vec![guest::FIRST.into()], ..Default::default() },
            &opts,
        )
        .await
        .expect("cluster");
    let template = CreateTemplate {
        name: "tiny-guest".into(),
        vcpus: 1,
        memory_mib: 256,
        kernel: Some(kernel.kernel.to_string_lossy().into_owned()),
        initrd: Some(kernel.initrd.to_string_lossy().into_owned()),
        cmdline: Some(kernel.cmdline.clone()),
        ..Default::default()
    };
    let template: basalt_client::Template = admin.post_at("/v1/templates", &template, &opts).await.expect("template");
    let tenant: basalt_client::Tenant =
        admin.post_at("/v1/tenants", &json!({ "name": "victim" }), &opts).await.expect("tenant");
    let quota = CreateQuota {
        tenant_id: tenant.id,
        cluster_id: cluster.id,
        vcpus: 8,
        memory_mib: 4096,
        max_vms: 8,
        disk_gib: None,
    };
    let quota: Quota = admin.post_at("/v1/quotas", &quota, &opts).await.expect("quota");
    let inside = admin.with_token(admin.switch_tenant("victim").await.expect("switch").token);

    // Four creates, and the server dies while they run.
    let mut ops = Vec::new();
    for i in 0..4 {
        let vm = CreateVm {
            name: format!("vm-{i}"),
            cluster_id: cluster.id,
            template_id: template.id,
            ..Default::default()
        };
        let op: Operation = inside.post_at("/v1/vms", &vm, &opts).await.expect("create accepted");
        ops.push(op);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let in_flight = {
        let mut conn = db.admin().await.expect("admin");
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM operations WHERE status IN ('pending', 'running')")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        n
    };
    println!("killed the server with {in_flight} of 4 creates in flight");

    // Restart on the same database: the startup pass settles every create.
    let mut server = ServerProcess::start(&db.url, &dir, port);
    until_up(&http, &endpoint).await;
    let inside = Client::new(&endpoint, inside.token().map(str::to_string));
    for op in &ops {
        let done = inside.wait_operation(op.id, Duration::from_secs(120)).await.expect("poll");
        assert!(done.status.is_done(), "operation {} left {:?} after the restart", op.id, done.status);
    }
    let vms: Page<Vm> = inside.get_at("/v1/vms").await.expect("vms");
    let hv = basalt_server::compute::libvirt::Libvirt::new();
    use basalt_server::compute::hypervisor::Hypervisor;
    for vm in &vms.items {
        assert_eq!(
            vm.state,
            basalt_client::VmState::Running,
            "{} is {:?}: finished or gone, nothing between",
            vm.name,
            vm.state
        );
        assert!(hv.power(guest::FIRST, vm.id).expect("libvirt").is_some(), "{} has its domain", vm.name);
    }
    let kept: Vec<Uuid> = vms.items.iter().map(|v| v.id).collect();
    for op in ops.iter().filter(|op| !kept.contains(&op.target_id)) {
        assert!(
            hv.power(guest::FIRST, op.target_id).expect("libvirt").is_none(),
            "an undone create left its domain behind"
        );
    }
    println!("after the restart: {} create(s) finished, {} undone", kept.len(), ops.len() - kept.len());
    let used: Quota = admin.get_at(&format!("/v1/quotas/{}", quota.id)).await.expect("quota");
    assert_eq!(used.vms_used as usize, vms.items.len(), "the quota counts exactly the VMs that exist");
    for vm in &vms.items {
        let op = inside.delete_at(&format!("/v1/vms/{}", vm.id)).await.expect("delete").expect("operation");
        inside.wait_operation(op.id, Duration::from_secs(120)).await.expect("poll");
    }
    server.kill();
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}
