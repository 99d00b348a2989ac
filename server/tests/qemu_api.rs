//! The API on real QEMU (TCG): a tenant boots the tiny guest from a public
//! kernel-boot template on a two-host cluster (`qemu:///system` and the second
//! libvirtd of `scripts/second-libvirtd`), reads its serial console through the
//! websocket with a console ticket, live-migrates it with `POST /v1/vms/{id}/migrate`
//! and reads the console again on the other host: the guest's tick counter kept
//! counting (no reboot), and the placement moved.
//! The second test revokes an open console session (its socket closes) and
//! evacuates the guest's host (`POST .../evacuate`): the guest moves live.

mod common;
mod guest;

use std::time::{Duration, Instant};

use basalt_client::{
    Cluster, ConsoleTicket, CreateCluster, CreateQuota, CreateTemplate, CreateVm, Host, Operation, OperationStatus,
    Quota, RequestOptions, Template, Vm, VmState,
};
use common::TestApp;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

fn no_opts() -> RequestOptions {
    RequestOptions::default()
}

/// Reads the console websocket until a `tick N` line with N ≥ `at_least`;
/// answers N. Panics with what it saw on timeout.
async fn tick_over_websocket(endpoint: &str, ticket: &ConsoleTicket, at_least: u64) -> u64 {
    let url = format!("{}{}", endpoint.replace("http://", "ws://"), ticket.url);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("console websocket");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = String::new();
    while Instant::now() < deadline {
        let next = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        match next {
            Ok(Some(Ok(Message::Binary(bytes)))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Some(Ok(Message::Text(text)))) => seen.push_str(&text),
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(e))) => panic!("console websocket failed: {e}; saw {seen:?}"),
            Ok(None) => panic!("console websocket closed; saw {seen:?}"),
        }
        if let Some(n) = seen.lines().rev().filter_map(guest::parse_tick).find(|n| *n >= at_least) {
            return n;
        }
    }
    panic!("no tick ≥ {at_least} on the console within 120 s; saw {seen:?}");
}

async fn wait(client: &basalt_client::Client, op: &Operation) -> Operation {
    let op = client.wait_operation(op.id, Duration::from_secs(180)).await.expect("poll");
    assert_eq!(op.status, OperationStatus::Succeeded, "{} failed: {:?}", op.kind, op.error);
    op
}

/// A cluster of two real hosts, the tiny guest as a public template, a tenant
/// with a quota there, and the guest running: the cluster, the tenant's client
/// and the VM's id.
async fn ticker(app: &TestApp) -> (Cluster, basalt_client::Client, uuid::Uuid) {
    let kernel = guest::tiny_guest();
    let second = guest::second_host();
    let hosts = vec![guest::FIRST.to_string(), second.to_string()];
    let cluster: Cluster = app
        .admin
        .post_at("/v1/clusters", &CreateCluster { name: "tcg".into(), hosts, ..Default::default() }, &no_opts())
        .await
        .expect("a cluster of two real hosts");
    let template = CreateTemplate {
        name: "tiny-guest".into(),
        vcpus: 1,
        memory_mib: 256,
        kernel: Some(kernel.kernel.to_string_lossy().into_owned()),
        initrd: Some(kernel.initrd.to_string_lossy().into_owned()),
        cmdline: Some(kernel.cmdline.clone()),
        ..Default::default()
    };
    let template: Template = app.admin.post_at("/v1/templates", &template, &no_opts()).await.unwrap();
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    let quota = CreateQuota {
        tenant_id: tenant.id,
        cluster_id: cluster.id,
        vcpus: 4,
        memory_mib: 2048,
        max_vms: 2,
        disk_gib: None,
    };
    let _: Quota = app.admin.post_at("/v1/quotas", &quota, &no_opts()).await.unwrap();

    let create =
        CreateVm { name: "ticker".into(), cluster_id: cluster.id, template_id: template.id, ..Default::default() };
    let op: Operation = client.post_at("/v1/vms", &create, &no_opts()).await.unwrap();
    let id = wait(&client, &op).await.target_id;
    (cluster, client, id)
}

