//! Provider operations through the API, on a real Postgres and libvirt's test
//! driver: quota requests (ask, decide, cancel; the quota follows an approval),
//! publishing public templates, evacuating a host, a cluster's capacity,
//! cancelling operations, notices and console sessions. Cross-tenant objects are
//! 404s; what a role may not do is a 403.

mod common;

use std::time::Duration;

use basalt_client::{
    Client, Cluster, ClusterCapacity, ConsoleSession, ConsoleTicket, CreateCluster, CreateNotice, CreateQuota,
    CreateQuotaRequest, CreateTemplate, CreateVm, DecideQuotaRequest, Host, Notice, NoticeSeverity, Operation,
    OperationStatus, Page, Quota, QuotaRequest, QuotaRequestState, RequestOptions, Template, Tenant, UpdateNotice, Vm,
    VmState,
};
use common::TestApp;
use serde_json::json;
use uuid::Uuid;

const HOST: &str = "test:///default";
const SPARE: &str = "test:///default?name=evacuation-spare";
const WAIT: Duration = Duration::from_secs(30);

fn no_opts() -> RequestOptions {
    RequestOptions::default()
}

/// A cluster of the given test-driver hosts, and a quota on it for `tenant`.
async fn cluster_with_quota(app: &TestApp, hosts: &[&str], tenant: &Tenant, vcpus: i32, memory_mib: i64) -> Cluster {
    let body = CreateCluster {
        name: "west".into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        alias: Some("standard".into()),
        ..Default::default()
    };
    let cluster: Cluster = app.admin.post_at("/v1/clusters", &body, &no_opts()).await.expect("cluster");
    let quota =
        CreateQuota { tenant_id: tenant.id, cluster_id: cluster.id, vcpus, memory_mib, max_vms: 4, disk_gib: None };
    let _: Quota = app.admin.post_at("/v1/quotas", &quota, &no_opts()).await.expect("quota");
    cluster
}

async fn public_template(app: &TestApp, name: &str) -> Template {
    let body = CreateTemplate { name: name.into(), vcpus: 1, memory_mib: 128, ..Default::default() };
    app.admin.post_at("/v1/templates", &body, &no_opts()).await.expect("template")
}

/// Creates a VM and waits until it runs.
async fn running_vm(client: &Client, name: &str, cluster: Uuid, template: Uuid) -> Uuid {
    let body = CreateVm { name: name.into(), cluster_id: cluster, template_id: template, ..Default::default() };
    let op: Operation = client.post_at("/v1/vms", &body, &no_opts()).await.expect("create vm");
    let op = client.wait_operation(op.id, WAIT).await.expect("poll");
    assert_eq!(op.status, OperationStatus::Succeeded, "{:?}", op.error);
    op.target_id
}

fn ask(cluster: Uuid, vcpus: i32, memory_mib: i64, max_vms: i32) -> CreateQuotaRequest {
    CreateQuotaRequest { cluster_id: cluster, vcpus, memory_mib, max_vms, reason: "launch week".into() }
}

fn reason(text: &str) -> DecideQuotaRequest {
    DecideQuotaRequest { reason: text.into() }
}

fn status_code(e: &basalt_client::ClientError) -> (Option<u16>, Option<&str>) {
    (e.status(), e.code())
}

