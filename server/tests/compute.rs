//! Compute through the API, on real libvirt (its in-process test driver,
//! `test:///default`) and a real Postgres: clusters, quotas, templates, the VM
//! lifecycle as operations, snapshots, white-label views, cluster delegates,
//! quota races, and undo of a failed create.

mod common;

use std::time::Duration;

use basalt_client::{
    Client, Cluster, CreateCluster, CreateQuota, CreateSnapshot, CreateTemplate, CreateVm, Host, Operation,
    OperationStatus, Page, PowerState, Quota, RequestOptions, ResizeVm, Snapshot, Template, Tenant, Vm, VmState,
};
use common::TestApp;
use serde_json::json;
use uuid::Uuid;

const HOST: &str = "test:///default";
const WAIT: Duration = Duration::from_secs(20);

fn no_opts() -> RequestOptions {
    RequestOptions::default()
}

/// A cluster on the test driver (provider staff).
async fn cluster(app: &TestApp, name: &str) -> Cluster {
    let body = CreateCluster {
        name: name.into(),
        hosts: vec![HOST.into()],
        alias: Some(format!("{name}-alias")),
        ..Default::default()
    };
    app.admin.post_at("/v1/clusters", &body, &no_opts()).await.expect("create cluster")
}

async fn quota(app: &TestApp, tenant: &Tenant, cluster: &Cluster, vcpus: i32, memory_mib: i64, max_vms: i32) -> Quota {
    let body = CreateQuota { tenant_id: tenant.id, cluster_id: cluster.id, vcpus, memory_mib, max_vms, disk_gib: None };
    app.admin.post_at("/v1/quotas", &body, &no_opts()).await.expect("create quota")
}

/// A public template (no image: a diskless VM, which the test driver runs fine).
async fn template(app: &TestApp, name: &str) -> Template {
    let body = CreateTemplate { name: name.into(), vcpus: 1, memory_mib: 128, ..Default::default() };
    app.admin.post_at("/v1/templates", &body, &no_opts()).await.expect("create template")
}

async fn create_vm(
    client: &Client,
    name: &str,
    cluster: Uuid,
    template: Uuid,
) -> Result<Operation, basalt_client::ClientError> {
    let body = CreateVm { name: name.into(), cluster_id: cluster, template_id: template, ..Default::default() };
    client.post_at("/v1/vms", &body, &no_opts()).await
}

async fn done(client: &Client, op: &Operation) -> Operation {
    let op = client.wait_operation(op.id, WAIT).await.expect("poll operation");
    assert!(op.status.is_done(), "operation {} still {:?}", op.kind, op.status);
    op
}

async fn vm(client: &Client, id: Uuid) -> Vm {
    client.get_at(&format!("/v1/vms/{id}")).await.expect("get vm")
}

async fn action(client: &Client, vm: Uuid, what: &str) -> Operation {
    let op: Operation = client.post_at(&format!("/v1/vms/{vm}/{what}"), &json!({}), &no_opts()).await.expect(what);
    let op = done(client, &op).await;
    assert_eq!(op.status, OperationStatus::Succeeded, "{what}: {:?}", op.error);
    op
}

struct Setup {
    app: TestApp,
    cluster: Cluster,
    tenant: Tenant,
    client: Client,
    template: Template,
}

async fn setup(vcpus: i32, memory_mib: i64, max_vms: i32) -> Setup {
    let app = TestApp::spawn().await;
    let cluster = cluster(&app, "west").await;
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    quota(&app, &tenant, &cluster, vcpus, memory_mib, max_vms).await;
    let template = template(&app, "tiny").await;
    Setup { app, cluster, tenant, client, template }
}

