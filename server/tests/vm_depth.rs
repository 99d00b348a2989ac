//! VM depth through the API, on libvirt's test driver and a real Postgres: a
//! VM's name, description and labels (PATCH, label filter), deletion
//! protection, live metrics from the hypervisor, rebuild and clone as
//! operations, hard reset, a snapshot's description, and placement groups whose
//! `spread` policy puts members on distinct hosts of a two-host cluster.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use basalt_client::{
    Client, ClientError, Cluster, CreateCluster, CreatePlacementGroup, CreateQuota, CreateRoleBinding, CreateSnapshot,
    CreateTemplate, CreateUser, CreateVmRequest, Host, Operation, OperationStatus, Page, PlacementGroup, PowerState,
    Quota, RequestOptions, Snapshot, Template, Tenant, Vm, VmMetrics, VmState,
};
use common::TestApp;
use serde_json::json;
use uuid::Uuid;

const HOST: &str = "test:///default";
const WAIT: Duration = Duration::from_secs(20);

fn no_opts() -> RequestOptions {
    RequestOptions::default()
}

fn if_match(version: i64) -> RequestOptions {
    RequestOptions { if_match: Some(version), ..Default::default() }
}

struct World {
    app: TestApp,
    cluster: Cluster,
    tenant: Tenant,
    client: Client,
    template: Template,
}

async fn world_on(hosts: &[&str], max_vms: i32) -> World {
    let app = TestApp::spawn().await;
    let body = CreateCluster {
        name: "west".into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        alias: Some("west-alias".into()),
        ..Default::default()
    };
    let cluster: Cluster = app.admin.post_at("/v1/clusters", &body, &no_opts()).await.expect("cluster");
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    quota(&app, &tenant, &cluster, max_vms).await;
    let body = CreateTemplate { name: "tiny".into(), vcpus: 1, memory_mib: 128, ..Default::default() };
    let template: Template = app.admin.post_at("/v1/templates", &body, &no_opts()).await.expect("template");
    World { app, cluster, tenant, client, template }
}

async fn world(max_vms: i32) -> World {
    world_on(&[HOST], max_vms).await
}

async fn quota(app: &TestApp, tenant: &Tenant, cluster: &Cluster, max_vms: i32) -> Quota {
    let body = CreateQuota {
        tenant_id: tenant.id,
        cluster_id: cluster.id,
        vcpus: 16,
        memory_mib: 8192,
        max_vms,
        disk_gib: None,
    };
    app.admin.post_at("/v1/quotas", &body, &no_opts()).await.expect("quota")
}

fn vm_body(name: &str, w: &World) -> CreateVmRequest {
    CreateVmRequest { name: name.into(), cluster_id: w.cluster.id, template_id: w.template.id, ..Default::default() }
}

async fn done(client: &Client, op: &Operation) -> Operation {
    let op = client.wait_operation(op.id, WAIT).await.expect("poll operation");
    assert!(op.status.is_done(), "operation {} still {:?}", op.kind, op.status);
    op
}

async fn succeeded(client: &Client, op: &Operation) -> Operation {
    let op = done(client, op).await;
    assert_eq!(op.status, OperationStatus::Succeeded, "{}: {:?}", op.kind, op.error);
    op
}

/// Creates a VM and waits for it: its id.
async fn make_vm(client: &Client, body: &CreateVmRequest) -> Uuid {
    let op: Operation = client.post_at("/v1/vms", body, &no_opts()).await.expect("create vm");
    succeeded(client, &op).await.target_id
}

async fn vm(client: &Client, id: Uuid) -> Vm {
    client.get_at(&format!("/v1/vms/{id}")).await.expect("get vm")
}

async fn post_op(client: &Client, path: &str, body: serde_json::Value) -> Result<Operation, ClientError> {
    client.post_at(path, &body, &no_opts()).await
}

fn code(e: &ClientError) -> (Option<u16>, Option<&str>) {
    (e.status(), e.code())
}