#[tokio::test]
async fn a_tenant_reads_its_guest_console_and_it_keeps_ticking_across_a_live_migration() {
    let app = TestApp::spawn().await;
    let (cluster, client, id) = ticker(&app).await;
    let ticket: ConsoleTicket =
        client.post_at(&format!("/v1/vms/{id}/console"), &serde_json::json!({}), &no_opts()).await.unwrap();
    let before = tick_over_websocket(&app.endpoint, &ticket, 2).await;

    let on = |hosts: &[Host]| hosts.iter().find(|h| h.vcpus_allocated > 0).map(|h| h.uri.clone());
    let hosts: Vec<Host> = app.admin.get_at(&format!("/v1/clusters/{}/hosts", cluster.id)).await.unwrap();
    let from = on(&hosts).expect("placed");
    let started = Instant::now();
    let op: Operation =
        client.post_at(&format!("/v1/vms/{id}/migrate"), &serde_json::json!({}), &no_opts()).await.unwrap();
    wait(&client, &op).await;
    println!("live migration through the API: {:.2} s", started.elapsed().as_secs_f64());
    let hosts: Vec<Host> = app.admin.get_at(&format!("/v1/clusters/{}/hosts", cluster.id)).await.unwrap();
    let to = on(&hosts).expect("placed");
    assert_ne!(from, to, "the placement did not move");
    let vm: Vm = client.get_at(&format!("/v1/vms/{id}")).await.unwrap();
    assert_eq!(vm.state, VmState::Running);

    let ticket: ConsoleTicket =
        client.post_at(&format!("/v1/vms/{id}/console"), &serde_json::json!({}), &no_opts()).await.unwrap();
    let after = tick_over_websocket(&app.endpoint, &ticket, before + 1).await;
    assert!(after > before, "the guest restarted: tick {after} after {before}");

    let op = client.delete_at(&format!("/v1/vms/{id}")).await.unwrap().expect("an operation");
    wait(&client, &op).await;
    app.stop().await;
}

/// Provider operations on real QEMU: an open console session closes itself soon
/// after its revocation (the socket checks its ticket row), and evacuating the
/// VM's host moves it live to the other host, its guest ticking on.
#[tokio::test]
async fn a_revoked_console_closes_and_an_evacuation_moves_the_guest_live() {
    let app = TestApp::spawn().await;
    let (cluster, client, id) = ticker(&app).await;

    // An open session, revoked: its socket ends within a few checks.
    let ticket: ConsoleTicket =
        client.post_at(&format!("/v1/vms/{id}/console"), &serde_json::json!({}), &no_opts()).await.unwrap();
    let url = format!("{}{}", app.endpoint.replace("http://", "ws://"), ticket.url);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("console websocket");
    let sessions: Vec<basalt_client::ConsoleSession> =
        client.get_at(&format!("/v1/vms/{id}/console-sessions")).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].state, "open");
    client.delete_at(&format!("/v1/vms/{id}/console-sessions/{}", sessions[0].id)).await.expect("revoke");
    let revoked = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the revoked session's socket is still open after 15 s");
    println!("revoked console closed after {:.2} s", revoked.elapsed().as_secs_f64());

    // Evacuate the guest's host: it moves live and keeps ticking.
    let ticket: ConsoleTicket =
        client.post_at(&format!("/v1/vms/{id}/console"), &serde_json::json!({}), &no_opts()).await.unwrap();
    let before = tick_over_websocket(&app.endpoint, &ticket, 2).await;
    let hosts: Vec<Host> = app.admin.get_at(&format!("/v1/clusters/{}/hosts", cluster.id)).await.unwrap();
    let from = hosts.iter().find(|h| h.vms > 0).expect("placed").clone();
    let op: Operation = app
        .admin
        .post_at(&format!("/v1/clusters/{}/hosts/{}/evacuate", cluster.id, from.id), &serde_json::json!({}), &no_opts())
        .await
        .unwrap();
    let op = app.admin.wait_operation(op.id, Duration::from_secs(180)).await.unwrap();
    assert_eq!(op.status, OperationStatus::Succeeded, "evacuation failed: {:?}", op.error);
    let hosts: Vec<Host> = app.admin.get_at(&format!("/v1/clusters/{}/hosts", cluster.id)).await.unwrap();
    let drained = hosts.iter().find(|h| h.id == from.id).unwrap();
    assert_eq!((drained.state.as_str(), drained.vms), ("draining", 0));
    let vm: Vm = client.get_at(&format!("/v1/vms/{id}")).await.unwrap();
    assert_eq!(vm.state, VmState::Running);
    let ticket: ConsoleTicket =
        client.post_at(&format!("/v1/vms/{id}/console"), &serde_json::json!({}), &no_opts()).await.unwrap();
    let after = tick_over_websocket(&app.endpoint, &ticket, before + 1).await;
    assert!(after > before, "the guest restarted: tick {after} after {before}");

    let op = client.delete_at(&format!("/v1/vms/{id}")).await.unwrap().expect("an operation");
    wait(&client, &op).await;
    app.stop().await;
}
