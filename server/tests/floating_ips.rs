//! Public IP pools and floating IPs, through the API on real libvirt (its
//! in-process test driver) and a real Postgres: pool rules (range, gateway,
//! overlap, in use), allocation until a pool is exhausted (also across tenants
//! and under concurrency), attach and detach, release, other tenants (404),
//! refused requests that write nothing, cluster delegates, and tenants kept
//! away from pools.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use basalt_client::{
    Client, ClientError, Cluster, CreateCluster, CreateIpPool, CreateTemplate, CreateVm, FloatingIp, IpPool, Operation,
    OperationStatus, Page, RequestOptions, Template, Tenant,
};
use common::TestApp;
use serde_json::json;
use uuid::Uuid;

const HOST: &str = "test:///default";

fn opts() -> RequestOptions {
    RequestOptions::default()
}

fn code(e: ClientError) -> (Option<u16>, Option<String>) {
    (e.status(), e.code().map(String::from))
}

fn err(status: u16, code: &str) -> (Option<u16>, Option<String>) {
    (Some(status), Some(code.into()))
}

async fn cluster(app: &TestApp, name: &str) -> Cluster {
    let host = if name == "west" { HOST.to_string() } else { format!("{HOST}?name={name}") };
    let body = CreateCluster { name: name.into(), hosts: vec![host], ..Default::default() };
    app.admin.post_at("/v1/clusters", &body, &opts()).await.expect("create cluster")
}

async fn quota(app: &TestApp, tenant: &Tenant, cluster: &Cluster) {
    let body = json!({ "tenant_id": tenant.id, "cluster_id": cluster.id, "vcpus": 64, "memory_mib": 65536,
                       "max_vms": 8 });
    let _: serde_json::Value = app.admin.post_at("/v1/quotas", &body, &opts()).await.expect("create quota");
}

async fn pool(
    client: &Client,
    name: &str,
    cluster: Uuid,
    cidr: &str,
    gateway: Option<&str>,
) -> Result<IpPool, ClientError> {
    let body = CreateIpPool {
        name: name.into(),
        cluster_id: cluster,
        cidr: cidr.into(),
        gateway: gateway.map(String::from),
        ..Default::default()
    };
    client.post_at("/v1/ip-pools", &body, &opts()).await
}

async fn allocate(
    client: &Client,
    cluster: Uuid,
    pool: Option<Uuid>,
    address: Option<&str>,
) -> Result<FloatingIp, ClientError> {
    let body = json!({ "cluster_id": cluster, "ip_pool_id": pool, "address": address });
    client.post_at("/v1/floating-ips", &body, &opts()).await
}

async fn template(app: &TestApp) -> Template {
    let body = CreateTemplate { name: "tiny".into(), vcpus: 1, memory_mib: 128, ..Default::default() };
    app.admin.post_at("/v1/templates", &body, &opts()).await.expect("create template")
}

async fn wait(client: &Client, op: Operation) -> Operation {
    let op = client.wait_operation(op.id, Duration::from_secs(20)).await.expect("poll");
    assert_eq!(op.status, OperationStatus::Succeeded, "{:?}", op.error);
    op
}

async fn vm(client: &Client, name: &str, cluster: Uuid, template: Uuid) -> Uuid {
    let body = CreateVm { name: name.into(), cluster_id: cluster, template_id: template, ..Default::default() };
    let op: Operation = client.post_at("/v1/vms", &body, &opts()).await.expect("create vm");
    wait(client, op).await.target_id
}

async fn post(client: &Client, path: &str, body: serde_json::Value) -> Result<FloatingIp, ClientError> {
    client.post_at(path, &body, &opts()).await
}

struct Setup {
    app: TestApp,
    west: Cluster,
    east: Cluster,
    tenant: Tenant,
    client: Client,
}

/// Tenant `acme` with quotas on clusters `west` and `east`.
async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let west = cluster(&app, "west").await;
    let east = cluster(&app, "east").await;
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    quota(&app, &tenant, &west).await;
    quota(&app, &tenant, &east).await;
    Setup { app, west, east, tenant, client }
}