/// A base qcow2 image on "shared storage".
fn base_image(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    let made =
        std::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&path).arg("64M").status();
    assert!(made.unwrap().success(), "qemu-img create");
    path
}

fn qemu_info(disk: &Path) -> serde_json::Value {
    let out = std::process::Command::new("qemu-img").args(["info", "--output=json"]).arg(disk).output().unwrap();
    serde_json::from_slice(&out.stdout).expect("qemu-img info")
}

async fn image_template(app: &TestApp, name: &str, image: &Path, vcpus: i32, memory_mib: i64) -> Template {
    let body = CreateTemplate {
        name: name.into(),
        vcpus,
        memory_mib,
        disk_gib: Some(1),
        image: Some(image.to_string_lossy().into_owned()),
        ..Default::default()
    };
    app.admin.post_at("/v1/templates", &body, &no_opts()).await.expect("image template")
}

async fn audit_details(app: &TestApp, action: &str, target: Uuid) -> serde_json::Value {
    let mut conn = app.db.admin().await;
    let (details,): (serde_json::Value,) = sqlx::query_as(
        "SELECT details FROM audit_events WHERE action = $1 AND target_id = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(action)
    .bind(target)
    .fetch_one(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("no audit event {action}: {e}"));
    details
}

#[tokio::test]
async fn a_vm_is_renamed_described_and_labelled_with_if_match_and_an_audit_trail() {
    let w = world(4).await;
    let id = make_vm(&w.client, &vm_body("web-1", &w)).await;
    let other = make_vm(&w.client, &vm_body("db-1", &w)).await;
    let before = vm(&w.client, id).await;
    assert_eq!((before.description.as_str(), before.labels.len(), before.protected), ("", 0, false));

    let body =
        json!({ "name": "web-renamed", "description": "front end", "labels": { "env": "prod", "team.a": "web" } });
    let after: Vm = w.client.patch_at(&format!("/v1/vms/{id}"), &body, &if_match(before.version)).await.unwrap();
    assert_eq!((after.name.as_str(), after.description.as_str()), ("web-renamed", "front end"));
    assert_eq!(after.labels.get("env").map(String::as_str), Some("prod"));
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.state, VmState::Running, "a rename does not touch the running domain");

    // A stale version is refused and changes nothing.
    let e = w
        .client
        .patch_at::<_, Vm>(&format!("/v1/vms/{id}"), &json!({ "description": "x" }), &if_match(before.version))
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("version_mismatch")));
    assert_eq!(vm(&w.client, id).await.description, "front end");
    // Names stay unique in the tenant.
    let e = w
        .client
        .patch_at::<_, Vm>(&format!("/v1/vms/{other}"), &json!({ "name": "web-renamed" }), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
    // Labels replace the map; a label filter lists only the VMs carrying it.
    let _: Vm = w
        .client
        .patch_at(&format!("/v1/vms/{other}"), &json!({ "labels": { "env": "dev" } }), &no_opts())
        .await
        .unwrap();
    let prod: Page<Vm> = w.client.get_at("/v1/vms?label=env:prod").await.unwrap();
    assert_eq!(prod.items.iter().map(|v| v.id).collect::<Vec<_>>(), vec![id]);
    let none: Page<Vm> = w.client.get_at("/v1/vms?label=env:staging").await.unwrap();
    assert!(none.items.is_empty());
    let all: Page<Vm> = w.client.get_at("/v1/vms").await.unwrap();
    assert_eq!(all.items.len(), 2);
    let e = w.client.get_at::<Page<Vm>>("/v1/vms?label=nocolon").await.unwrap_err();
    assert_eq!(code(&e), (Some(400), Some("invalid_field")));

    // The audit event carries before and after.
    let details = audit_details(&w.app, "vm.update", id).await;
    assert_eq!(details["before"]["name"], "web-1");
    assert_eq!(details["after"]["name"], "web-renamed");
    assert_eq!(details["after"]["labels"]["env"], "prod");

    // Another tenant's VM is a 404, never a 403.
    let (_, _, globex) = w.app.tenant_with_user("globex").await;
    let e = globex
        .patch_at::<_, Vm>(&format!("/v1/vms/{id}"), &json!({ "description": "mine" }), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    w.app.stop().await;
}

#[tokio::test]
async fn label_rules_answer_400_naming_the_field() {
    let w = world(2).await;
    let id = make_vm(&w.client, &vm_body("web", &w)).await;
    let many: serde_json::Map<String, serde_json::Value> = (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (json!({ "labels": many }), "labels"),
        (json!({ "labels": { "Env": "x" } }), "labels"),
        (json!({ "labels": { "-env": "x" } }), "labels"),
        (json!({ "labels": { "e".repeat(64): "x" } }), "labels"),
        (json!({ "labels": { "env": "v".repeat(257) } }), "labels.env"),
        (json!({ "labels": { "env": 3 } }), "labels.env"),
        (json!({ "description": "d".repeat(1025) }), "description"),
        (json!({ "name": "bad name" }), "name"),
        (json!({ "protected": true }), "protected"),
    ];
    let before = vm(&w.client, id).await;
    for (body, field) in cases {
        let resp = w
            .app
            .http()
            .patch(format!("{}/v1/vms/{id}", w.app.endpoint))
            .bearer_auth(w.client.token().unwrap())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let err: serde_json::Value = resp.json().await.unwrap();
        let named = err["error"]["details"]["field"].as_str().unwrap_or_default().to_string();
        assert!(named == field || named.starts_with(field), "{body}: field {named:?}, want {field}");
    }
    // 32 labels of the longest key and value are fine.
    let most: serde_json::Map<String, serde_json::Value> =
        (0..32).map(|i| (format!("{i:02}{}", "k".repeat(61)), json!("v".repeat(256)))).collect();
    let ok: Vm = w.client.patch_at(&format!("/v1/vms/{id}"), &json!({ "labels": most }), &no_opts()).await.unwrap();
    assert_eq!(ok.labels.len(), 32);
    assert_eq!(ok.version, before.version + 1, "only the good request changed the VM");
    w.app.stop().await;
}

#[tokio::test]
async fn a_protected_vm_is_not_deleted_and_nothing_changes() {
    let w = world(2).await;
    let id = make_vm(&w.client, &vm_body("keep", &w)).await;
    let protected: Vm = w.client.post_at(&format!("/v1/vms/{id}/protect"), &json!({}), &no_opts()).await.unwrap();
    assert!(protected.protected);
    assert!(audit_details(&w.app, "vm.protect", id).await["after"]["protected"].as_bool().unwrap());

    let mut conn = w.app.db.admin().await;
    let before = common::db_fingerprint(&mut conn).await;
    let e = w.client.delete_at(&format!("/v1/vms/{id}")).await.unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("vm_protected")));
    let e = post_op(&w.client, &format!("/v1/vms/{id}/rebuild"), json!({})).await.unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("vm_protected")));
    assert_eq!(common::db_fingerprint(&mut conn).await, before, "a refused delete changed the database");
    assert_eq!(vm(&w.client, id).await.state, VmState::Running);

    // A viewer may not lift the protection.
    let inside = w.app.admin_in(&w.tenant).await;
    let body = CreateUser { username: "viewer".into(), password: Some(common::PASSWORD.into()), ..Default::default() };
    let viewer = inside.create_user(&body, &no_opts()).await.unwrap();
    w.app.bind(&inside, &viewer, "tenant-viewer").await;
    let viewer = w.app.login("viewer", Some("acme")).await;
    let e = viewer.post_at::<_, Vm>(&format!("/v1/vms/{id}/unprotect"), &json!({}), &no_opts()).await.unwrap_err();
    assert_eq!(code(&e), (Some(403), Some("permission_denied")));

    let open: Vm = w.client.post_at(&format!("/v1/vms/{id}/unprotect"), &json!({}), &no_opts()).await.unwrap();
    assert!(!open.protected);
    let op = w.client.delete_at(&format!("/v1/vms/{id}")).await.unwrap().expect("delete operation");
    succeeded(&w.client, &op).await;
    let e = w.client.get_at::<Vm>(&format!("/v1/vms/{id}")).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    w.app.stop().await;
}