#[tokio::test]
async fn a_vm_lives_its_whole_life_through_operations() {
    let s = setup(8, 4096, 4).await;
    let op = create_vm(&s.client, "web-1", s.cluster.id, s.template.id).await.expect("create");
    assert_eq!(op.kind, "vm.create");
    let id = op.target_id;
    assert_eq!(done(&s.client, &op).await.status, OperationStatus::Succeeded);
    let v = vm(&s.client, id).await;
    assert_eq!((v.state, v.power_state, v.vcpus, v.memory_mib), (VmState::Running, PowerState::Running, 1, 128));

    action(&s.client, id, "suspend").await;
    assert_eq!(vm(&s.client, id).await.state, VmState::Suspended);
    action(&s.client, id, "resume").await;
    action(&s.client, id, "reboot").await;
    assert_eq!(vm(&s.client, id).await.state, VmState::Running);
    action(&s.client, id, "stop").await;
    let v = vm(&s.client, id).await;
    assert_eq!((v.state, v.power_state), (VmState::Stopped, PowerState::Stopped));

    // Cold resize, counted against the quota.
    let op: Operation = s
        .client
        .post_at(
            &format!("/v1/vms/{id}/resize"),
            &ResizeVm { vcpus: Some(2), memory_mib: Some(256), restart: false },
            &no_opts(),
        )
        .await
        .expect("resize");
    assert_eq!(done(&s.client, &op).await.status, OperationStatus::Succeeded);
    let v = vm(&s.client, id).await;
    assert_eq!((v.vcpus, v.memory_mib, v.state), (2, 256, VmState::Stopped));
    let quotas: Page<Quota> = s.client.get_at("/v1/quotas").await.unwrap();
    assert_eq!((quotas.items[0].vcpus_used, quotas.items[0].memory_used_mib, quotas.items[0].vms_used), (2, 256, 1));

    action(&s.client, id, "start").await;
    // Starting a running VM is a clear conflict, not a hypervisor error.
    let e = s.client.post_at::<_, Operation>(&format!("/v1/vms/{id}/start"), &json!({}), &no_opts()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some("invalid_vm_state")));

    // Snapshots: take, list, revert, delete.
    let snap: Snapshot = s
        .client
        .post_at(&format!("/v1/vms/{id}/snapshots"), &CreateSnapshot { name: "before-upgrade".into() }, &no_opts())
        .await
        .expect("snapshot");
    let dup = s
        .client
        .post_at::<_, Snapshot>(
            &format!("/v1/vms/{id}/snapshots"),
            &CreateSnapshot { name: "before-upgrade".into() },
            &no_opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(dup.status(), Some(409));
    let list: Page<Snapshot> = s.client.get_at(&format!("/v1/vms/{id}/snapshots")).await.unwrap();
    assert_eq!(list.items.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["before-upgrade"]);
    let op: Operation = s
        .client
        .post_at(&format!("/v1/vms/{id}/snapshots/{}/revert", snap.id), &json!({}), &no_opts())
        .await
        .expect("revert");
    assert_eq!(done(&s.client, &op).await.status, OperationStatus::Succeeded, "{:?}", op.error);
    assert_eq!(vm(&s.client, id).await.state, VmState::Running);
    s.client.delete_at(&format!("/v1/vms/{id}/snapshots/{}", snap.id)).await.expect("delete snapshot");

    // Migration on the test driver fails, saying why, and the VM keeps running.
    let op: Operation = s.client.post_at(&format!("/v1/vms/{id}/migrate"), &json!({}), &no_opts()).await.unwrap();
    let op = done(&s.client, &op).await;
    assert_eq!(op.status, OperationStatus::Failed);
    assert_eq!(op.error.as_ref().and_then(|e| e["code"].as_str()), Some("migration_unsupported"));
    assert_eq!(vm(&s.client, id).await.state, VmState::Running);

    // Delete: gone, and the quota is whole again.
    let op = s.client.delete_at(&format!("/v1/vms/{id}")).await.expect("delete").expect("an operation");
    assert_eq!(done(&s.client, &op).await.status, OperationStatus::Succeeded);
    let e = s.client.get_at::<Vm>(&format!("/v1/vms/{id}")).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let quotas: Page<Quota> = s.client.get_at("/v1/quotas").await.unwrap();
    assert_eq!((quotas.items[0].vcpus_used, quotas.items[0].memory_used_mib, quotas.items[0].vms_used), (0, 0, 0));
    let hosts: Vec<Host> = s.app.admin.get_at(&format!("/v1/clusters/{}/hosts", s.cluster.id)).await.unwrap();
    assert_eq!((hosts[0].vcpus_allocated, hosts[0].memory_allocated_mib), (0, 0), "the placement was not released");
    s.app.stop().await;
}