#[tokio::test]
async fn pools_are_provider_objects_that_do_not_overlap() {
    let s = setup().await;
    let admin = &s.app.admin;
    let a = pool(admin, "public-a", s.west.id, "203.0.113.0/28", Some("203.0.113.1")).await.expect("create");
    assert_eq!((a.cidr.as_str(), a.gateway.as_deref(), a.version), ("203.0.113.0/28", Some("203.0.113.1"), 1));
    for (cidr, why) in [("203.0.113.8/29", "inside"), ("203.0.112.0/22", "around"), ("203.0.113.0/28", "equal")] {
        let e = pool(admin, "other", s.west.id, cidr, None).await.unwrap_err();
        assert_eq!(code(e), err(409, "cidr_overlap"), "{why}");
    }
    pool(admin, "public-b", s.west.id, "203.0.113.16/28", None).await.expect("adjacent");
    pool(admin, "public-east", s.east.id, "203.0.113.0/28", None).await.expect("the same range on another cluster");
    let e = pool(admin, "public-a", s.east.id, "198.51.100.0/24", None).await.unwrap_err();
    assert_eq!(code(e), err(409, "already_exists"), "pool names are unique");

    // Update: name and description under If-Match; the range is not a field.
    let path = format!("/v1/ip-pools/{}", a.id);
    let stale = RequestOptions { if_match: Some(9), ..Default::default() };
    let e = admin.patch_at::<_, IpPool>(&path, &json!({ "name": "x" }), &stale).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    let fresh = RequestOptions { if_match: Some(1), ..Default::default() };
    let renamed: IpPool =
        admin.patch_at(&path, &json!({ "name": "edge", "description": "transit" }), &fresh).await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.description.as_str(), renamed.version), ("edge", "transit", 2));
    let e = admin.patch_at::<_, IpPool>(&path, &json!({ "cidr": "10.0.0.0/24" }), &opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    let listed: Page<IpPool> = admin.get_at("/v1/ip-pools").await.unwrap();
    assert_eq!(listed.items.len(), 3);

    // Tenants hold no ip_pool permission: 403, whatever the verb.
    for e in [
        s.client.get_at::<Page<IpPool>>("/v1/ip-pools").await.unwrap_err(),
        s.client.get_at::<IpPool>(&path).await.unwrap_err(),
        pool(&s.client, "mine", s.west.id, "192.0.2.0/28", None).await.unwrap_err(),
        s.client.patch_at::<_, IpPool>(&path, &json!({ "description": "mine" }), &opts()).await.unwrap_err(),
        s.client.delete_at(&path).await.unwrap_err(),
    ] {
        assert_eq!(code(e), err(403, "permission_denied"));
    }

    // In use: not deletable until released.
    let fip = allocate(&s.client, s.west.id, Some(a.id), None).await.expect("allocate");
    assert_eq!(code(admin.delete_at(&path).await.unwrap_err()), err(409, "ip_pool_in_use"));
    s.client.delete_at(&format!("/v1/floating-ips/{}", fip.id)).await.expect("release");
    admin.delete_at(&path).await.expect("delete once unused");
    assert_eq!(admin.get_at::<IpPool>(&path).await.unwrap_err().status(), Some(404));
    s.app.stop().await;
}