#[tokio::test]
async fn metrics_are_the_hypervisors_live_figures() {
    let w = world(2).await;
    let id = make_vm(&w.client, &vm_body("busy", &w)).await;
    let m: VmMetrics = w.client.get_at(&format!("/v1/vms/{id}/metrics")).await.unwrap();
    assert_eq!((m.vm_id, m.state.as_str(), m.vcpus, m.max_memory_mib), (id, "running", 1, 128));
    assert!(m.memory_mib <= m.max_memory_mib);
    assert!(m.cpu_time_ns > 0, "a running domain has used CPU time: {m:?}");
    // Resized while stopped: the hypervisor reports the new size.
    let op = post_op(&w.client, &format!("/v1/vms/{id}/stop"), json!({ "force": true })).await.unwrap();
    succeeded(&w.client, &op).await;
    let op =
        post_op(&w.client, &format!("/v1/vms/{id}/resize"), json!({ "vcpus": 2, "memory_mib": 256 })).await.unwrap();
    succeeded(&w.client, &op).await;
    let m: VmMetrics = w.client.get_at(&format!("/v1/vms/{id}/metrics")).await.unwrap();
    assert_eq!((m.state.as_str(), m.vcpus, m.max_memory_mib), ("off", 2, 256));
    // Nobody else's.
    let (_, _, globex) = w.app.tenant_with_user("globex").await;
    let e = globex.get_at::<VmMetrics>(&format!("/v1/vms/{id}/metrics")).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = w.client.get_at::<VmMetrics>(&format!("/v1/vms/{}/metrics", Uuid::now_v7())).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    w.app.stop().await;
}

