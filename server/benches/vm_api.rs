//! VM creation through the API, end to end: HTTP, the choke point, the quota row
//! lock, the operation, placement and libvirt (its in-process test driver, so
//! the figures are Basalt's own cost, not a hypervisor's).
//!
//! * **create → running**: one client, `POST /v1/vms` then polling the operation
//!   until it succeeds; median and p90 of 50.
//! * **concurrent creates until the quota**: 32 clients fire creates at a tenant
//!   whose quota allows 200 VMs, until every client has been refused with
//!   `quota_exceeded`: accepted creates per second, the number accepted (must be
//!   exactly 200), and the time until the last of them runs.
//!
//! Run with `cargo bench -p basalt-server --bench vm_api` (Postgres from
//! `BASALT_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use basalt_client::{
    Client, Cluster, CreateCluster, CreateQuota, CreateTemplate, CreateTenant, CreateVm, Operation, OperationStatus,
    Quota, RequestOptions, Template,
};
use basalt_server::app::{self, AppState};
use basalt_server::config::Config;
use uuid::Uuid;

const SEQUENTIAL: usize = 50;
const CLIENTS: usize = 32;
const QUOTA_VMS: i32 = 200;

fn opts() -> RequestOptions {
    RequestOptions::default()
}

/// A test-driver host big enough that the quota, not the host, is the limit.
fn big_host(dir: &std::path::Path) -> Result<String> {
    let node = dir.join("node.xml");
    std::fs::write(
        &node,
        "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>64</cores><threads>1</threads>\
         <active>64</active><mhz>2000</mhz></cpu><memory>1073741824</memory></node>",
    )?;
    Ok(format!("test://{}", node.display()))
}

async fn create(
    client: &Client,
    name: String,
    cluster: Uuid,
    template: Uuid,
) -> Result<Operation, basalt_client::ClientError> {
    client
        .post_at(
            "/v1/vms",
            &CreateVm { name, cluster_id: cluster, template_id: template, ..Default::default() },
            &opts(),
        )
        .await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<()> {
    let db = basalt_server::testing::TestDb::new().await.context("test database")?;
    let dir = std::env::temp_dir().join(format!("basalt-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config::with_database(db.url.clone(), dir.clone())?;
    config.listen = "127.0.0.1:0".parse()?;
    let listener = app::bind(config.listen).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let state = AppState::start(config).await?;
    let token = basalt_server::dev::ensure_admin(&state.db, &dir).await?;
    let server = tokio::spawn(app::serve(state.clone(), listener, std::future::pending()));
    let admin = Client::new(&endpoint, Some(token));

    let cluster: Cluster = admin
        .post_at(
            "/v1/clusters",
            &CreateCluster { name: "bench".into(), hosts: vec![big_host(&dir)?], ..Default::default() },
            &opts(),
        )
        .await?;
    let template: Template = admin
        .post_at(
            "/v1/templates",
            &CreateTemplate { name: "tiny".into(), vcpus: 1, memory_mib: 64, ..Default::default() },
            &opts(),
        )
        .await?;
    let mut results = Vec::new();
    for (round, vms) in [("sequential", SEQUENTIAL as i32 + 1), ("concurrent", QUOTA_VMS)] {
        let tenant =
            admin.create_tenant(&CreateTenant { name: format!("t-{round}"), ..Default::default() }, &opts()).await?;
        let quota = CreateQuota {
            tenant_id: tenant.id,
            cluster_id: cluster.id,
            vcpus: 10_000,
            memory_mib: 1 << 30,
            max_vms: vms,
            disk_gib: None,
        };
        let _: Quota = admin.post_at("/v1/quotas", &quota, &opts()).await?;
        let inside = admin.with_token(admin.switch_tenant(&tenant.name).await?.token);
        results.push((round, inside));
    }

    // create → running, one at a time.
    let (_, client) = &results[0];
    let mut latencies = Vec::new();
    for i in 0..SEQUENTIAL {
        let start = Instant::now();
        let op = create(client, format!("seq-{i}"), cluster.id, template.id).await?;
        let op = client.wait_operation(op.id, Duration::from_secs(30)).await?;
        anyhow::ensure!(op.status == OperationStatus::Succeeded, "create failed: {:?}", op.error);
        latencies.push(start.elapsed());
    }
    latencies.sort();

    // Concurrent creates until the quota refuses.
    let (_, client) = &results[1];
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        let (cluster, template) = (cluster.id, template.id);
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for i in 0.. {
                match create(&client, format!("c{c}-{i}"), cluster, template).await {
                    Ok(op) => accepted.push(op.id),
                    Err(e) if e.code() == Some("quota_exceeded") => break,
                    Err(e) => return Err(anyhow::anyhow!("create: {e}")),
                }
            }
            Ok(accepted)
        }));
    }
    let mut ops = Vec::new();
    for t in tasks {
        ops.extend(t.await??);
    }
    let accepted_in = start.elapsed();
    for op in &ops {
        let op = client.wait_operation(*op, Duration::from_secs(60)).await?;
        anyhow::ensure!(op.status == OperationStatus::Succeeded, "create failed: {:?}", op.error);
    }
    let all_running = start.elapsed();

    println!(
        "VM creation through the API (libvirt test driver, {} cores)",
        std::thread::available_parallelism()?.get()
    );
    println!("| figure | value |\n|---|---|");
    println!("| create → running, p50 (n={SEQUENTIAL}) | {:.1} ms |", percentile(&latencies, 0.5).as_secs_f64() * 1e3);
    println!("| create → running, p90 | {:.1} ms |", percentile(&latencies, 0.9).as_secs_f64() * 1e3);
    println!("| concurrent creates accepted ({CLIENTS} clients, quota {QUOTA_VMS}) | {} |", ops.len());
    println!("| accepted creates per second | {:.0} |", ops.len() as f64 / accepted_in.as_secs_f64());
    println!("| time until all {} run | {:.2} s |", ops.len(), all_running.as_secs_f64());
    anyhow::ensure!(ops.len() == QUOTA_VMS as usize, "the quota admitted {} creates, not {QUOTA_VMS}", ops.len());

    server.abort();
    state.db.pool().close().await;
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