#[tokio::test]
async fn allocation_skips_reserved_addresses_until_the_pool_is_exhausted() {
    let s = setup().await;
    // A /29 with its gateway: .2 to .6 are handed out (not .0, .1 or .7).
    let small = pool(&s.app.admin, "small", s.west.id, "198.51.100.0/29", Some("198.51.100.1")).await.unwrap();
    let first = allocate(&s.client, s.west.id, None, None).await.expect("allocate");
    assert_eq!(
        (first.address.as_str(), first.ip_pool_id, first.cluster_id, first.tenant_id, first.vm_id),
        ("198.51.100.2", small.id, s.west.id, s.tenant.id, None)
    );
    // An address asked for: free and inside, or refused.
    assert_eq!(
        code(allocate(&s.client, s.west.id, None, Some("198.51.100.2")).await.unwrap_err()),
        err(409, "address_in_use")
    );
    for reserved in ["198.51.100.0", "198.51.100.1", "198.51.100.7", "198.51.100.9"] {
        let e = allocate(&s.client, s.west.id, None, Some(reserved)).await.unwrap_err();
        assert_eq!(code(e), err(400, "invalid_field"), "{reserved}");
    }
    let asked = allocate(&s.client, s.west.id, Some(small.id), Some("198.51.100.6")).await.expect("asked");
    assert_eq!(asked.address, "198.51.100.6");

    // Another tenant draws from the same pool: distinct addresses, none of ours visible.
    let (other, _, other_client) = s.app.tenant_with_user("globex").await;
    quota(&s.app, &other, &s.west).await;
    let theirs = allocate(&other_client, s.west.id, None, None).await.expect("theirs");
    assert_eq!(theirs.address, "198.51.100.3");
    let mine: BTreeSet<String> = [first.address.clone(), asked.address.clone()].into();
    for _ in 0..2 {
        let f = allocate(&s.client, s.west.id, None, None).await.expect("room");
        assert!(!mine.contains(&f.address) && f.address != theirs.address);
    }
    let e = allocate(&s.client, s.west.id, None, None).await.unwrap_err();
    assert_eq!(code(e), err(409, "ip_pool_exhausted"));
    let e = allocate(&other_client, s.west.id, Some(small.id), None).await.unwrap_err();
    assert_eq!(code(e), err(409, "ip_pool_exhausted"), "exhausted for every tenant");
    let listed: Page<FloatingIp> = other_client.get_at("/v1/floating-ips").await.unwrap();
    assert_eq!(listed.items.iter().map(|f| f.address.as_str()).collect::<Vec<_>>(), ["198.51.100.3"]);

    // Another tenant's floating IP does not exist for it, whatever the verb.
    let path = format!("/v1/floating-ips/{}", first.id);
    assert_eq!(other_client.get_at::<FloatingIp>(&path).await.unwrap_err().status(), Some(404));
    let e = other_client.patch_at::<_, FloatingIp>(&path, &json!({ "description": "x" }), &opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(other_client.delete_at(&path).await.unwrap_err().status(), Some(404));
    assert_eq!(post(&other_client, &format!("{path}/detach"), json!({})).await.unwrap_err().status(), Some(404));

    // Releasing frees the address for the next allocation.
    s.client.delete_at(&path).await.expect("release");
    assert_eq!(allocate(&other_client, s.west.id, None, None).await.expect("freed").address, "198.51.100.2");

    // A pool of another cluster, a cluster without pools, a cluster without quota.
    let east_pool = pool(&s.app.admin, "east", s.east.id, "192.0.2.0/30", None).await.unwrap();
    let e = allocate(&s.client, s.west.id, Some(east_pool.id), None).await.unwrap_err();
    assert_eq!(code(e), err(422, "invalid_reference"));
    let east = allocate(&s.client, s.east.id, None, None).await.expect("a /30 has two");
    assert_eq!(east.address, "192.0.2.1");
    let e = allocate(&other_client, s.east.id, None, None).await.unwrap_err();
    assert_eq!(code(e), err(422, "invalid_reference"), "globex holds no quota on east");

    // Update: the description, under If-Match.
    let path = format!("/v1/floating-ips/{}", asked.id);
    let fresh = RequestOptions { if_match: Some(1), ..Default::default() };
    let described: FloatingIp = s.client.patch_at(&path, &json!({ "description": "web" }), &fresh).await.unwrap();
    assert_eq!(
        (described.description.as_str(), described.version, described.address.as_str()),
        ("web", 2, "198.51.100.6")
    );
    let e = s.client.patch_at::<_, FloatingIp>(&path, &json!({ "description": "x" }), &fresh).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    s.app.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_allocations_get_twenty_distinct_addresses() {
    let s = setup().await;
    pool(&s.app.admin, "wide", s.west.id, "100.64.0.0/27", None).await.unwrap();
    let (other, _, other_client) = s.app.tenant_with_user("globex").await;
    quota(&s.app, &other, &s.west).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = if i % 2 == 0 { s.client.clone() } else { other_client.clone() };
        let cluster = s.west.id;
        tasks.push(tokio::spawn(async move { allocate(&client, cluster, None, None).await }));
    }
    let mut addresses = BTreeSet::new();
    for t in tasks {
        addresses.insert(t.await.unwrap().expect("every allocation succeeds").address);
    }
    let expected: BTreeSet<String> = (1..21).map(|h| format!("100.64.0.{h}")).collect();
    assert_eq!(addresses, expected, "20 distinct addresses, the lowest 20");

    // The database itself refuses a second holder of an address.
    let mut conn = s.app.db.admin().await;
    let dup = sqlx::query(
        "INSERT INTO floating_ips (id, tenant_id, cluster_id, ip_pool_id, address)
         SELECT $1, $2, cluster_id, ip_pool_id, address FROM floating_ips LIMIT 1",
    )
    .bind(Uuid::now_v7())
    .bind(s.tenant.id)
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert_eq!(dup.as_database_error().and_then(|d| d.constraint()), Some("floating_ips_pool_address"));
    s.app.stop().await;
}

#[tokio::test]
async fn floating_ips_attach_to_one_vm_of_their_cluster() {
    let s = setup().await;
    pool(&s.app.admin, "west", s.west.id, "203.0.113.0/28", None).await.unwrap();
    pool(&s.app.admin, "east", s.east.id, "198.51.100.0/28", None).await.unwrap();
    let t = template(&s.app).await;
    let web = vm(&s.client, "web", s.west.id, t.id).await;
    let db = vm(&s.client, "db", s.west.id, t.id).await;
    let far = vm(&s.client, "far", s.east.id, t.id).await;
    let fip = allocate(&s.client, s.west.id, None, None).await.unwrap();
    let spare = allocate(&s.client, s.west.id, None, None).await.unwrap();
    let path = format!("/v1/floating-ips/{}", fip.id);

    let attached = post(&s.client, &format!("{path}/attach"), json!({ "vm_id": web })).await.expect("attach");
    assert_eq!((attached.vm_id, attached.version), (Some(web), 2));
    let again = post(&s.client, &format!("{path}/attach"), json!({ "vm_id": web })).await.expect("same VM again");
    assert_eq!(again, attached, "changes nothing");
    let e = post(&s.client, &format!("{path}/attach"), json!({ "vm_id": db })).await.unwrap_err();
    assert_eq!(code(e), err(409, "floating_ip_attached"));
    let spare_path = format!("/v1/floating-ips/{}", spare.id);
    let e = post(&s.client, &format!("{spare_path}/attach"), json!({ "vm_id": web })).await.unwrap_err();
    assert_eq!(code(e), err(409, "vm_has_floating_ip"), "one floating IP per VM");
    let e = post(&s.client, &format!("{spare_path}/attach"), json!({ "vm_id": far })).await.unwrap_err();
    assert_eq!(code(e), err(422, "cluster_mismatch"));
    let e = post(&s.client, &format!("{spare_path}/attach"), json!({ "vm_id": Uuid::now_v7() })).await.unwrap_err();
    assert_eq!(code(e), err(422, "invalid_reference"));

    // Another tenant's VM is no VM to attach to.
    let (other, _, other_client) = s.app.tenant_with_user("globex").await;
    quota(&s.app, &other, &s.west).await;
    let theirs = allocate(&other_client, s.west.id, None, None).await.unwrap();
    let e = post(&other_client, &format!("/v1/floating-ips/{}/attach", theirs.id), json!({ "vm_id": db })).await;
    assert_eq!(code(e.unwrap_err()), err(422, "invalid_reference"));
    assert_eq!(
        post(&other_client, &format!("{path}/attach"), json!({ "vm_id": db })).await.unwrap_err().status(),
        Some(404)
    );

    // Released only when detached.
    assert_eq!(code(s.client.delete_at(&path).await.unwrap_err()), err(409, "floating_ip_attached"));
    let detached = post(&s.client, &format!("{path}/detach"), json!({})).await.expect("detach");
    assert_eq!(detached.vm_id, None);
    assert_eq!(post(&s.client, &format!("{path}/detach"), json!({})).await.expect("again").vm_id, None);
    post(&s.client, &format!("{spare_path}/attach"), json!({ "vm_id": web })).await.expect("the VM is free again");

    // Deleting the VM detaches its floating IP and keeps the address.
    let op = s.client.delete_at(&format!("/v1/vms/{web}")).await.unwrap().expect("operation");
    wait(&s.client, op).await;
    let kept: FloatingIp = s.client.get_at(&spare_path).await.unwrap();
    assert_eq!((kept.vm_id, kept.address.as_str()), (None, spare.address.as_str()));
    s.client.delete_at(&path).await.expect("release");
    s.app.stop().await;
}

#[tokio::test]
async fn cluster_delegates_see_floating_ips_of_their_cluster_only() {
    let s = setup().await;
    pool(&s.app.admin, "west", s.west.id, "203.0.113.0/28", None).await.unwrap();
    pool(&s.app.admin, "east", s.east.id, "198.51.100.0/28", None).await.unwrap();
    let west_fip = allocate(&s.client, s.west.id, None, None).await.unwrap();
    let east_fip = allocate(&s.client, s.east.id, None, None).await.unwrap();
    let ops = s.app.cluster_delegate(&s.client, &s.tenant, "ops", "cluster-operator", s.west.id).await;

    let listed: Page<FloatingIp> = ops.get_at("/v1/floating-ips").await.unwrap();
    assert_eq!(listed.items.iter().map(|f| f.id).collect::<Vec<_>>(), [west_fip.id]);
    let east_path = format!("/v1/floating-ips/{}", east_fip.id);
    assert_eq!(ops.get_at::<FloatingIp>(&east_path).await.unwrap_err().status(), Some(404));
    assert_eq!(post(&ops, &format!("{east_path}/detach"), json!({})).await.unwrap_err().status(), Some(404));
    allocate(&ops, s.west.id, None, None).await.expect("allocate on its cluster");
    let e = allocate(&ops, s.east.id, None, None).await.unwrap_err();
    assert_eq!(e.status(), Some(422), "another cluster is no cluster to it");
    // cluster-operator holds no deletions (releasing an address loses it).
    let e = ops.delete_at(&format!("/v1/floating-ips/{}", west_fip.id)).await.unwrap_err();
    assert_eq!(e.code(), Some("permission_denied"));
    assert_eq!(ops.get_at::<Page<IpPool>>("/v1/ip-pools").await.unwrap_err().status(), Some(403));
    s.app.stop().await;
}

#[tokio::test]
async fn refused_pools_and_allocations_write_nothing() {
    let s = setup().await;
    let full = pool(&s.app.admin, "full", s.west.id, "192.0.2.0/30", Some("192.0.2.1")).await.unwrap();
    let only = allocate(&s.client, s.west.id, None, None).await.expect("the one address");
    assert_eq!(only.address, "192.0.2.2");
    let t = template(&s.app).await;
    let web = vm(&s.client, "web", s.west.id, t.id).await;
    let far = vm(&s.client, "far", s.east.id, t.id).await;
    post(&s.client, &format!("/v1/floating-ips/{}/attach", only.id), json!({ "vm_id": web })).await.unwrap();

    let mut conn = s.app.db.admin().await;
    let before = common::db_fingerprint(&mut conn).await;
    let admin = &s.app.admin;
    let refused = [
        pool(admin, "overlap", s.west.id, "192.0.2.0/29", None).await.unwrap_err(),
        pool(admin, "wide", s.west.id, "10.0.0.0/16", None).await.unwrap_err(),
        pool(admin, "gw", s.west.id, "198.51.100.0/28", Some("198.51.100.15")).await.unwrap_err(),
        pool(admin, "nowhere", Uuid::now_v7(), "198.51.100.0/28", None).await.unwrap_err(),
        admin.delete_at(&format!("/v1/ip-pools/{}", full.id)).await.unwrap_err(),
        allocate(&s.client, s.west.id, None, None).await.unwrap_err(),
        allocate(&s.client, s.west.id, None, Some("192.0.2.2")).await.unwrap_err(),
        allocate(&s.client, s.west.id, None, Some("192.0.2.3")).await.unwrap_err(),
        allocate(&s.client, s.west.id, None, Some("192.0.2.x")).await.unwrap_err(),
        allocate(&s.client, s.west.id, Some(Uuid::now_v7()), None).await.unwrap_err(),
        s.client.delete_at(&format!("/v1/floating-ips/{}", only.id)).await.unwrap_err(),
        post(&s.client, &format!("/v1/floating-ips/{}/attach", only.id), json!({ "vm_id": far })).await.unwrap_err(),
    ];
    let statuses: Vec<Option<u16>> = refused.iter().map(ClientError::status).collect();
    let expected = [409, 400, 400, 422, 409, 409, 409, 400, 400, 422, 409, 409].map(Some);
    assert_eq!(statuses, expected);
    assert_eq!(common::db_fingerprint(&mut conn).await, before, "a refused request changes nothing");
    s.app.stop().await;
}