#[tokio::test]
async fn reset_hard_resets_a_running_vm_only() {
    let w = world(2).await;
    let id = make_vm(&w.client, &vm_body("stuck", &w)).await;
    let op = post_op(&w.client, &format!("/v1/vms/{id}/reset"), json!({})).await.unwrap();
    assert_eq!(op.kind, "vm.reset");
    succeeded(&w.client, &op).await;
    assert_eq!(vm(&w.client, id).await.state, VmState::Running);
    let op = post_op(&w.client, &format!("/v1/vms/{id}/stop"), json!({ "force": true })).await.unwrap();
    succeeded(&w.client, &op).await;
    let e = post_op(&w.client, &format!("/v1/vms/{id}/reset"), json!({})).await.unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("invalid_vm_state")));
    w.app.stop().await;
}

#[tokio::test]
async fn rebuild_reinstalls_the_disk_from_a_template_that_fits() {
    let w = world(4).await;
    let dir = std::env::temp_dir().join(format!("basalt-rebuild-{}", Uuid::new_v4().simple()));
    let (first, second) = (base_image(&dir, "first.qcow2"), base_image(&dir, "second.qcow2"));
    let t1 = image_template(&w.app, "first", &first, 1, 128).await;
    let t2 = image_template(&w.app, "second", &second, 1, 128).await;
    let big = image_template(&w.app, "big", &second, 4, 128).await;
    let id = make_vm(&w.client, &CreateVmRequest { template_id: t1.id, ..vm_body("app", &w) }).await;
    let disk = w.app.state.compute.storage_dir.join("vms").join(format!("{id}.qcow2"));
    assert_eq!(qemu_info(&disk)["backing-filename"].as_str(), Some(first.to_str().unwrap()));

    // A template larger than the VM does not fit; an unknown one is no reference.
    let e = post_op(&w.client, &format!("/v1/vms/{id}/rebuild"), json!({ "template_id": big.id })).await.unwrap_err();
    assert_eq!(code(&e), (Some(422), Some("template_too_large")));
    let e = post_op(&w.client, &format!("/v1/vms/{id}/rebuild"), json!({ "template_id": Uuid::now_v7() }))
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(422), Some("invalid_reference")));
    // Snapshots would describe the old disk.
    let snap: Snapshot = w
        .client
        .post_at(&format!("/v1/vms/{id}/snapshots"), &CreateSnapshot { name: "s1".into() }, &no_opts())
        .await
        .unwrap();
    let e = post_op(&w.client, &format!("/v1/vms/{id}/rebuild"), json!({})).await.unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("vm_has_snapshots")));
    w.client.delete_at(&format!("/v1/vms/{id}/snapshots/{}", snap.id)).await.unwrap();

    // Rebuilt from the other template: a new linked clone of its image, still running.
    let before = vm(&w.client, id).await;
    let op = post_op(&w.client, &format!("/v1/vms/{id}/rebuild"), json!({ "template_id": t2.id })).await.unwrap();
    assert_eq!((op.kind.as_str(), op.target_id), ("vm.rebuild", id));
    succeeded(&w.client, &op).await;
    let after = vm(&w.client, id).await;
    assert_eq!((after.template_id, after.state, after.name.as_str()), (t2.id, VmState::Running, "app"));
    assert!(after.version > before.version);
    assert_eq!(qemu_info(&disk)["backing-filename"].as_str(), Some(second.to_str().unwrap()), "not reinstalled");
    assert!(!disk.with_extension("rebuild.qcow2").exists(), "the staged disk was left behind");
    // Without a body: from its (new) template again; stopped VMs stay stopped.
    let op = post_op(&w.client, &format!("/v1/vms/{id}/stop"), json!({ "force": true })).await.unwrap();
    succeeded(&w.client, &op).await;
    let op = w.client.post_at::<_, Operation>(&format!("/v1/vms/{id}/rebuild"), &json!({}), &no_opts()).await.unwrap();
    succeeded(&w.client, &op).await;
    assert_eq!(vm(&w.client, id).await.state, VmState::Stopped);
    let _ = std::fs::remove_dir_all(&dir);
    w.app.stop().await;
}

