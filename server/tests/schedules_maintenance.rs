//! Snapshot schedules and maintenance windows through the API, on libvirt's
//! test driver and a real Postgres.
//!
//! Schedules: the job (driven directly with `compute::schedules::run_due`, no
//! waiting) runs a due, enabled schedule, takes a snapshot and prunes the
//! schedule's own snapshots to `keep` (a hand-made one stays); a run by hand
//! does the same; another tenant sees nothing; a cluster delegate sees its
//! cluster's only; deleting the VM deletes its schedules; bad input writes nothing.
//!
//! Maintenance windows: provider staff announce one per cluster; a tenant
//! reads those of the clusters it holds a quota on, and no other; a cluster
//! delegate those of its cluster; tenants write none; bad input writes nothing.

mod common;

use std::time::Duration;

use basalt_client::{
    Client, ClientError, Cluster, CreateCluster, CreateMaintenanceWindow, CreateQuota, CreateRoleBinding,
    CreateSnapshot, CreateSnapshotSchedule, CreateTemplate, CreateUser, CreateVmRequest, MaintenanceState,
    MaintenanceWindow, Operation, OperationStatus, Page, RequestOptions, Snapshot, SnapshotSchedule, Template, Tenant,
};
use basalt_server::compute::schedules::{self, Report};
use chrono::Utc;
use common::TestApp;
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

fn no_opts() -> RequestOptions {
    RequestOptions::default()
}

fn if_match(version: i64) -> RequestOptions {
    RequestOptions { if_match: Some(version), ..Default::default() }
}

fn code(e: &ClientError) -> (Option<u16>, Option<&str>) {
    (e.status(), e.code())
}

struct World {
    app: TestApp,
    west: Cluster,
    east: Cluster,
    tenant: Tenant,
    client: Client,
    template: Template,
}

async fn cluster(app: &TestApp, name: &str) -> Cluster {
    let body = CreateCluster {
        name: name.into(),
        hosts: vec![format!("test:///default?name=sched-{name}")],
        ..Default::default()
    };
    app.admin.post_at("/v1/clusters", &body, &no_opts()).await.expect("cluster")
}

async fn quota(app: &TestApp, tenant: &Tenant, cluster: &Cluster) {
    let body = CreateQuota {
        tenant_id: tenant.id,
        cluster_id: cluster.id,
        vcpus: 16,
        memory_mib: 8192,
        max_vms: 4,
        disk_gib: None,
    };
    let _: basalt_client::Quota = app.admin.post_at("/v1/quotas", &body, &no_opts()).await.expect("quota");
}

/// Two clusters; tenant `acme` holds a quota on both.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let (west, east) = (cluster(&app, "west").await, cluster(&app, "east").await);
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    quota(&app, &tenant, &west).await;
    quota(&app, &tenant, &east).await;
    let body = CreateTemplate { name: "tiny".into(), vcpus: 1, memory_mib: 128, ..Default::default() };
    let template: Template = app.admin.post_at("/v1/templates", &body, &no_opts()).await.expect("template");
    World { app, west, east, tenant, client, template }
}

async fn make_vm(w: &World, name: &str, cluster: &Cluster) -> Uuid {
    let body =
        CreateVmRequest { name: name.into(), cluster_id: cluster.id, template_id: w.template.id, ..Default::default() };
    let op: Operation = w.client.post_at("/v1/vms", &body, &no_opts()).await.expect("create vm");
    let op = w.client.wait_operation(op.id, WAIT).await.expect("poll");
    assert_eq!(op.status, OperationStatus::Succeeded, "{:?}", op.error);
    op.target_id
}

fn schedule_body(vm: Uuid, name: &str, keep: i32) -> CreateSnapshotSchedule {
    CreateSnapshotSchedule { vm_id: vm, name: name.into(), interval_minutes: 60, keep, ..Default::default() }
}

/// A user `username` of acme bound to the built-in `role` on `cluster`, logged in.
async fn delegate(w: &World, username: &str, role: &str, cluster: &Cluster) -> Client {
    let inside = w.app.admin_in(&w.tenant).await;
    let body = CreateUser { username: username.into(), password: Some(common::PASSWORD.into()), ..Default::default() };
    let user = inside.create_user(&body, &no_opts()).await.unwrap();
    let bind = CreateRoleBinding {
        role_id: basalt_server::authz::builtin_role_named(role).unwrap().id,
        user_id: Some(user.id),
        cluster_id: Some(cluster.id),
        ..Default::default()
    };
    w.client.create_role_binding(&bind, &no_opts()).await.unwrap();
    w.app.login(username, Some("acme")).await
}