#[tokio::test]
async fn tenants_see_clusters_by_alias_only_with_a_quota_and_never_a_host() {
    let app = TestApp::spawn().await;
    let west = cluster(&app, "west").await;
    let east = cluster_on(&app, "east").await;
    let (acme, _, client) = app.tenant_with_user("acme").await;

    // No quota yet: the cluster does not exist for the tenant.
    let e = client.get_at::<Cluster>(&format!("/v1/clusters/{}", west.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let t = template(&app, "tiny").await;
    let e = create_vm(&client, "web", west.id, t.id).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(422), Some("invalid_reference")));

    quota(&app, &acme, &west, 4, 1024, 2).await;
    let seen: Cluster = client.get_at(&format!("/v1/clusters/{}", west.id)).await.expect("visible with a quota");
    assert_eq!(seen.name, "west-alias");
    assert_eq!(seen.hosts, None);
    let raw = app
        .http()
        .get(format!("{}/v1/clusters/{}", app.endpoint, west.id))
        .bearer_auth(client.token().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!raw.contains("test:///") && !raw.contains("\"west\""), "tenant view leaks the estate: {raw}");
    let all: Page<Cluster> = client.get_at("/v1/clusters").await.unwrap();
    assert_eq!(all.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![west.id], "{east:?} leaked");
    // Provider staff see the name and the hosts.
    let staff: Cluster = app.admin.get_at(&format!("/v1/clusters/{}", west.id)).await.unwrap();
    assert_eq!((staff.name.as_str(), staff.hosts), ("west", Some(vec![HOST.to_string()])));
    // Tenants cannot list hosts at all.
    let e = client.get_at::<Vec<Host>>(&format!("/v1/clusters/{}/hosts", west.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    app.stop().await;
}

/// A second cluster needs a host of its own: a second URI of the test driver.
async fn cluster_on(app: &TestApp, name: &str) -> Cluster {
    let body =
        CreateCluster { name: name.into(), hosts: vec!["test:///default?name=second".into()], ..Default::default() };
    match app.admin.post_at("/v1/clusters", &body, &no_opts()).await {
        Ok(c) => c,
        Err(e) => panic!("create cluster {name}: {e}"),
    }
}

#[tokio::test]
async fn another_tenant_cannot_see_or_touch_a_vm() {
    let s = setup(4, 1024, 2).await;
    let op = create_vm(&s.client, "secret", s.cluster.id, s.template.id).await.unwrap();
    done(&s.client, &op).await;
    let (_, _, other) = s.app.tenant_with_user("globex").await;
    let id = op.target_id;
    for path in [format!("/v1/vms/{id}"), format!("/v1/operations/{}", op.id), format!("/v1/vms/{id}/snapshots")] {
        let e = other.get_at::<serde_json::Value>(&path).await.unwrap_err();
        assert_eq!(e.status(), Some(404), "{path}");
    }
    for what in ["stop", "reboot", "suspend", "migrate"] {
        let e =
            other.post_at::<_, Operation>(&format!("/v1/vms/{id}/{what}"), &json!({}), &no_opts()).await.unwrap_err();
        assert_eq!(e.status(), Some(404), "{what}");
    }
    let e = other.delete_at(&format!("/v1/vms/{id}")).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let list: Page<Vm> = other.get_at("/v1/vms").await.unwrap();
    assert!(list.items.is_empty());
    assert_eq!(vm(&s.client, id).await.state, VmState::Running);
    s.app.stop().await;
}

#[tokio::test]
async fn concurrent_creates_never_exceed_the_quota() {
    let s = setup(64, 65536, 3).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = s.client.clone();
        let (cluster, template) = (s.cluster.id, s.template.id);
        tasks.push(tokio::spawn(async move { create_vm(&client, &format!("race-{i}"), cluster, template).await }));
    }
    let mut accepted = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(op) => accepted.push(op),
            Err(e) => assert_eq!((e.status(), e.code()), (Some(422), Some("quota_exceeded")), "{e}"),
        }
    }
    assert_eq!(accepted.len(), 3, "exactly max_vms creates are accepted");
    for op in &accepted {
        assert_eq!(done(&s.client, op).await.status, OperationStatus::Succeeded);
    }
    let quotas: Page<Quota> = s.client.get_at("/v1/quotas").await.unwrap();
    assert_eq!(quotas.items[0].vms_used, 3);
    s.app.stop().await;
}