#[tokio::test]
async fn clone_copies_the_disk_within_the_quota_and_once_per_key() {
    let w = world(3).await;
    let dir = std::env::temp_dir().join(format!("basalt-clone-{}", Uuid::new_v4().simple()));
    let base = base_image(&dir, "base.qcow2");
    let t = image_template(&w.app, "imaged", &base, 1, 128).await;
    let body = CreateVmRequest { template_id: t.id, power_state: Some(PowerState::Stopped), ..vm_body("golden", &w) };
    let source = make_vm(&w.client, &body).await;
    let _: Vm = w
        .client
        .patch_at(&format!("/v1/vms/{source}"), &json!({ "labels": { "role": "db" } }), &no_opts())
        .await
        .unwrap();

    // A key makes a retried clone answer the same operation.
    let keyed = RequestOptions { idempotency_key: Some("clone-1".into()), ..Default::default() };
    let op: Operation =
        w.client.post_at(&format!("/v1/vms/{source}/clone"), &json!({ "name": "copy" }), &keyed).await.unwrap();
    let again: Operation =
        w.client.post_at(&format!("/v1/vms/{source}/clone"), &json!({ "name": "copy" }), &keyed).await.unwrap();
    assert_eq!((op.kind.as_str(), again.id), ("vm.clone", op.id));
    succeeded(&w.client, &op).await;
    let copy = vm(&w.client, op.target_id).await;
    let original = vm(&w.client, source).await;
    assert_eq!((copy.cluster_id, copy.vcpus, copy.memory_mib, copy.template_id), (original.cluster_id, 1, 128, t.id));
    assert_eq!((copy.name.as_str(), copy.state), ("copy", VmState::Running));
    assert_eq!(copy.labels.get("role").map(String::as_str), Some("db"));
    let disk = w.app.state.compute.storage_dir.join("vms").join(format!("{}.qcow2", copy.id));
    let info = qemu_info(&disk);
    assert!(info["backing-filename"].is_null(), "the clone's disk depends on another: {info}");
    let quotas: Page<Quota> = w.client.get_at("/v1/quotas").await.unwrap();
    assert_eq!(quotas.items[0].vms_used, 2, "a clone counts like a create");

    // A running source with a disk is refused; the quota refuses the fourth VM.
    let e = post_op(&w.client, &format!("/v1/vms/{}/clone", copy.id), json!({ "name": "copy-2" })).await.unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("invalid_vm_state")));
    let e = post_op(&w.client, &format!("/v1/vms/{source}/clone"), json!({ "name": "copy" })).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "the name is taken");
    let op = post_op(&w.client, &format!("/v1/vms/{source}/clone"), json!({ "name": "copy-2" })).await.unwrap();
    succeeded(&w.client, &op).await;
    let e = post_op(&w.client, &format!("/v1/vms/{source}/clone"), json!({ "name": "copy-3" })).await.unwrap_err();
    assert_eq!(code(&e), (Some(422), Some("quota_exceeded")));
    let (_, _, globex) = w.app.tenant_with_user("globex").await;
    let e = post_op(&globex, &format!("/v1/vms/{source}/clone"), json!({ "name": "stolen" })).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let _ = std::fs::remove_dir_all(&dir);
    w.app.stop().await;
}