#[tokio::test]
async fn quota_requests_are_asked_decided_once_and_approval_sets_the_quota() {
    let app = TestApp::spawn().await;
    let (acme, _, client) = app.tenant_with_user("acme").await;
    let (_, _, globex) = app.tenant_with_user("globex").await;
    let cluster = cluster_with_quota(&app, &[HOST], &acme, 4, 1024).await;

    // A cluster the tenant cannot see is not one to ask about.
    let e = globex.post_at::<_, QuotaRequest>("/v1/quota-requests", &ask(cluster.id, 8, 2048, 4), &no_opts()).await;
    assert_eq!(status_code(&e.unwrap_err()), (Some(422), Some("invalid_reference")));

    let r: QuotaRequest =
        client.post_at("/v1/quota-requests", &ask(cluster.id, 8, 4096, 4), &no_opts()).await.expect("ask");
    assert_eq!(
        (r.state, r.tenant_id, r.vcpus, r.memory_mib, r.max_vms),
        (QuotaRequestState::Pending, acme.id, 8, 4096, 4)
    );
    // One pending request per cluster.
    let e = client.post_at::<_, QuotaRequest>("/v1/quota-requests", &ask(cluster.id, 6, 2048, 3), &no_opts()).await;
    assert_eq!(e.unwrap_err().status(), Some(409));

    // The tenant cannot decide its own request, whatever role it holds.
    let path = format!("/v1/quota-requests/{}", r.id);
    let e = client.post_at::<_, QuotaRequest>(&format!("{path}/approve"), &reason(""), &no_opts()).await;
    assert_eq!(status_code(&e.unwrap_err()), (Some(403), Some("permission_denied")));
    // Another tenant does not see it at all.
    assert_eq!(globex.get_at::<QuotaRequest>(&path).await.unwrap_err().status(), Some(404));
    let e = globex.post_at::<_, QuotaRequest>(&format!("{path}/cancel"), &json!({}), &no_opts()).await;
    assert_eq!(e.unwrap_err().status(), Some(404));
    let theirs: Page<QuotaRequest> = globex.get_at("/v1/quota-requests").await.unwrap();
    assert!(theirs.items.is_empty());

    // Provider staff see the pending requests of every tenant.
    let pending: Page<QuotaRequest> = app.admin.get_at("/v1/quota-requests?state=pending").await.unwrap();
    assert_eq!(pending.items.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r.id]);
    let approved: QuotaRequest =
        app.admin.post_at(&format!("{path}/approve"), &reason("welcome"), &no_opts()).await.expect("approve");
    assert_eq!(approved.state, QuotaRequestState::Approved);
    assert!(approved.decided_at.is_some() && approved.decided_by.is_some());
    let quotas: Page<Quota> = client.get_at("/v1/quotas").await.unwrap();
    assert_eq!((quotas.items[0].vcpus, quotas.items[0].memory_mib, quotas.items[0].max_vms), (8, 4096, 4));
    assert_eq!(approved.quota_id, Some(quotas.items[0].id));

    // Decided: no further change, by anyone.
    for (who, action) in [(&app.admin, "approve"), (&app.admin, "reject"), (&client, "cancel")] {
        let e = who.post_at::<_, QuotaRequest>(&format!("{path}/{action}"), &reason("again"), &no_opts()).await;
        assert_eq!(status_code(&e.unwrap_err()), (Some(409), Some("request_decided")), "{action}");
    }
    // Audited: the quota change names the request.
    let events = app.admin.list_audit_events("action=quota.update").await.unwrap();
    assert_eq!(events.items[0].details["quota_request_id"], json!(r.id));
    assert_eq!(events.items[0].details["before"]["vcpus"], 4);

    // Cancel while pending; then nothing more.
    let r2: QuotaRequest = client.post_at("/v1/quota-requests", &ask(cluster.id, 2, 512, 1), &no_opts()).await.unwrap();
    let path2 = format!("/v1/quota-requests/{}", r2.id);
    let cancelled: QuotaRequest = client.post_at(&format!("{path2}/cancel"), &json!({}), &no_opts()).await.unwrap();
    assert_eq!(cancelled.state, QuotaRequestState::Cancelled);
    let e = app.admin.post_at::<_, QuotaRequest>(&format!("{path2}/approve"), &reason(""), &no_opts()).await;
    assert_eq!(e.unwrap_err().status(), Some(409));

    // Reject, with a reason the tenant reads; the quota stays.
    let r3: QuotaRequest =
        client.post_at("/v1/quota-requests", &ask(cluster.id, 64, 65536, 40), &no_opts()).await.unwrap();
    let path3 = format!("/v1/quota-requests/{}", r3.id);
    let e = app.admin.post_at::<_, QuotaRequest>(&format!("{path3}/reject"), &reason(""), &no_opts()).await;
    assert_eq!(e.unwrap_err().status(), Some(400));
    let _: QuotaRequest =
        app.admin.post_at(&format!("{path3}/reject"), &reason("that cluster is full"), &no_opts()).await.unwrap();
    let seen: QuotaRequest = client.get_at(&path3).await.unwrap();
    assert_eq!((seen.state, seen.decision_reason.as_str()), (QuotaRequestState::Rejected, "that cluster is full"));
    let quotas: Page<Quota> = client.get_at("/v1/quotas").await.unwrap();
    assert_eq!(quotas.items[0].vcpus, 8);
    let mine: Page<QuotaRequest> = client.get_at("/v1/quota-requests?state=rejected").await.unwrap();
    assert_eq!(mine.items.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn approval_creates_a_missing_quota_and_never_goes_below_usage() {
    let app = TestApp::spawn().await;
    let (acme, _, client) = app.tenant_with_user("acme").await;
    let cluster = cluster_with_quota(&app, &[HOST], &acme, 4, 1024).await;
    let template = public_template(&app, "tiny").await;

    // Below what the tenant uses: refused, and the request stays pending.
    running_vm(&client, "web", cluster.id, template.id).await;
    let low: QuotaRequest = client.post_at("/v1/quota-requests", &ask(cluster.id, 0, 0, 0), &no_opts()).await.unwrap();
    let e = app
        .admin
        .post_at::<_, QuotaRequest>(&format!("/v1/quota-requests/{}/approve", low.id), &reason(""), &no_opts())
        .await;
    assert_eq!(status_code(&e.unwrap_err()), (Some(409), Some("quota_in_use")));
    let still: QuotaRequest = client.get_at(&format!("/v1/quota-requests/{}", low.id)).await.unwrap();
    assert_eq!(still.state, QuotaRequestState::Pending);
    let _: QuotaRequest =
        client.post_at(&format!("/v1/quota-requests/{}/cancel", low.id), &json!({}), &no_opts()).await.unwrap();

    // The quota withdrawn after the request was made: approval creates it again.
    let vms: Page<Vm> = client.get_at("/v1/vms").await.unwrap();
    let op = client.delete_at(&format!("/v1/vms/{}", vms.items[0].id)).await.unwrap().unwrap();
    client.wait_operation(op.id, WAIT).await.unwrap();
    let r: QuotaRequest = client.post_at("/v1/quota-requests", &ask(cluster.id, 2, 512, 1), &no_opts()).await.unwrap();
    let quotas: Page<Quota> = app.admin.get_at(&format!("/v1/quotas?tenant_id={}", acme.id)).await.unwrap();
    app.admin.delete_at(&format!("/v1/quotas/{}", quotas.items[0].id)).await.expect("withdraw quota");
    let approved: QuotaRequest = app
        .admin
        .post_at(&format!("/v1/quota-requests/{}/approve", r.id), &reason(""), &no_opts())
        .await
        .expect("approve");
    let quota: Quota = app.admin.get_at(&format!("/v1/quotas/{}", approved.quota_id.unwrap())).await.unwrap();
    assert_eq!(
        (quota.tenant_id, quota.cluster_id, quota.vcpus, quota.memory_mib, quota.max_vms),
        (acme.id, cluster.id, 2, 512, 1)
    );
    let events = app.admin.list_audit_events("action=quota.create").await.unwrap();
    assert_eq!(events.items[0].details["quota_request_id"], json!(r.id));
    app.stop().await;
}

#[tokio::test]
async fn an_unpublished_public_template_disappears_for_tenants_but_its_vms_run_on() {
    let app = TestApp::spawn().await;
    let (acme, _, client) = app.tenant_with_user("acme").await;
    let cluster = cluster_with_quota(&app, &[HOST], &acme, 8, 4096).await;
    let template = public_template(&app, "tiny").await;
    assert!(template.published, "public templates are published by default");
    let vm = running_vm(&client, "before", cluster.id, template.id).await;

    let path = format!("/v1/templates/{}", template.id);
    let e = client.post_at::<_, Template>(&format!("{path}/unpublish"), &json!({}), &no_opts()).await;
    assert_eq!(status_code(&e.unwrap_err()), (Some(403), Some("permission_denied")));
    let withdrawn: Template = app.admin.post_at(&format!("{path}/unpublish"), &json!({}), &no_opts()).await.unwrap();
    assert!(!withdrawn.published);
    assert_eq!(withdrawn.version, template.version + 1);

    // Invisible to tenants, refused for new VMs; provider staff still see it.
    assert_eq!(client.get_at::<Template>(&path).await.unwrap_err().status(), Some(404));
    let listed: Page<Template> = client.get_at("/v1/templates").await.unwrap();
    assert!(listed.items.iter().all(|t| t.id != template.id));
    let body =
        CreateVm { name: "after".into(), cluster_id: cluster.id, template_id: template.id, ..Default::default() };
    let e = client.post_at::<_, Operation>("/v1/vms", &body, &no_opts()).await.unwrap_err();
    assert_eq!(status_code(&e), (Some(422), Some("invalid_reference")));
    let staff: Template = app.admin.get_at(&path).await.unwrap();
    assert!(!staff.published);
    // The VM made from it keeps running and keeps its reference.
    let v: Vm = client.get_at(&format!("/v1/vms/{vm}")).await.unwrap();
    assert_eq!((v.state, v.template_id), (VmState::Running, template.id));

    // Unpublishing twice changes nothing; publishing brings it back.
    let again: Template = app.admin.post_at(&format!("{path}/unpublish"), &json!({}), &no_opts()).await.unwrap();
    assert_eq!(again.version, withdrawn.version);
    let back: Template = app.admin.post_at(&format!("{path}/publish"), &json!({}), &no_opts()).await.unwrap();
    assert!(back.published);
    assert_eq!(client.get_at::<Template>(&path).await.unwrap().id, template.id);
    running_vm(&client, "after", cluster.id, template.id).await;
    let events = app.admin.list_audit_events("action=template.unpublish").await.unwrap();
    assert_eq!(events.items.len(), 1);

    // A tenant's private template is not the provider's to publish: it does not exist at system scope.
    let private: Template = client
        .post_at(
            "/v1/templates",
            &CreateTemplate { name: "mine".into(), vcpus: 1, memory_mib: 128, ..Default::default() },
            &no_opts(),
        )
        .await
        .unwrap();
    let e = app
        .admin
        .post_at::<_, Template>(&format!("/v1/templates/{}/unpublish", private.id), &json!({}), &no_opts())
        .await;
    assert_eq!(e.unwrap_err().status(), Some(404));
    app.stop().await;
}

/// The host (of two) that a cluster's VMs were placed on.
async fn busy_host(app: &TestApp, cluster: Uuid) -> (Host, Host) {
    let hosts: Vec<Host> = app.admin.get_at(&format!("/v1/clusters/{cluster}/hosts")).await.unwrap();
    let (busy, idle): (Vec<Host>, Vec<Host>) = hosts.into_iter().partition(|h| h.vms > 0);
    assert_eq!((busy.len(), idle.len()), (1, 1), "the VMs are on one host");
    (busy[0].clone(), idle[0].clone())
}

#[tokio::test]
async fn evacuating_a_host_drains_it_and_reports_every_vm_that_cannot_move() {
    let app = TestApp::spawn().await;
    let (acme, _, client) = app.tenant_with_user("acme").await;
    // One host first, so both VMs land on it; then a spare joins.
    let cluster = cluster_with_quota(&app, &[HOST], &acme, 8, 4096).await;
    let template = public_template(&app, "tiny").await;
    let a = running_vm(&client, "a", cluster.id, template.id).await;
    let b = running_vm(&client, "b", cluster.id, template.id).await;
    let cpath = format!("/v1/clusters/{}", cluster.id);
    let _: Cluster = app.admin.patch_at(&cpath, &json!({ "hosts": [HOST, SPARE] }), &no_opts()).await.unwrap();
    let (busy, idle) = busy_host(&app, cluster.id).await;

    let e =
        client.post_at::<_, Operation>(&format!("{cpath}/hosts/{}/evacuate", busy.id), &json!({}), &no_opts()).await;
    assert_eq!(status_code(&e.unwrap_err()), (Some(403), Some("permission_denied")));
    let op: Operation =
        app.admin.post_at(&format!("{cpath}/hosts/{}/evacuate", busy.id), &json!({}), &no_opts()).await.unwrap();
    assert_eq!(
        (op.kind.as_str(), op.target_type.as_str(), op.target_id, op.tenant_id),
        ("host.evacuate", "host", busy.id, None)
    );
    let op = app.admin.wait_operation(op.id, WAIT).await.unwrap();
    // libvirt's test driver cannot migrate: both VMs are reported, none is left silently.
    assert_eq!(op.status, OperationStatus::Failed);
    let error = op.error.expect("an error");
    assert_eq!(error["code"], "evacuation_incomplete");
    let mut unmoved: Vec<(String, String)> = error["details"]["unmoved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["vm_id"].as_str().unwrap().to_string(), u["code"].as_str().unwrap().to_string()))
        .collect();
    unmoved.sort();
    let mut want = vec![
        (a.to_string(), "migration_unsupported".to_string()),
        (b.to_string(), "migration_unsupported".to_string()),
    ];
    want.sort();
    assert_eq!(unmoved, want);
    assert_eq!(error["details"]["moved"], json!([]));

    // The host is drained, the VMs run where they were, and the tenant sees why each stayed.
    let host: Host = app.admin.get_at(&format!("{cpath}/hosts/{}", busy.id)).await.unwrap();
    assert_eq!((host.state.as_str(), host.vms), ("draining", 2));
    for vm in [a, b] {
        let v: Vm = client.get_at(&format!("/v1/vms/{vm}")).await.unwrap();
        assert_eq!(v.state, VmState::Running);
    }
    let ops: Page<Operation> = client.get_at("/v1/operations").await.unwrap();
    let migrations: Vec<&Operation> = ops.items.iter().filter(|o| o.kind == "vm.migrate").collect();
    assert_eq!(migrations.len(), 2);
    assert!(migrations.iter().all(|o| o.status == OperationStatus::Failed));
    let events = client.list_audit_events("action=vm.migrate").await.unwrap();
    assert!(events.items.iter().all(|e| e.actor_name == "host-evacuation"));

    // An empty host evacuates at once; an unknown one is a 404.
    let op: Operation =
        app.admin.post_at(&format!("{cpath}/hosts/{}/evacuate", idle.id), &json!({}), &no_opts()).await.unwrap();
    let op = app.admin.wait_operation(op.id, WAIT).await.unwrap();
    assert_eq!((op.status, op.progress), (OperationStatus::Succeeded, 100));
    let e = app
        .admin
        .post_at::<_, Operation>(&format!("{cpath}/hosts/{}/evacuate", Uuid::now_v7()), &json!({}), &no_opts())
        .await;
    assert_eq!(e.unwrap_err().status(), Some(404));
    app.stop().await;
}

#[tokio::test]
async fn a_second_evacuation_of_the_same_host_waits_for_the_first() {
    let app = TestApp::spawn().await;
    let (acme, _, _) = app.tenant_with_user("acme").await;
    let cluster = cluster_with_quota(&app, &[HOST], &acme, 8, 4096).await;
    let hosts: Vec<Host> = app.admin.get_at(&format!("/v1/clusters/{}/hosts", cluster.id)).await.unwrap();
    // An evacuation in progress (as another replica would have it).
    let mut db = app.db.admin().await;
    sqlx::query(
        "INSERT INTO operations (id, tenant_id, kind, target_type, target_id, status) VALUES ($1, NULL, 'host.evacuate', 'host', $2, 'running')",
    )
    .bind(Uuid::now_v7())
    .bind(hosts[0].id)
    .execute(&mut db)
    .await
    .unwrap();
    let e = app
        .admin
        .post_at::<_, Operation>(
            &format!("/v1/clusters/{}/hosts/{}/evacuate", cluster.id, hosts[0].id),
            &json!({}),
            &no_opts(),
        )
        .await;
    assert_eq!(status_code(&e.unwrap_err()), (Some(409), Some("evacuation_running")));
    app.stop().await;
}

#[tokio::test]
async fn cluster_capacity_sums_hosts_allocations_and_the_quotas_handed_out() {
    let app = TestApp::spawn().await;
    let (acme, _, client) = app.tenant_with_user("acme").await;
    let (globex, _, _) = app.tenant_with_user("globex").await;
    let cluster = cluster_with_quota(&app, &[HOST, SPARE], &acme, 6, 2048).await;
    let quota = CreateQuota {
        tenant_id: globex.id,
        cluster_id: cluster.id,
        vcpus: 10,
        memory_mib: 1024,
        max_vms: 3,
        disk_gib: None,
    };
    let _: Quota = app.admin.post_at("/v1/quotas", &quota, &no_opts()).await.unwrap();
    let template = public_template(&app, "tiny").await;
    running_vm(&client, "web", cluster.id, template.id).await;

    let path = format!("/v1/clusters/{}/capacity", cluster.id);
    let cap: ClusterCapacity = app.admin.get_at(&path).await.expect("capacity");
    let hosts: Vec<Host> = app.admin.get_at(&format!("/v1/clusters/{}/hosts", cluster.id)).await.unwrap();
    let total: i64 = hosts.iter().map(|h| i64::from(h.vcpus)).sum();
    let memory: i64 = hosts.iter().map(|h| h.memory_mib).sum();
    assert_eq!(cap.hosts.len(), 2);
    assert_eq!((cap.vcpus_total, cap.vcpus_allocated, cap.vcpus_free), (total, 1, total - 1));
    assert_eq!((cap.memory_mib_total, cap.memory_mib_allocated, cap.memory_mib_free), (memory, 128, memory - 128));
    assert_eq!((cap.quotas, cap.quota_vcpus, cap.quota_memory_mib, cap.quota_max_vms), (2, 16, 3072, 7));
    assert_eq!((cap.quota_vcpus_used, cap.quota_memory_mib_used), (1, 128));
    assert_eq!(cap.vcpu_overcommit, Some(16.0 / total as f64));
    assert_eq!(cap.memory_overcommit, Some(3072.0 / memory as f64));
    assert!(cap.hosts.iter().all(|h| !h.drained));
    assert_eq!(cap.vcpus_schedulable_free, cap.vcpus_free);

    // A drained host counts in the totals, not in what new VMs can get.
    let busy = cap.hosts.iter().find(|h| h.vms == 1).unwrap();
    let _: Host = app
        .admin
        .post_at(&format!("/v1/clusters/{}/hosts/{}/drain", cluster.id, busy.host_id), &json!({}), &no_opts())
        .await
        .unwrap();
    let cap: ClusterCapacity = app.admin.get_at(&path).await.unwrap();
    assert!(cap.hosts.iter().find(|h| h.host_id == busy.host_id).unwrap().drained);
    assert_eq!(cap.vcpus_schedulable_free, cap.vcpus_free - busy.vcpus_free);

    let e = client.get_at::<ClusterCapacity>(&path).await.unwrap_err();
    assert_eq!(status_code(&e), (Some(403), Some("permission_denied")));
    let e = app.admin.get_at::<ClusterCapacity>(&format!("/v1/clusters/{}/capacity", Uuid::now_v7())).await;
    assert_eq!(e.unwrap_err().status(), Some(404));
    app.stop().await;
}

/// Inserts a system operation as another process would have it.
async fn system_operation(app: &TestApp, kind: &str, target: Uuid, status: &str) -> Uuid {
    let id = Uuid::now_v7();
    let mut db = app.db.admin().await;
    sqlx::query(
        "INSERT INTO operations (id, tenant_id, kind, target_type, target_id, status) VALUES ($1, NULL, $2, 'host', $3, $4)",
    )
    .bind(id)
    .bind(kind)
    .bind(target)
    .bind(status)
    .execute(&mut db)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn only_what_can_stop_safely_is_cancelled() {
    let app = TestApp::spawn().await;
    let (acme, _, client) = app.tenant_with_user("acme").await;
    let cluster = cluster_with_quota(&app, &[HOST], &acme, 8, 4096).await;
    let hosts: Vec<Host> = app.admin.get_at(&format!("/v1/clusters/{}/hosts", cluster.id)).await.unwrap();
    let host = hosts[0].id;
    let cancel = |id: Uuid| {
        let admin = app.admin.clone();
        async move { admin.post_at::<_, Operation>(&format!("/v1/operations/{id}/cancel"), &json!({}), &no_opts()).await }
    };

    // Not started: ends at once.
    let pending = system_operation(&app, "host.evacuate", host, "pending").await;
    let op = cancel(pending).await.expect("cancel a pending evacuation");
    assert_eq!(op.status, OperationStatus::Failed);
    assert_eq!(op.error.as_ref().unwrap()["code"], "cancelled");
    // Finished: 409.
    let e = cancel(pending).await.unwrap_err();
    assert_eq!(status_code(&e), (Some(409), Some("operation_finished")));

    // Running: asked to stop; the work stops before its next VM.
    let template = public_template(&app, "tiny").await;
    let vm = running_vm(&client, "web", cluster.id, template.id).await;
    let running = system_operation(&app, "host.evacuate", host, "running").await;
    let op = cancel(running).await.expect("cancel a running evacuation");
    assert_eq!(op.status, OperationStatus::Running, "it stops at its next safe point");
    let work = basalt_server::compute::evacuate::Evacuation {
        db: app.state.db.clone(),
        compute: app.state.compute.clone(),
        op: running,
        cluster: cluster.id,
        host,
        actor: Uuid::now_v7(),
    };
    let stopped = basalt_server::compute::evacuate::run(work).await.unwrap_err();
    assert_eq!(stopped.code(), "cancelled");
    let ops: Page<Operation> = client.get_at("/v1/operations").await.unwrap();
    assert!(ops.items.iter().all(|o| o.kind != "vm.migrate"), "no VM was touched after the cancel");
    assert_eq!(client.get_at::<Vm>(&format!("/v1/vms/{vm}")).await.unwrap().state, VmState::Running);

    // Other kinds run one hypervisor call and cannot stop safely.
    let other = system_operation(&app, "host.rebuild", host, "running").await;
    let e = cancel(other).await.unwrap_err();
    assert_eq!(status_code(&e), (Some(409), Some("not_cancellable")));

    // A tenant's operation does not exist at system scope; tenants cannot cancel.
    let e = cancel(ops.items[0].id).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = client
        .post_at::<_, Operation>(&format!("/v1/operations/{}/cancel", ops.items[0].id), &json!({}), &no_opts())
        .await;
    assert_eq!(status_code(&e.unwrap_err()), (Some(403), Some("permission_denied")));
    let events = app.admin.list_audit_events("action=operation.cancel").await.unwrap();
    assert_eq!(events.items.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn notices_are_written_by_the_provider_and_read_by_every_tenant() {
    let app = TestApp::spawn().await;
    let (_, _, acme) = app.tenant_with_user("acme").await;
    let (_, _, globex) = app.tenant_with_user("globex").await;
    let regions: Page<basalt_client::Region> = app.admin.get_at("/v1/regions").await.unwrap();
    let region = regions.items[0].id;
    let starts_at = chrono::Utc::now() + chrono::Duration::days(1);
    let body = CreateNotice {
        title: "Planned maintenance".into(),
        body: "Hosts reboot one at a time.\nExpect live migrations.".into(),
        severity: NoticeSeverity::Warning,
        starts_at,
        ends_at: Some(starts_at + chrono::Duration::hours(2)),
        region_id: Some(region),
    };
    let e = acme.post_at::<_, Notice>("/v1/notices", &body, &no_opts()).await.unwrap_err();
    assert_eq!(status_code(&e), (Some(403), Some("permission_denied")));
    let notice: Notice = app.admin.post_at("/v1/notices", &body, &no_opts()).await.expect("notice");
    let estate: Notice = app
        .admin
        .post_at(
            "/v1/notices",
            &CreateNotice {
                title: "Incident".into(),
                body: String::new(),
                severity: NoticeSeverity::Critical,
                starts_at: chrono::Utc::now() - chrono::Duration::hours(3),
                ends_at: Some(chrono::Utc::now() - chrono::Duration::hours(1)),
                region_id: None,
            },
            &no_opts(),
        )
        .await
        .unwrap();

    // Every tenant reads every notice; the `current` filter leaves out ended ones.
    for tenant in [&acme, &globex] {
        let all: Page<Notice> = tenant.get_at("/v1/notices").await.unwrap();
        assert_eq!(all.items.len(), 2);
        let current: Page<Notice> = tenant.get_at("/v1/notices?current=true").await.unwrap();
        assert_eq!(current.items.iter().map(|n| n.id).collect::<Vec<_>>(), vec![notice.id]);
        let read: Notice = tenant.get_at(&format!("/v1/notices/{}", notice.id)).await.unwrap();
        assert_eq!(read, notice);
    }
    let by_region: Page<Notice> = acme.get_at(&format!("/v1/notices?region_id={}", Uuid::now_v7())).await.unwrap();
    assert_eq!(
        by_region.items.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![estate.id],
        "estate-wide notices concern every region"
    );

    // Tenants change nothing.
    let path = format!("/v1/notices/{}", notice.id);
    let e = acme
        .patch_at::<_, Notice>(&path, &UpdateNotice { title: Some("x".into()), ..Default::default() }, &no_opts())
        .await;
    assert_eq!(e.unwrap_err().status(), Some(403));
    assert_eq!(acme.delete_at(&path).await.unwrap_err().status(), Some(403));

    // Staff update with If-Match, clear the end, then withdraw.
    let stale = RequestOptions { if_match: Some(notice.version + 5), ..Default::default() };
    let e = app.admin.patch_at::<_, Notice>(&path, &json!({ "severity": "critical" }), &stale).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    let fresh = RequestOptions { if_match: Some(notice.version), ..Default::default() };
    let updated: Notice =
        app.admin.patch_at(&path, &json!({ "severity": "critical", "ends_at": null }), &fresh).await.unwrap();
    assert_eq!((updated.severity, updated.ends_at, updated.region_id), (NoticeSeverity::Critical, None, Some(region)));
    let before_start = (starts_at - chrono::Duration::hours(1)).to_rfc3339();
    let e = app.admin.patch_at::<_, Notice>(&path, &json!({ "ends_at": before_start }), &no_opts()).await;
    assert_eq!(e.unwrap_err().status(), Some(400), "an end before the start is no window");
    app.admin.delete_at(&path).await.expect("delete");
    assert_eq!(acme.get_at::<Notice>(&path).await.unwrap_err().status(), Some(404));
    let events = app.admin.list_audit_events("action=notice.update").await.unwrap();
    assert_eq!(events.items[0].details["before"]["severity"], "warning");
    app.stop().await;
}

#[tokio::test]
async fn console_sessions_are_listed_without_secrets_and_revoked() {
    let app = TestApp::spawn().await;
    let (acme, _, client) = app.tenant_with_user("acme").await;
    let (_, _, globex) = app.tenant_with_user("globex").await;
    let cluster = cluster_with_quota(&app, &[HOST], &acme, 8, 4096).await;
    let template = public_template(&app, "tiny").await;
    let vm = running_vm(&client, "web", cluster.id, template.id).await;
    let sessions = format!("/v1/vms/{vm}/console-sessions");

    let t1: ConsoleTicket = client.post_at(&format!("/v1/vms/{vm}/console"), &json!({}), &no_opts()).await.unwrap();
    let t2: ConsoleTicket = client.post_at(&format!("/v1/vms/{vm}/console"), &json!({}), &no_opts()).await.unwrap();
    let listed: Vec<ConsoleSession> = client.get_at(&sessions).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s.state == "ticket" && s.vm_id == vm && s.opened_at.is_none()));
    let raw = app
        .http()
        .get(format!("{}{sessions}", app.endpoint))
        .bearer_auth(client.token().unwrap())
        .send()
        .await
        .unwrap();
    let raw = raw.text().await.unwrap();
    for t in [&t1, &t2] {
        let secret = t.ticket.rsplit('_').next().unwrap();
        assert!(!raw.contains(secret), "a ticket's secret is listed");
    }
    // Another tenant sees no VM, so no sessions, and revokes nothing.
    assert_eq!(globex.get_at::<Vec<ConsoleSession>>(&sessions).await.unwrap_err().status(), Some(404));
    let first = listed[0].id;
    assert_eq!(globex.delete_at(&format!("{sessions}/{first}")).await.unwrap_err().status(), Some(404));

    // A revoked ticket no longer opens the console.
    let ticket_of = |id: Uuid| if t1.url.contains(&id.simple().to_string()) { &t1 } else { &t2 };
    let revoked = ticket_of(first);
    client.delete_at(&format!("{sessions}/{first}")).await.expect("revoke");
    let ws = format!("{}{}", app.endpoint.replace("http://", "ws://"), revoked.url);
    match tokio_tungstenite::connect_async(ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("a revoked ticket opened the console: {:?}", other.map(|_| ())),
    }
    let listed: Vec<ConsoleSession> = client.get_at(&sessions).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(client.delete_at(&format!("{sessions}/{first}")).await.unwrap_err().status(), Some(404));

    // An open session (on whichever replica serves it) is listed as open, and revoking it marks it for its socket.
    let second = listed[0].id;
    let mut db = app.db.admin().await;
    sqlx::query("UPDATE console_tickets SET used_at = now() WHERE id = $1")
        .bind(second)
        .execute(&mut db)
        .await
        .unwrap();
    let listed: Vec<ConsoleSession> = client.get_at(&sessions).await.unwrap();
    assert_eq!((listed[0].state.as_str(), listed[0].opened_at.is_some()), ("open", true));
    client.delete_at(&format!("{sessions}/{second}")).await.expect("revoke the open session");
    let (revoked_at,): (Option<chrono::DateTime<chrono::Utc>>,) =
        sqlx::query_as("SELECT revoked_at FROM console_tickets WHERE id = $1")
            .bind(second)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(revoked_at.is_some());
    assert!(client.get_at::<Vec<ConsoleSession>>(&sessions).await.unwrap().is_empty());
    let events = client.list_audit_events("action=vm.console.revoke").await.unwrap();
    assert_eq!(events.items.len(), 2);

    // A ticket spent on a console the host cannot serve (the test driver has none) is closed, not left open.
    let t3: ConsoleTicket = client.post_at(&format!("/v1/vms/{vm}/console"), &json!({}), &no_opts()).await.unwrap();
    let ws = format!("{}{}", app.endpoint.replace("http://", "ws://"), t3.url);
    assert!(tokio_tungstenite::connect_async(ws).await.is_err());
    assert!(client.get_at::<Vec<ConsoleSession>>(&sessions).await.unwrap().is_empty());
    app.stop().await;
}