#[tokio::test]
async fn a_failed_create_leaves_nothing_behind() {
    let s = setup(4, 1024, 2).await;
    // A public template whose base image does not exist: the disk step fails.
    let body = CreateTemplate {
        name: "broken".into(),
        vcpus: 1,
        memory_mib: 128,
        image: Some("/nonexistent/base.qcow2".into()),
        ..Default::default()
    };
    let broken: Template = s.app.admin.post_at("/v1/templates", &body, &no_opts()).await.unwrap();
    let op = create_vm(&s.client, "doomed", s.cluster.id, broken.id).await.expect("accepted");
    let op = done(&s.client, &op).await;
    assert_eq!(op.status, OperationStatus::Failed);
    assert_eq!(op.error.as_ref().and_then(|e| e["code"].as_str()), Some("disk_failed"));
    let e = s.client.get_at::<Vm>(&format!("/v1/vms/{}", op.target_id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "a half-made VM remains");
    let quotas: Page<Quota> = s.client.get_at("/v1/quotas").await.unwrap();
    assert_eq!((quotas.items[0].vcpus_used, quotas.items[0].vms_used), (0, 0));
    let hosts: Vec<Host> = s.app.admin.get_at(&format!("/v1/clusters/{}/hosts", s.cluster.id)).await.unwrap();
    assert_eq!(hosts[0].vcpus_allocated, 0);
    // The name is free again.
    let op = create_vm(&s.client, "doomed", s.cluster.id, s.template.id).await.expect("name reusable");
    assert_eq!(done(&s.client, &op).await.status, OperationStatus::Succeeded);
    s.app.stop().await;
}

#[tokio::test]
async fn quotas_refuse_limits_below_usage_and_tenants_cannot_change_them() {
    let s = setup(4, 1024, 2).await;
    let op = create_vm(&s.client, "web", s.cluster.id, s.template.id).await.unwrap();
    done(&s.client, &op).await;
    let q: Page<Quota> = s.app.admin.get_at(&format!("/v1/quotas?tenant_id={}", s.tenant.id)).await.unwrap();
    let id = q.items[0].id;
    let e = s
        .app
        .admin
        .patch_at::<_, Quota>(&format!("/v1/quotas/{id}"), &json!({ "max_vms": 0 }), &no_opts())
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some("quota_in_use")));
    let e = s
        .client
        .patch_at::<_, Quota>(&format!("/v1/quotas/{id}"), &json!({ "max_vms": 100 }), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "a tenant raised its own quota");
    let e = s.app.admin.delete_at(&format!("/v1/quotas/{id}")).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some("quota_in_use")));
    s.app.stop().await;
}