#[tokio::test]
async fn a_snapshot_description_is_updated_with_if_match() {
    let w = world(2).await;
    let id = make_vm(&w.client, &vm_body("web", &w)).await;
    let snap: Snapshot = w
        .client
        .post_at(&format!("/v1/vms/{id}/snapshots"), &CreateSnapshot { name: "s1".into() }, &no_opts())
        .await
        .unwrap();
    let path = format!("/v1/vms/{id}/snapshots/{}", snap.id);
    let after: Snapshot =
        w.client.patch_at(&path, &json!({ "description": "before upgrade" }), &if_match(snap.version)).await.unwrap();
    assert_eq!((after.description.as_str(), after.version), ("before upgrade", snap.version + 1));
    let e = w
        .client
        .patch_at::<_, Snapshot>(&path, &json!({ "description": "x" }), &if_match(snap.version))
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("version_mismatch")));
    let read: Snapshot = w.client.get_at(&path).await.unwrap();
    assert_eq!(read.description, "before upgrade");
    assert_eq!(audit_details(&w.app, "snapshot.update", snap.id).await["before"]["description"], "");
    let (_, _, globex) = w.app.tenant_with_user("globex").await;
    let e = globex.patch_at::<_, Snapshot>(&path, &json!({ "description": "x" }), &no_opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    w.app.stop().await;
}

/// Where each VM is placed (as the administrator sees it).
async fn host_of(app: &TestApp, vm: Uuid) -> Uuid {
    let mut conn = app.db.admin().await;
    let (host,): (Uuid,) =
        sqlx::query_as("SELECT host_id FROM placements WHERE vm_id = $1").bind(vm).fetch_one(&mut conn).await.unwrap();
    host
}

