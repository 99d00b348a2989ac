//! The reconciler against real libvirt (the in-process test driver) and a real
//! Postgres: drift repaired (a domain stopped, undefined or started behind
//! Basalt's back), a VM of a lost host restarted on another host, a create cut
//! short by a crash undone at start-up, and a suspended tenant's VMs stopped.
//! A domain defined again (by the reconciler, or by a rebuild) keeps the VM's
//! NICs and volumes.

mod common;

use std::time::Duration;

use basalt_client::{
    Client, Cluster, CreateCluster, CreateQuota, CreateTemplate, CreateVm, Host, Operation, OperationStatus, Page,
    Quota, RequestOptions, Template, Tenant, Vm, VmState,
};
use basalt_server::compute::reconciler::reconcile_once;
use basalt_server::compute::DomainPower;
use common::TestApp;
use serde_json::json;
use uuid::Uuid;

fn no_opts() -> RequestOptions {
    RequestOptions::default()
}

struct World {
    app: TestApp,
    cluster: Cluster,
    tenant: Tenant,
    client: Client,
    template: Template,
}

async fn world(hosts: &[&str]) -> World {
    let app = TestApp::spawn().await;
    let body = CreateCluster {
        name: "west".into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..Default::default()
    };
    let cluster: Cluster = app.admin.post_at("/v1/clusters", &body, &no_opts()).await.unwrap();
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    let quota = CreateQuota {
        tenant_id: tenant.id,
        cluster_id: cluster.id,
        vcpus: 8,
        memory_mib: 4096,
        max_vms: 4,
        disk_gib: None,
    };
    let _: Quota = app.admin.post_at("/v1/quotas", &quota, &no_opts()).await.unwrap();
    let body = CreateTemplate { name: "tiny".into(), vcpus: 1, memory_mib: 128, ..Default::default() };
    let template: Template = app.admin.post_at("/v1/templates", &body, &no_opts()).await.unwrap();
    World { app, cluster, tenant, client, template }
}

async fn running_vm(w: &World, name: &str) -> Uuid {
    let body =
        CreateVm { name: name.into(), cluster_id: w.cluster.id, template_id: w.template.id, ..Default::default() };
    let op: Operation = w.client.post_at("/v1/vms", &body, &no_opts()).await.unwrap();
    let op = w.client.wait_operation(op.id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(op.status, OperationStatus::Succeeded);
    op.target_id
}

async fn vm(w: &World, id: Uuid) -> Vm {
    w.client.get_at(&format!("/v1/vms/{id}")).await.unwrap()
}

/// The host a VM is on, as provider staff see it (the one with allocations).
async fn host_of(w: &World) -> Host {
    let hosts: Vec<Host> = w.app.admin.get_at(&format!("/v1/clusters/{}/hosts", w.cluster.id)).await.unwrap();
    hosts.into_iter().find(|h| h.vcpus_allocated > 0).expect("a host with the VM")
}

async fn power(w: &World, uri: &str, id: Uuid) -> Option<DomainPower> {
    let uri = uri.to_string();
    w.app.state.compute.call(move |hv| hv.power(&uri, id)).await.unwrap()
}

async fn reconcile(w: &World, startup: bool) -> Vec<&'static str> {
    let report = reconcile_once(&w.app.state, startup).await.unwrap().expect("the pass ran");
    report.actions.into_iter().map(|(_, a)| a).collect()
}

#[tokio::test]
async fn drift_on_the_host_is_repaired_and_audited() {
    let w = world(&["test:///default"]).await;
    let id = running_vm(&w, "web").await;
    let uri = "test:///default";

    // Powered off behind Basalt's back: started again.
    w.app.state.compute.call(move |hv| hv.destroy(uri, id)).await.unwrap();
    assert_eq!(reconcile(&w, false).await, vec!["start"]);
    assert_eq!(power(&w, uri, id).await, Some(DomainPower::Running));

    // Undefined: defined and started again.
    w.app.state.compute.call(move |hv| hv.undefine(uri, id)).await.unwrap();
    assert_eq!(reconcile(&w, false).await, vec!["define", "start"]);
    assert_eq!(power(&w, uri, id).await, Some(DomainPower::Running));
    assert_eq!(vm(&w, id).await.state, VmState::Running);

    // Stopped through the API, then started behind Basalt's back: stopped again.
    let op: Operation =
        w.client.post_at(&format!("/v1/vms/{id}/stop"), &serde_json::json!({}), &no_opts()).await.unwrap();
    w.client.wait_operation(op.id, Duration::from_secs(20)).await.unwrap();
    w.app.state.compute.call(move |hv| hv.start(uri, id)).await.unwrap();
    assert_eq!(reconcile(&w, false).await, vec!["stop"]);
    assert_eq!(power(&w, uri, id).await, Some(DomainPower::Off));
    assert_eq!(vm(&w, id).await.state, VmState::Stopped);

    // In line: nothing to do.
    assert!(reconcile(&w, false).await.is_empty());
    let events: Page<basalt_client::AuditEvent> = w.client.get_at("/v1/audit-events?limit=100").await.unwrap();
    let actions: Vec<&str> =
        events.items.iter().map(|e| e.action.as_str()).filter(|a| a.starts_with("vm.reconcile")).collect();
    for expected in ["vm.reconcile.start", "vm.reconcile.define", "vm.reconcile.stop"] {
        assert!(actions.contains(&expected), "{expected} not audited: {actions:?}");
    }
    w.app.stop().await;
}