/// Makes every schedule due now (the admin connection bypasses RLS).
async fn make_due(app: &TestApp) {
    let mut conn = app.db.admin().await;
    sqlx::query("UPDATE snapshot_schedules SET next_run_at = now() - interval '1 minute'")
        .execute(&mut conn)
        .await
        .unwrap();
}

/// One pass of the job (retried if the server's own tick holds the lock).
async fn pass(app: &TestApp) -> Report {
    for _ in 0..50 {
        if let Some(report) = schedules::run_due(&app.state).await.expect("schedule pass") {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the schedule lock stayed taken");
}

/// The tenants the schedule job visits (`job_tenants`).
async fn visited(app: &TestApp) -> Vec<Uuid> {
    let mut conn = app.db.admin().await;
    let rows: Vec<(Uuid,)> =
        sqlx::query_as("SELECT tenant_id FROM job_tenants WHERE job = 'snapshot_schedules' ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    rows.into_iter().map(|(t,)| t).collect()
}

async fn snapshots(client: &Client, vm: Uuid) -> Vec<Snapshot> {
    let page: Page<Snapshot> = client.get_at(&format!("/v1/vms/{vm}/snapshots")).await.unwrap();
    page.items
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let mut conn = app.db.admin().await;
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut conn).await.unwrap();
    n
}

#[tokio::test]
async fn a_due_schedule_takes_snapshots_and_prunes_its_own_to_keep() {
    let w = world().await;
    let vm = make_vm(&w, "web", &w.west).await;
    let by_hand: Snapshot = w
        .client
        .post_at(&format!("/v1/vms/{vm}/snapshots"), &CreateSnapshot { name: "manual".into() }, &no_opts())
        .await
        .unwrap();
    let s: SnapshotSchedule =
        w.client.post_at("/v1/snapshot-schedules", &schedule_body(vm, "hourly", 2), &no_opts()).await.unwrap();
    assert!(s.enabled && s.next_run_at > Utc::now() + chrono::Duration::minutes(59), "{s:?}");
    assert!(s.last_run_at.is_none());

    // Not due yet: the job leaves it.
    assert!(pass(&w.app).await.ran.is_empty());

    let mut taken = Vec::new();
    for round in 1..=3 {
        make_due(&w.app).await;
        let report = pass(&w.app).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(report.ran.len(), 1, "round {round}");
        let (id, outcome) = &report.ran[0];
        assert_eq!(*id, s.id);
        assert_eq!(outcome.snapshot.schedule_id, Some(s.id));
        taken.push(outcome.snapshot.id);
        // The third run prunes the first: keep is 2.
        let expect_pruned = if round == 3 { vec![taken[0]] } else { vec![] };
        assert_eq!(outcome.pruned, expect_pruned, "round {round}");
    }
    let mut listed: Vec<Uuid> = snapshots(&w.client, vm).await.iter().map(|x| x.id).collect();
    listed.sort();
    let mut expect = vec![by_hand.id, taken[1], taken[2]];
    expect.sort();
    assert_eq!(listed, expect, "the hand-made snapshot stays; the schedule keeps its newest two");

    let after: SnapshotSchedule = w.client.get_at(&format!("/v1/snapshot-schedules/{}", s.id)).await.unwrap();
    assert!(after.last_run_at.is_some() && after.last_error.is_none(), "{after:?}");
    assert!(after.next_run_at > Utc::now() + chrono::Duration::minutes(59), "moved one interval on");
    let mut conn = w.app.db.admin().await;
    let (runs, actor): (i64, Option<String>) = sqlx::query_as(
        "SELECT count(*), max(actor_name) FROM audit_events WHERE action = 'snapshot_schedule.run' AND target_id = $1",
    )
    .bind(s.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((runs, actor.as_deref()), (3, Some("snapshot-scheduler")));
    let (pruned,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM audit_events WHERE action = 'snapshot.delete' AND target_id = $1")
            .bind(taken[0])
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(pruned, 1);

    // The job visits acme (its schedule is enabled), and no longer once it is paused.
    assert_eq!(visited(&w.app).await, vec![w.tenant.id]);
    // A paused schedule does not run, even when due.
    let paused: SnapshotSchedule = w
        .client
        .patch_at(&format!("/v1/snapshot-schedules/{}", s.id), &json!({ "enabled": false }), &if_match(after.version))
        .await
        .unwrap();
    assert!(!paused.enabled);
    assert!(visited(&w.app).await.is_empty(), "no enabled schedule, nobody to visit");
    make_due(&w.app).await;
    assert!(pass(&w.app).await.ran.is_empty());

    // Running by hand: the same snapshot and pruning, audited as the user.
    let now: Snapshot =
        w.client.post_at(&format!("/v1/snapshot-schedules/{}/run", s.id), &json!({}), &no_opts()).await.unwrap();
    assert_eq!(now.schedule_id, Some(s.id));
    let mine: Vec<Uuid> =
        snapshots(&w.client, vm).await.iter().filter(|x| x.schedule_id == Some(s.id)).map(|x| x.id).collect();
    assert_eq!(mine.len(), 2);
    assert!(mine.contains(&now.id) && !mine.contains(&taken[1]));
    let (actor,): (String,) = sqlx::query_as(
        "SELECT actor_name FROM audit_events WHERE action = 'snapshot_schedule.run' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(actor, "admin");

    // Deleting the schedule keeps its snapshots (as hand-made ones).
    w.client.delete_at(&format!("/v1/snapshot-schedules/{}", s.id)).await.unwrap();
    assert_eq!(snapshots(&w.client, vm).await.len(), 3);
    assert!(snapshots(&w.client, vm).await.iter().all(|x| x.schedule_id.is_none()));
    w.app.stop().await;
}

#[tokio::test]
async fn schedules_are_a_tenants_follow_their_vm_and_their_cluster() {
    let w = world().await;
    let west_vm = make_vm(&w, "web", &w.west).await;
    let east_vm = make_vm(&w, "db", &w.east).await;
    let west_s: SnapshotSchedule =
        w.client.post_at("/v1/snapshot-schedules", &schedule_body(west_vm, "west-s", 3), &no_opts()).await.unwrap();
    let east_s: SnapshotSchedule =
        w.client.post_at("/v1/snapshot-schedules", &schedule_body(east_vm, "east-s", 3), &no_opts()).await.unwrap();
    let west_path = format!("/v1/snapshot-schedules/{}", west_s.id);

    // Filter by VM.
    let only: Page<SnapshotSchedule> =
        w.client.get_at(&format!("/v1/snapshot-schedules?vm_id={east_vm}")).await.unwrap();
    assert_eq!(only.items.iter().map(|s| s.id).collect::<Vec<_>>(), vec![east_s.id]);

    // Update with If-Match: a stale version is refused.
    let changed: SnapshotSchedule = w
        .client
        .patch_at(&west_path, &json!({ "keep": 5, "interval_minutes": 30 }), &if_match(west_s.version))
        .await
        .unwrap();
    assert_eq!((changed.keep, changed.interval_minutes), (5, 30));
    assert!(changed.next_run_at < west_s.next_run_at, "a new interval counts from now");
    let e = w
        .client
        .patch_at::<_, SnapshotSchedule>(&west_path, &json!({ "keep": 4 }), &if_match(west_s.version))
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("version_mismatch")));

    // Another tenant: nothing of acme's exists.
    let (globex_t, _, globex) = w.app.tenant_with_user("globex").await;
    quota(&w.app, &globex_t, &w.west).await;
    assert_eq!(globex.get_at::<SnapshotSchedule>(&west_path).await.unwrap_err().status(), Some(404));
    let e = globex.patch_at::<_, SnapshotSchedule>(&west_path, &json!({ "keep": 1 }), &no_opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(globex.delete_at(&west_path).await.unwrap_err().status(), Some(404));
    let e = globex.post_at::<_, Snapshot>(&format!("{west_path}/run"), &json!({}), &no_opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let listed: Page<SnapshotSchedule> = globex.get_at("/v1/snapshot-schedules").await.unwrap();
    assert!(listed.items.is_empty());
    let e = globex
        .post_at::<_, SnapshotSchedule>("/v1/snapshot-schedules", &schedule_body(west_vm, "theirs", 1), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(422), Some("invalid_reference")));

    // A cluster-admin on west sees and changes west's schedules only.
    let ops = delegate(&w, "ops", "cluster-admin", &w.west).await;
    let seen: Page<SnapshotSchedule> = ops.get_at("/v1/snapshot-schedules").await.unwrap();
    assert_eq!(seen.items.iter().map(|s| s.id).collect::<Vec<_>>(), vec![west_s.id]);
    let east_path = format!("/v1/snapshot-schedules/{}", east_s.id);
    assert_eq!(ops.get_at::<SnapshotSchedule>(&east_path).await.unwrap_err().status(), Some(404));
    let e = ops.post_at::<_, Snapshot>(&format!("{east_path}/run"), &json!({}), &no_opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = ops
        .post_at::<_, SnapshotSchedule>("/v1/snapshot-schedules", &schedule_body(east_vm, "sneaky", 1), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(422), Some("invalid_reference")));
    let _: SnapshotSchedule =
        ops.post_at("/v1/snapshot-schedules", &schedule_body(west_vm, "ops-s", 1), &no_opts()).await.unwrap();

    // A cluster-operator (no deletions) cannot set a retention, which prunes,
    // but may run a schedule set up by someone who could.
    let op = delegate(&w, "op", "cluster-operator", &w.west).await;
    let e = op
        .post_at::<_, SnapshotSchedule>("/v1/snapshot-schedules", &schedule_body(west_vm, "op-s", 1), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(403), Some("permission_denied")));
    let e = op.patch_at::<_, SnapshotSchedule>(&west_path, &json!({ "keep": 1 }), &no_opts()).await.unwrap_err();
    assert_eq!(code(&e), (Some(403), Some("permission_denied")));
    let renamed: SnapshotSchedule = op.patch_at(&west_path, &json!({ "name": "nightly" }), &no_opts()).await.unwrap();
    assert_eq!(renamed.name, "nightly");
    let now: Snapshot = op.post_at(&format!("{west_path}/run"), &json!({}), &no_opts()).await.unwrap();
    assert_eq!(now.vm_id, west_vm);

    // Deleting a VM deletes its schedules: the job has nothing left to run.
    let op = w.client.delete_at(&format!("/v1/vms/{east_vm}")).await.unwrap().expect("an operation");
    let op = w.client.wait_operation(op.id, WAIT).await.unwrap();
    assert_eq!(op.status, OperationStatus::Succeeded, "{:?}", op.error);
    assert_eq!(w.client.get_at::<SnapshotSchedule>(&east_path).await.unwrap_err().status(), Some(404));
    make_due(&w.app).await;
    let report = pass(&w.app).await;
    assert!(report.ran.iter().all(|(id, _)| *id != east_s.id), "{report:?}");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    w.app.stop().await;
}

#[tokio::test]
async fn bad_schedules_are_refused_and_write_nothing() {
    let w = world().await;
    let vm = make_vm(&w, "web", &w.west).await;
    let before = count(&w.app, "snapshot_schedules").await;
    let bad = [
        (json!({ "vm_id": vm, "name": "a", "interval_minutes": 14, "keep": 1 }), 400, "invalid_field"),
        (json!({ "vm_id": vm, "name": "a", "interval_minutes": 10081, "keep": 1 }), 400, "invalid_field"),
        (json!({ "vm_id": vm, "name": "a", "interval_minutes": 60, "keep": 0 }), 400, "invalid_field"),
        (json!({ "vm_id": vm, "name": "a", "interval_minutes": 60, "keep": 101 }), 400, "invalid_field"),
        (json!({ "vm_id": vm, "name": "Bad Name", "interval_minutes": 60, "keep": 1 }), 400, "invalid_field"),
        (json!({ "vm_id": Uuid::now_v7(), "name": "a", "interval_minutes": 60, "keep": 1 }), 422, "invalid_reference"),
    ];
    // (Which field each names is checked in tests/bad_input.rs.)
    for (body, status, error) in bad {
        let e = w.client.post_at::<_, SnapshotSchedule>("/v1/snapshot-schedules", &body, &no_opts()).await.unwrap_err();
        assert_eq!(code(&e), (Some(status), Some(error)), "{body}: {e}");
    }
    let e = w
        .client
        .post_at::<_, SnapshotSchedule>(
            "/v1/snapshot-schedules",
            &json!({ "vm_id": vm, "name": "a", "interval_minutes": 60, "keep": 1, "cron": "* * *" }),
            &no_opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert_eq!(count(&w.app, "snapshot_schedules").await, before);
    assert_eq!(count(&w.app, "vm_snapshots").await, 0);
    w.app.stop().await;
}

fn window(cluster: &Cluster, title: &str) -> CreateMaintenanceWindow {
    let starts_at = Utc::now() + chrono::Duration::days(1);
    CreateMaintenanceWindow {
        cluster_id: cluster.id,
        title: title.into(),
        description: Some("kernel upgrades".into()),
        starts_at,
        ends_at: starts_at + chrono::Duration::hours(4),
    }
}

#[tokio::test]
async fn maintenance_windows_reach_the_tenants_of_their_cluster_only() {
    let app = TestApp::spawn().await;
    let (west, east) = (cluster(&app, "west").await, cluster(&app, "east").await);
    let west_w: MaintenanceWindow =
        app.admin.post_at("/v1/maintenance-windows", &window(&west, "west upgrade"), &no_opts()).await.unwrap();
    let east_w: MaintenanceWindow =
        app.admin.post_at("/v1/maintenance-windows", &window(&east, "east upgrade"), &no_opts()).await.unwrap();
    assert_eq!(west_w.state, MaintenanceState::Scheduled);
    let (west_path, east_path) =
        (format!("/v1/maintenance-windows/{}", west_w.id), format!("/v1/maintenance-windows/{}", east_w.id));

    // acme holds a quota on west: it reads west's window, and east's is a 404.
    let (acme_t, _, acme) = app.tenant_with_user("acme").await;
    quota(&app, &acme_t, &west).await;
    let seen: Page<MaintenanceWindow> = acme.get_at("/v1/maintenance-windows").await.unwrap();
    assert_eq!(seen.items.iter().map(|x| x.id).collect::<Vec<_>>(), vec![west_w.id]);
    assert_eq!(acme.get_at::<MaintenanceWindow>(&west_path).await.unwrap().title, "west upgrade");
    assert_eq!(acme.get_at::<MaintenanceWindow>(&east_path).await.unwrap_err().status(), Some(404));
    // Tenants write none.
    let e = acme
        .post_at::<_, MaintenanceWindow>("/v1/maintenance-windows", &window(&west, "x"), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    let e = acme
        .patch_at::<_, MaintenanceWindow>(&west_path, &json!({ "state": "cancelled" }), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));

    // initech holds no quota: it sees nothing.
    let (_, _, initech) = app.tenant_with_user("initech").await;
    let seen: Page<MaintenanceWindow> = initech.get_at("/v1/maintenance-windows").await.unwrap();
    assert!(seen.items.is_empty());
    assert_eq!(initech.get_at::<MaintenanceWindow>(&west_path).await.unwrap_err().status(), Some(404));

    // A delegate on west of a tenant on both clusters sees west's only.
    let (globex_t, _, globex) = app.tenant_with_user("globex").await;
    quota(&app, &globex_t, &west).await;
    quota(&app, &globex_t, &east).await;
    let seen: Page<MaintenanceWindow> = globex.get_at("/v1/maintenance-windows").await.unwrap();
    assert_eq!(seen.items.len(), 2);
    let inside = app.admin_in(&globex_t).await;
    let body = CreateUser { username: "ops".into(), password: Some(common::PASSWORD.into()), ..Default::default() };
    let user = inside.create_user(&body, &no_opts()).await.unwrap();
    let bind = CreateRoleBinding {
        role_id: basalt_server::authz::builtin_role_named("cluster-operator").unwrap().id,
        user_id: Some(user.id),
        cluster_id: Some(west.id),
        ..Default::default()
    };
    globex.create_role_binding(&bind, &no_opts()).await.unwrap();
    let ops = app.login("ops", Some("globex")).await;
    let seen: Page<MaintenanceWindow> = ops.get_at("/v1/maintenance-windows").await.unwrap();
    assert_eq!(seen.items.iter().map(|x| x.id).collect::<Vec<_>>(), vec![west_w.id]);
    assert_eq!(ops.get_at::<MaintenanceWindow>(&east_path).await.unwrap_err().status(), Some(404));

    // Provider staff cancel with If-Match; tenants see the change.
    let cancelled: MaintenanceWindow =
        app.admin.patch_at(&west_path, &json!({ "state": "cancelled" }), &if_match(west_w.version)).await.unwrap();
    assert_eq!(cancelled.state, MaintenanceState::Cancelled);
    let e = app
        .admin
        .patch_at::<_, MaintenanceWindow>(&west_path, &json!({ "title": "y" }), &if_match(west_w.version))
        .await
        .unwrap_err();
    assert_eq!(code(&e), (Some(409), Some("version_mismatch")));
    assert_eq!(acme.get_at::<MaintenanceWindow>(&west_path).await.unwrap().state, MaintenanceState::Cancelled);
    app.admin.delete_at(&east_path).await.unwrap();
    assert_eq!(globex.get_at::<MaintenanceWindow>(&east_path).await.unwrap_err().status(), Some(404));
    app.stop().await;
}

#[tokio::test]
async fn bad_maintenance_windows_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let west = cluster(&app, "west").await;
    let good = window(&west, "upgrade");
    let later = |h: i64| good.starts_at + chrono::Duration::hours(h);
    let bad = [
        (
            json!({ "cluster_id": west.id, "title": "t", "starts_at": good.starts_at, "ends_at": good.starts_at }),
            400,
            "invalid_field",
        ),
        (
            json!({ "cluster_id": west.id, "title": "t", "starts_at": good.starts_at, "ends_at": later(-1) }),
            400,
            "invalid_field",
        ),
        (
            json!({ "cluster_id": west.id, "title": "t", "starts_at": good.starts_at, "ends_at": later(24 * 7 + 1) }),
            400,
            "invalid_field",
        ),
        (
            json!({ "cluster_id": west.id, "title": " ", "starts_at": good.starts_at, "ends_at": later(1) }),
            400,
            "invalid_field",
        ),
        (
            json!({ "cluster_id": Uuid::now_v7(), "title": "t", "starts_at": good.starts_at, "ends_at": later(1) }),
            422,
            "invalid_reference",
        ),
        (
            json!({ "cluster_id": west.id, "title": "t", "starts_at": good.starts_at, "ends_at": later(1), "state": "done" }),
            400,
            "invalid_field",
        ),
    ];
    // (Which field each names is checked in tests/bad_input.rs.)
    for (body, status, error) in bad {
        let e =
            app.admin.post_at::<_, MaintenanceWindow>("/v1/maintenance-windows", &body, &no_opts()).await.unwrap_err();
        assert_eq!(code(&e), (Some(status), Some(error)), "{body}: {e}");
    }
    assert_eq!(count(&app, "maintenance_windows").await, 0);
    let made: MaintenanceWindow = app.admin.post_at("/v1/maintenance-windows", &good, &no_opts()).await.unwrap();
    let path = format!("/v1/maintenance-windows/{}", made.id);
    let e = app
        .admin
        .patch_at::<_, MaintenanceWindow>(&path, &json!({ "ends_at": later(-2) }), &no_opts())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    let e =
        app.admin.patch_at::<_, MaintenanceWindow>(&path, &json!({ "state": "over" }), &no_opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    let kept: MaintenanceWindow = app.admin.get_at(&path).await.unwrap();
    assert_eq!((kept.version, kept.ends_at), (made.version, made.ends_at));
    app.stop().await;
}

#[tokio::test]
async fn a_failed_or_busy_run_writes_no_snapshot_and_says_why() {
    let w = world().await;
    let vm = make_vm(&w, "web", &w.west).await;
    let s: SnapshotSchedule =
        w.client.post_at("/v1/snapshot-schedules", &schedule_body(vm, "hourly", 2), &no_opts()).await.unwrap();
    let mut conn = w.app.db.admin().await;

    // A VM busy with an operation: skipped, nothing written, still due.
    sqlx::query("UPDATE vms SET state = 'migrating' WHERE id = $1").bind(vm).execute(&mut conn).await.unwrap();
    make_due(&w.app).await;
    let report = pass(&w.app).await;
    assert!(report.ran.is_empty());
    assert!(report.failed.iter().any(|(id, e)| *id == s.id && e.contains("migrating")), "{:?}", report.failed);
    assert_eq!(count(&w.app, "vm_snapshots").await, 0);
    let (due,): (bool,) = sqlx::query_as("SELECT next_run_at <= now() FROM snapshot_schedules WHERE id = $1")
        .bind(s.id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(due, "a busy VM is tried again at the next tick");

    // A host that cannot take the snapshot (here: the VM has no placement): the
    // row is undone, the error recorded, and the next run is one interval on.
    sqlx::query("UPDATE vms SET state = 'running' WHERE id = $1").bind(vm).execute(&mut conn).await.unwrap();
    sqlx::query("DELETE FROM placements WHERE vm_id = $1").bind(vm).execute(&mut conn).await.unwrap();
    let report = pass(&w.app).await;
    assert!(report.ran.is_empty());
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert_eq!(count(&w.app, "vm_snapshots").await, 0, "no snapshot row without its snapshot");
    let after: SnapshotSchedule = w.client.get_at(&format!("/v1/snapshot-schedules/{}", s.id)).await.unwrap();
    assert!(after.last_run_at.is_some() && after.last_error.is_some(), "{after:?}");
    assert!(after.next_run_at > Utc::now() + chrono::Duration::minutes(59));
    w.app.stop().await;
}