#[tokio::test]
async fn a_spread_group_puts_its_members_on_distinct_hosts_and_refuses_a_third() {
    let second = "test:///default?name=spread-second";
    let w = world_on(&[HOST, second], 8).await;
    let group: PlacementGroup = w
        .client
        .post_at(
            "/v1/placement-groups",
            &CreatePlacementGroup { cluster_id: w.cluster.id, name: "web".into(), ..Default::default() },
            &no_opts(),
        )
        .await
        .unwrap();
    assert_eq!((group.policy.as_str(), group.tenant_id), ("spread", w.tenant.id));
    let member = |name: &str| CreateVmRequest { placement_group_id: Some(group.id), ..vm_body(name, &w) };

    // Two members at once still land on different hosts.
    let (body_a, body_b, opts) = (member("web-a"), member("web-b"), no_opts());
    let (a, b) = tokio::join!(
        w.client.post_at::<_, Operation>("/v1/vms", &body_a, &opts),
        w.client.post_at::<_, Operation>("/v1/vms", &body_b, &opts)
    );
    let (a, b) = (succeeded(&w.client, &a.unwrap()).await.target_id, succeeded(&w.client, &b.unwrap()).await.target_id);
    assert_ne!(host_of(&w.app, a).await, host_of(&w.app, b).await, "two members of a spread group share a host");
    assert_eq!(vm(&w.client, a).await.placement_group_id, Some(group.id));

    // A third has no distinct host left: the operation fails, nothing remains.
    let op: Operation = w.client.post_at("/v1/vms", &member("web-c"), &no_opts()).await.unwrap();
    let op = done(&w.client, &op).await;
    assert_eq!(op.status, OperationStatus::Failed);
    assert_eq!(op.error.as_ref().and_then(|e| e["code"].as_str()), Some("placement_group_full"), "{:?}", op.error);
    assert_eq!(w.client.get_at::<Vm>(&format!("/v1/vms/{}", op.target_id)).await.unwrap_err().status(), Some(404));
    let quotas: Page<Quota> = w.client.get_at("/v1/quotas").await.unwrap();
    assert_eq!(quotas.items[0].vms_used, 2, "the refused member's quota came back");
    // A VM outside the group is placed as usual.
    make_vm(&w.client, &vm_body("loner", &w)).await;

    // Migration respects the group too: no destination is free of the other member.
    let dest = basalt_server::compute::placement::destination(&w.app.state.db, w.cluster.id, a, None, &[b]).await;
    let e = dest.expect_err("a member would move next to another");
    assert_eq!(e.code(), "placement_group_full");
    let hosts: Vec<Host> = w.app.admin.get_at(&format!("/v1/clusters/{}/hosts", w.cluster.id)).await.unwrap();
    assert_eq!(hosts.len(), 2);

    // A group with members is not deleted; emptied, it is.
    let path = format!("/v1/placement-groups/{}", group.id);
    let e = w.client.delete_at(&path).await.unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("placement_group_in_use")));
    for id in [a, b] {
        let op = w.client.delete_at(&format!("/v1/vms/{id}")).await.unwrap().unwrap();
        succeeded(&w.client, &op).await;
    }
    w.client.delete_at(&path).await.unwrap();
    assert_eq!(w.client.get_at::<PlacementGroup>(&path).await.unwrap_err().status(), Some(404));
    w.app.stop().await;
}