/// The domain's persistent definition, as libvirt has it.
fn definition(uri: &str, id: Uuid) -> String {
    let conn = virt::connect::Connect::open(Some(uri)).expect("open");
    conn.lookup_domain_by_uuid(id).and_then(|d| d.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)).expect("xml")
}

#[tokio::test]
async fn a_domain_defined_again_keeps_its_nics_and_volumes() {
    let w = world(&["test:///default"]).await;
    let id = running_vm(&w, "app").await;
    let uri = "test:///default";
    let net: serde_json::Value = w
        .client
        .post_at(
            "/v1/networks",
            &json!({ "cluster_id": w.cluster.id, "name": "back", "cidr": "10.9.0.0/24" }),
            &no_opts(),
        )
        .await
        .unwrap();
    let nic: serde_json::Value = w
        .client
        .post_at(&format!("/v1/vms/{id}/interfaces"), &json!({ "network_id": net["id"] }), &no_opts())
        .await
        .unwrap();
    let mac = nic["mac"].as_str().expect("mac").to_string();
    let vol: serde_json::Value = w
        .client
        .post_at("/v1/volumes", &json!({ "cluster_id": w.cluster.id, "name": "data", "size_gib": 1 }), &no_opts())
        .await
        .unwrap();
    let volume = vol["id"].as_str().expect("volume id").to_string();
    let _: serde_json::Value =
        w.client.post_at(&format!("/v1/volumes/{volume}/attach"), &json!({ "vm_id": id }), &no_opts()).await.unwrap();
    let has_devices = |xml: &str| xml.contains(&format!("<mac address='{mac}'/>")) && xml.contains(&volume);
    assert!(has_devices(&definition(uri, id)), "attached: {}", definition(uri, id));

    // Undefined behind Basalt's back: the reconciler's definition has both again.
    w.app.state.compute.call(move |hv| hv.undefine(uri, id)).await.unwrap();
    assert_eq!(reconcile(&w, false).await, vec!["define", "start"]);
    assert!(has_devices(&definition(uri, id)), "after the repair: {}", definition(uri, id));

    // A rebuild defines the domain anew: it keeps them too.
    let op: Operation = w.client.post_at(&format!("/v1/vms/{id}/rebuild"), &json!({}), &no_opts()).await.unwrap();
    let op = w.client.wait_operation(op.id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(op.status, OperationStatus::Succeeded, "{op:?}");
    assert!(has_devices(&definition(uri, id)), "after the rebuild: {}", definition(uri, id));
    w.app.stop().await;
}

#[tokio::test]
async fn a_vm_of_a_lost_host_comes_back_on_another_host() {
    let w = world(&["test:///default", "test:///default?name=spare"]).await;
    let id = running_vm(&w, "db").await;
    let lost = host_of(&w).await;
    // The host dies: its domain is gone and it no longer answers.
    let uri = lost.uri.clone();
    w.app.state.compute.call(move |hv| hv.undefine(&uri, id)).await.unwrap();
    let mut admin = w.app.db.admin().await;
    sqlx::query("UPDATE hosts SET uri = 'qemu+tcp://127.0.0.1:1/system' WHERE id = $1")
        .bind(lost.id)
        .execute(&mut admin)
        .await
        .unwrap();

    let report = reconcile_once(&w.app.state, false).await.unwrap().unwrap();
    assert_eq!(report.hosts_unreachable, 1);
    assert_eq!(report.actions, vec![(id, "recover")]);
    let now = host_of(&w).await;
    assert_ne!(now.id, lost.id, "the VM is still placed on the lost host");
    assert_eq!(power(&w, &now.uri, id).await, Some(DomainPower::Running));
    assert_eq!(vm(&w, id).await.state, VmState::Running);
    let hosts: Vec<Host> = w.app.admin.get_at(&format!("/v1/clusters/{}/hosts", w.cluster.id)).await.unwrap();
    let dead = hosts.iter().find(|h| h.id == lost.id).unwrap();
    assert_eq!(dead.state, "unreachable");
    assert!(dead.last_error.is_some());
    w.app.stop().await;
}

#[tokio::test]
async fn a_create_cut_short_by_a_crash_is_undone_at_start_up() {
    let w = world(&["test:///default"]).await;
    let id = running_vm(&w, "half").await;
    // What a crash between "define" and "running" leaves: the row creating, the
    // operation running, the domain defined on the host.
    let mut admin = w.app.db.admin().await;
    sqlx::query("UPDATE vms SET state = 'creating' WHERE id = $1").bind(id).execute(&mut admin).await.unwrap();
    sqlx::query("UPDATE operations SET status = 'running', finished_at = NULL WHERE target_id = $1")
        .bind(id)
        .execute(&mut admin)
        .await
        .unwrap();

    assert_eq!(reconcile(&w, true).await, vec!["undo_create"]);
    assert_eq!(w.client.get_at::<Vm>(&format!("/v1/vms/{id}")).await.unwrap_err().status(), Some(404));
    assert_eq!(power(&w, "test:///default", id).await, None, "the domain is still defined");
    let quotas: Page<Quota> = w.client.get_at("/v1/quotas").await.unwrap();
    assert_eq!((quotas.items[0].vcpus_used, quotas.items[0].vms_used), (0, 0));
    let ops: Page<Operation> = w.client.get_at("/v1/operations").await.unwrap();
    let create = ops.items.iter().find(|o| o.target_id == id).unwrap();
    assert_eq!(create.status, OperationStatus::Failed);
    assert_eq!(create.error.as_ref().and_then(|e| e["code"].as_str()), Some("interrupted"));
    w.app.stop().await;
}

/// Replicas: a half-made VM whose operation another live process runs is left
/// to it; once that process stops beating (killed), the next pass settles it.
#[tokio::test]
async fn a_live_siblings_work_is_left_alone_and_a_dead_ones_is_taken_over() {
    let w = world(&["test:///default"]).await;
    let id = running_vm(&w, "half").await;
    let sibling = Uuid::new_v4();
    let mut admin = w.app.db.admin().await;
    sqlx::query("INSERT INTO server_instances (id) VALUES ($1)").bind(sibling).execute(&mut admin).await.unwrap();
    sqlx::query("UPDATE vms SET state = 'creating' WHERE id = $1").bind(id).execute(&mut admin).await.unwrap();
    sqlx::query("UPDATE operations SET status = 'running', finished_at = NULL, instance_id = $2 WHERE target_id = $1")
        .bind(id)
        .bind(sibling)
        .execute(&mut admin)
        .await
        .unwrap();

    // Neither a periodic pass nor another replica's start-up touches it.
    assert_eq!(reconcile(&w, false).await, Vec::<&str>::new());
    assert_eq!(reconcile(&w, true).await, Vec::<&str>::new());
    assert_eq!(vm(&w, id).await.state, VmState::Creating);
    let ops: Page<Operation> = w.client.get_at("/v1/operations").await.unwrap();
    assert_eq!(ops.items.iter().find(|o| o.target_id == id).unwrap().status, OperationStatus::Running);

    // The sibling's last heartbeat falls out of the lease: its work is settled.
    sqlx::query("UPDATE server_instances SET heartbeat_at = now() - interval '1 minute' WHERE id = $1")
        .bind(sibling)
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(reconcile(&w, false).await, vec!["undo_create"]);
    assert_eq!(w.client.get_at::<Vm>(&format!("/v1/vms/{id}")).await.unwrap_err().status(), Some(404));
    let ops: Page<Operation> = w.client.get_at("/v1/operations").await.unwrap();
    let create = ops.items.iter().find(|o| o.target_id == id).unwrap();
    assert_eq!(create.status, OperationStatus::Failed);
    assert_eq!(create.error.as_ref().and_then(|e| e["code"].as_str()), Some("interrupted"));
    w.app.stop().await;
}

#[tokio::test]
async fn suspending_a_tenant_stops_its_vms_and_resuming_starts_them() {
    let w = world(&["test:///default"]).await;
    let id = running_vm(&w, "app").await;
    w.app.admin.suspend_tenant(w.tenant.id).await.unwrap();
    // The suspension triggers a pass; wait for it (the domain, then the row: the
    // pass commits the row after it stopped the domain) rather than racing it.
    let mut stopped = false;
    for _ in 0..100 {
        if power(&w, "test:///default", id).await == Some(DomainPower::Off) {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stopped, "a suspended tenant's VM kept running");
    let mut row = vm(&w, id).await.state;
    for _ in 0..100 {
        if row != VmState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        row = vm(&w, id).await.state;
    }
    assert_eq!(row, VmState::Stopped);
    w.app.admin.resume_tenant(w.tenant.id).await.unwrap();
    let mut running = false;
    for _ in 0..100 {
        if power(&w, "test:///default", id).await == Some(DomainPower::Running) {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running, "a resumed tenant's VM stayed off");
    w.app.stop().await;
}