#[tokio::test]
async fn a_cluster_delegate_sees_its_cluster_and_nothing_else() {
    let app = TestApp::spawn().await;
    let west = cluster(&app, "west").await;
    let east = cluster_on(&app, "east").await;
    let (acme, _, owner) = app.tenant_with_user("acme").await;
    quota(&app, &acme, &west, 8, 4096, 4).await;
    quota(&app, &acme, &east, 8, 4096, 4).await;
    let t = template(&app, "tiny").await;
    let on_west = create_vm(&owner, "w1", west.id, t.id).await.unwrap();
    let on_east = create_vm(&owner, "e1", east.id, t.id).await.unwrap();
    done(&owner, &on_west).await;
    done(&owner, &on_east).await;

    // A user bound to cluster-operator on `west` only.
    let delegate: basalt_client::User = owner
        .create_user(
            &basalt_client::CreateUser {
                username: "ops".into(),
                password: Some(common::PASSWORD.into()),
                ..Default::default()
            },
            &no_opts(),
        )
        .await
        .unwrap();
    let role_id = basalt_server::authz::builtin_role_named("cluster-operator").unwrap().id;
    let binding = owner
        .create_role_binding(
            &basalt_client::CreateRoleBinding {
                role_id,
                user_id: Some(delegate.id),
                cluster_id: Some(west.id),
                ..Default::default()
            },
            &no_opts(),
        )
        .await
        .expect("cluster-scoped binding");
    assert_eq!(binding.scope, "cluster");
    let ops = app.login("ops", Some("acme")).await;

    let vms: Page<Vm> = ops.get_at("/v1/vms").await.unwrap();
    assert_eq!(vms.items.iter().map(|v| v.id).collect::<Vec<_>>(), vec![on_west.target_id]);
    let clusters: Page<Cluster> = ops.get_at("/v1/clusters").await.unwrap();
    assert_eq!(clusters.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![west.id]);
    let e = ops.get_at::<Vm>(&format!("/v1/vms/{}", on_east.target_id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "the delegate sees a VM of another cluster");
    let e = ops
        .post_at::<_, Operation>(&format!("/v1/vms/{}/stop", on_east.target_id), &json!({}), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    // On its cluster it operates, and creates.
    action(&ops, on_west.target_id, "stop").await;
    let op = create_vm(&ops, "w2", west.id, t.id).await.expect("create on its cluster");
    done(&ops, &op).await;
    let e = create_vm(&ops, "e2", east.id, t.id).await.unwrap_err();
    assert_eq!(e.status(), Some(422), "created on a cluster it has no binding on");
    // cluster-operator holds no delete.
    let e = ops.delete_at(&format!("/v1/vms/{}", on_west.target_id)).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    // A binding on a cluster the tenant holds no quota on is refused.
    let (_, _, other) = app.tenant_with_user("globex").await;
    let other_user: basalt_client::User = other
        .create_user(&basalt_client::CreateUser { username: "x".into(), ..Default::default() }, &no_opts())
        .await
        .unwrap();
    let e = other
        .create_role_binding(
            &basalt_client::CreateRoleBinding {
                role_id,
                user_id: Some(other_user.id),
                cluster_id: Some(west.id),
                ..Default::default()
            },
            &no_opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(422));
    app.stop().await;
}

#[tokio::test]
async fn console_tickets_are_single_use_and_never_cross_tenants() {
    let s = setup(4, 1024, 2).await;
    let op = create_vm(&s.client, "web", s.cluster.id, s.template.id).await.unwrap();
    done(&s.client, &op).await;
    let id = op.target_id;
    let t: basalt_client::ConsoleTicket =
        s.client.post_at(&format!("/v1/vms/{id}/console"), &json!({}), &no_opts()).await.expect("ticket");
    assert!(t.ticket.starts_with("bct_") && t.url.contains(&t.ticket));
    let ws = |url: String| async move {
        tokio_tungstenite::connect_async(url).await.map(drop).map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(resp) => resp.status().as_u16(),
            other => panic!("websocket: {other}"),
        })
    };
    let base = s.app.endpoint.replace("http://", "ws://");
    // A forged secret is refused and does not burn the ticket.
    let forged = format!("{}x", t.ticket);
    assert_eq!(ws(format!("{base}/v1/vms/{id}/console/ws?ticket={forged}")).await, Err(401));
    // Another VM's path: refused, ticket kept.
    let other_vm = Uuid::now_v7();
    assert_eq!(ws(format!("{base}/v1/vms/{other_vm}/console/ws?ticket={}", t.ticket)).await, Err(401));
    // The real use gets past the ticket; the test driver has no console, which it says.
    assert_eq!(ws(format!("{base}{}", t.url)).await, Err(422));
    // Spent.
    assert_eq!(ws(format!("{base}{}", t.url)).await, Err(401));
    // No ticket, or garbage.
    assert_eq!(ws(format!("{base}/v1/vms/{id}/console/ws")).await, Err(400));
    assert_eq!(ws(format!("{base}/v1/vms/{id}/console/ws?ticket=bct_nope")).await, Err(401));

    // Another tenant cannot get a ticket for the VM.
    let (_, _, other) = s.app.tenant_with_user("globex").await;
    let e = other
        .post_at::<_, basalt_client::ConsoleTicket>(&format!("/v1/vms/{id}/console"), &json!({}), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    // A stopped VM has no console.
    action(&s.client, id, "stop").await;
    let e = s
        .client
        .post_at::<_, basalt_client::ConsoleTicket>(&format!("/v1/vms/{id}/console"), &json!({}), &no_opts())
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some("invalid_vm_state")));
    s.app.stop().await;
}