#[tokio::test]
async fn placement_groups_belong_to_one_tenant_and_one_cluster() {
    let w = world(4).await;
    let east: Cluster = w
        .app
        .admin
        .post_at(
            "/v1/clusters",
            &CreateCluster {
                name: "east".into(),
                hosts: vec!["test:///default?name=pg-east".into()],
                ..Default::default()
            },
            &no_opts(),
        )
        .await
        .unwrap();
    quota(&w.app, &w.tenant, &east, 4).await;
    let create = |cluster: Uuid, name: &str| CreatePlacementGroup {
        cluster_id: cluster,
        name: name.into(),
        ..Default::default()
    };
    let west_g: PlacementGroup =
        w.client.post_at("/v1/placement-groups", &create(w.cluster.id, "west-g"), &no_opts()).await.unwrap();
    let east_g: PlacementGroup =
        w.client.post_at("/v1/placement-groups", &create(east.id, "east-g"), &no_opts()).await.unwrap();

    // Update with If-Match, audited.
    let path = format!("/v1/placement-groups/{}", west_g.id);
    let changed: PlacementGroup = w
        .client
        .patch_at(&path, &json!({ "description": "front ends", "name": "front" }), &if_match(west_g.version))
        .await
        .unwrap();
    assert_eq!((changed.name.as_str(), changed.description.as_str()), ("front", "front ends"));
    let e = w
        .client
        .patch_at::<_, PlacementGroup>(&path, &json!({ "description": "x" }), &if_match(west_g.version))
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("version_mismatch")));
    assert_eq!(audit_details(&w.app, "placement_group.update", west_g.id).await["before"]["name"], "west-g");
    let e = w.client.patch_at::<_, PlacementGroup>(&path, &json!({ "policy": "pack" }), &no_opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "the policy is fixed");
    // Names are unique in the tenant.
    let e = w
        .client
        .post_at::<_, PlacementGroup>("/v1/placement-groups", &create(east.id, "east-g"), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));

    // A VM joins a group of its own cluster only.
    let e = w
        .client
        .post_at::<_, Operation>(
            "/v1/vms",
            &CreateVmRequest { placement_group_id: Some(east_g.id), ..vm_body("x", &w) },
            &no_opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(422), Some("invalid_reference")));
    assert!(e.to_string().contains("another cluster"), "{e}");

    // Another tenant: no group of acme exists for it, nor can it join one.
    let (globex_t, _, globex) = w.app.tenant_with_user("globex").await;
    quota(&w.app, &globex_t, &w.cluster, 2).await;
    assert_eq!(globex.get_at::<PlacementGroup>(&path).await.unwrap_err().status(), Some(404));
    assert_eq!(globex.delete_at(&path).await.unwrap_err().status(), Some(404));
    let listed: Page<PlacementGroup> = globex.get_at("/v1/placement-groups").await.unwrap();
    assert!(listed.items.is_empty());
    let theirs = CreateVmRequest {
        placement_group_id: Some(west_g.id),
        name: "intruder".into(),
        cluster_id: w.cluster.id,
        template_id: w.template.id,
        ..Default::default()
    };
    let e = globex.post_at::<_, Operation>("/v1/vms", &theirs, &no_opts()).await.unwrap_err();
    assert_eq!(code(&e), (Some(422), Some("invalid_reference")));
    // A cluster without the tenant's quota is no reference.
    let (_, _, initech) = w.app.tenant_with_user("initech").await;
    let e = initech
        .post_at::<_, PlacementGroup>("/v1/placement-groups", &create(w.cluster.id, "g"), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(422), Some("invalid_reference")));

    // A cluster delegate on west sees west's group only.
    let inside = w.app.admin_in(&w.tenant).await;
    let body = CreateUser { username: "ops".into(), password: Some(common::PASSWORD.into()), ..Default::default() };
    let ops_user = inside.create_user(&body, &no_opts()).await.unwrap();
    let cluster_admin = basalt_server::authz::builtin_role_named("cluster-admin").unwrap().id;
    let bind = CreateRoleBinding {
        role_id: cluster_admin,
        user_id: Some(ops_user.id),
        cluster_id: Some(w.cluster.id),
        ..Default::default()
    };
    w.client.create_role_binding(&bind, &no_opts()).await.unwrap();
    let ops = w.app.login("ops", Some("acme")).await;
    let seen: Page<PlacementGroup> = ops.get_at("/v1/placement-groups").await.unwrap();
    assert_eq!(seen.items.iter().map(|g| g.id).collect::<Vec<_>>(), vec![west_g.id]);
    let e = ops.get_at::<PlacementGroup>(&format!("/v1/placement-groups/{}", east_g.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = ops
        .post_at::<_, PlacementGroup>("/v1/placement-groups", &create(east.id, "sneaky"), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(422), "a delegate made a group on another cluster");
    let _: PlacementGroup =
        ops.post_at("/v1/placement-groups", &create(w.cluster.id, "ops-g"), &no_opts()).await.unwrap();
    w.app.stop().await;
}