#[tokio::test]
async fn vm_disks_are_linked_clones_and_a_stopped_vm_becomes_a_private_template() {
    let s = setup(8, 4096, 4).await;
    // A real base image on "shared storage".
    let dir = std::env::temp_dir().join(format!("basalt-images-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.qcow2");
    let made =
        std::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&base).arg("64M").status();
    assert!(made.unwrap().success(), "qemu-img create");
    let body = CreateTemplate {
        name: "debian".into(),
        vcpus: 1,
        memory_mib: 128,
        disk_gib: Some(1),
        image: Some(base.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let public: Template = s.app.admin.post_at("/v1/templates", &body, &no_opts()).await.unwrap();
    let op = create_vm(&s.client, "golden", s.cluster.id, public.id).await.unwrap();
    assert_eq!(done(&s.client, &op).await.status, OperationStatus::Succeeded);
    let id = op.target_id;
    let disk = s.app.state.compute.storage_dir.join("vms").join(format!("{id}.qcow2"));
    let info = std::process::Command::new("qemu-img").args(["info", "--output=json"]).arg(&disk).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("qemu-img info");
    assert_eq!(info["backing-filename"].as_str(), Some(base.to_str().unwrap()), "not a linked clone: {info}");
    assert_eq!(info["virtual-size"].as_u64(), Some(1 << 30));

    // Running: refused. Stopped: a private template with a flattened copy of the disk.
    let e = s
        .client
        .post_at::<_, Template>(&format!("/v1/vms/{id}/template"), &json!({ "name": "mine" }), &no_opts())
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some("invalid_vm_state")));
    action(&s.client, id, "stop").await;
    let mine: Template =
        s.client.post_at(&format!("/v1/vms/{id}/template"), &json!({ "name": "mine" }), &no_opts()).await.unwrap();
    assert_eq!((mine.tenant_id, mine.source_vm_id), (Some(s.tenant.id), Some(id)));
    let info =
        std::process::Command::new("qemu-img").args(["info", "--output=json"]).arg(&mine.image).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("qemu-img info");
    assert!(info["backing-filename"].is_null(), "the template still depends on the VM's chain: {info}");
    // A VM from it, and nobody else sees it.
    let op = create_vm(&s.client, "copy", s.cluster.id, mine.id).await.unwrap();
    assert_eq!(done(&s.client, &op).await.status, OperationStatus::Succeeded);
    let (_, _, other) = s.app.tenant_with_user("globex").await;
    let e = other.get_at::<Template>(&format!("/v1/templates/{}", mine.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    // Deleting the VM removes its disk.
    let op = s.client.delete_at(&format!("/v1/vms/{id}")).await.unwrap().unwrap();
    done(&s.client, &op).await;
    assert!(!disk.exists(), "the VM's disk outlived it");
    let _ = std::fs::remove_dir_all(&dir);
    s.app.stop().await;
}

#[tokio::test]
async fn a_cluster_gains_and_loses_hosts_but_never_one_with_vms() {
    let s = setup(4, 1024, 2).await;
    let op = create_vm(&s.client, "web", s.cluster.id, s.template.id).await.unwrap();
    done(&s.client, &op).await;
    let path = format!("/v1/clusters/{}", s.cluster.id);
    let spare = "test:///default?name=spare-host";
    let grown: Cluster =
        s.app.admin.patch_at(&path, &json!({ "hosts": [spare, HOST] }), &no_opts()).await.expect("add a host");
    assert_eq!(grown.hosts, Some(vec![spare.to_string(), HOST.to_string()]), "the user's order");
    let e =
        s.app.admin.patch_at::<_, Cluster>(&path, &json!({ "hosts": [spare, spare] }), &no_opts()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_field")));
    let e = s.app.admin.patch_at::<_, Cluster>(&path, &json!({ "hosts": [spare] }), &no_opts()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some("host_in_use")), "the host with the VM left");
    let stale = RequestOptions { if_match: Some(grown.version - 1), ..Default::default() };
    let e = s.app.admin.patch_at::<_, Cluster>(&path, &json!({ "alias": "x" }), &stale).await.unwrap_err();
    assert_eq!(e.code(), Some("version_mismatch"));
    let shrunk: Cluster =
        s.app.admin.patch_at(&path, &json!({ "hosts": [HOST] }), &no_opts()).await.expect("drop the spare");
    assert_eq!(shrunk.hosts, Some(vec![HOST.to_string()]));
    s.app.stop().await;
}

/// Draining a host: it takes no new VM (every create lands on the other host),
/// keeps the VMs it has (`vms` counts them), and goes back into service when
/// undrained; tenants cannot see hosts at all.
#[tokio::test]
async fn a_drained_host_takes_no_new_vm_until_undrained() {
    let s = setup(8, 4096, 6).await;
    let path = format!("/v1/clusters/{}", s.cluster.id);
    let spare = "test:///default?name=drain-spare";
    let _: Cluster = s.app.admin.patch_at(&path, &json!({ "hosts": [HOST, spare] }), &no_opts()).await.expect("grow");
    let hosts: Vec<basalt_client::Host> = s.app.admin.get_at(&format!("{path}/hosts")).await.expect("hosts");
    let (first, second) = (hosts[0].id, hosts[1].id);

    let op = create_vm(&s.client, "before", s.cluster.id, s.template.id).await.unwrap();
    done(&s.client, &op).await;
    let drained: basalt_client::Host =
        s.app.admin.post_at(&format!("{path}/hosts/{first}/drain"), &json!({}), &no_opts()).await.expect("drain");
    assert_eq!(drained.state, "draining");
    let placed_before = drained.vms;
    for i in 0..3 {
        let op = create_vm(&s.client, &format!("after-{i}"), s.cluster.id, s.template.id).await.unwrap();
        assert_eq!(done(&s.client, &op).await.status, OperationStatus::Succeeded);
    }
    let read = |id: Uuid| {
        let admin = s.app.admin.clone();
        let url = format!("{path}/hosts/{id}");
        async move { admin.get_at::<basalt_client::Host>(&url).await.expect("host") }
    };
    assert_eq!(read(first).await.vms, placed_before, "nothing new on the drained host");
    assert_eq!(read(second).await.vms + placed_before, 4, "every VM is on one of the two");
    assert!(read(second).await.vms >= 3, "the three new VMs went to the other host");

    let back: basalt_client::Host =
        s.app.admin.post_at(&format!("{path}/hosts/{first}/undrain"), &json!({}), &no_opts()).await.expect("undrain");
    assert_eq!(back.state, "up");
    let e = s.client.get_at::<serde_json::Value>(&format!("{path}/hosts/{first}")).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "tenants never see a host");
    let e = s.app.admin.get_at::<serde_json::Value>(&format!("{path}/hosts/{}", Uuid::now_v7())).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    s.app.stop().await;
}
