//! Tenant networks with IPAM, VM interfaces and data volumes, through the API on
//! real libvirt (its in-process test driver) and a real Postgres: CIDR rules,
//! address allocation (also under concurrency), the NIC and disk in the domain's
//! definition, volume files and their quota accounting, attachments, cluster
//! delegates and other tenants (404).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use basalt_client::{
    Client, Cluster, CreateNetwork, CreateVolume, Network, OperationStatus, Page, Quota, RequestOptions, Template,
    Tenant, VmInterface, Volume,
};
use common::{running_vm, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

fn opts() -> RequestOptions {
    RequestOptions::default()
}

/// A quota with room for `vms` small VMs and, if given, `disk_gib` of volumes.
async fn quota(app: &TestApp, tenant: &Tenant, cluster: &Cluster, vms: i32, disk_gib: Option<i64>) -> Quota {
    let body = json!({ "tenant_id": tenant.id, "cluster_id": cluster.id, "vcpus": 64, "memory_mib": 65536,
                       "max_vms": vms, "disk_gib": disk_gib });
    app.admin.post_at("/v1/quotas", &body, &opts()).await.expect("create quota")
}

async fn network(
    client: &Client,
    name: &str,
    cluster: Uuid,
    cidr: &str,
) -> Result<Network, basalt_client::ClientError> {
    let body = CreateNetwork { name: name.into(), cluster_id: cluster, cidr: cidr.into(), ..Default::default() };
    client.post_at("/v1/networks", &body, &opts()).await
}

async fn attach(
    client: &Client,
    vm: Uuid,
    network: Uuid,
    ip: Option<&str>,
) -> Result<VmInterface, basalt_client::ClientError> {
    let body = json!({ "network_id": network, "ip": ip });
    client.post_at(&format!("/v1/vms/{vm}/interfaces"), &body, &opts()).await
}

async fn volume(
    client: &Client,
    name: &str,
    cluster: Uuid,
    size_gib: i32,
) -> Result<Volume, basalt_client::ClientError> {
    let body = CreateVolume { name: name.into(), cluster_id: cluster, size_gib, ..Default::default() };
    client.post_at("/v1/volumes", &body, &opts()).await
}

fn status(e: basalt_client::ClientError) -> (Option<u16>, Option<String>) {
    (e.status(), e.code().map(String::from))
}

fn conflict(code: &str) -> (Option<u16>, Option<String>) {
    (Some(409), Some(code.into()))
}

/// The persistent definition of VM `id`'s domain on the test driver.
fn domain_xml(id: Uuid) -> String {
    let conn = virt::connect::Connect::open(Some(common::TEST_HOST)).expect("open");
    let dom = conn.lookup_domain_by_uuid(id).expect("domain");
    dom.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE).expect("xml")
}

struct Setup {
    app: TestApp,
    west: Cluster,
    east: Cluster,
    tenant: Tenant,
    client: Client,
    template: Template,
}

/// Tenant `acme` with quotas on clusters `west` (disk limited to `disk_gib`) and `east`.
async fn setup(disk_gib: Option<i64>) -> Setup {
    let app = TestApp::spawn().await;
    let west = app.test_cluster("west").await;
    let east = app.test_cluster("east").await;
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    quota(&app, &tenant, &west, 8, disk_gib).await;
    quota(&app, &tenant, &east, 8, None).await;
    let template = app.tiny_template().await;
    Setup { app, west, east, tenant, client, template }
}

#[tokio::test]
async fn networks_refuse_overlaps_and_keep_their_cidr() {
    let s = setup(None).await;
    let lan = network(&s.client, "lan", s.west.id, "10.0.0.0/24").await.expect("create");
    assert_eq!((lan.cidr.as_str(), lan.cluster_id, lan.version), ("10.0.0.0/24", s.west.id, 1));
    for (cidr, why) in [("10.0.0.128/25", "inside"), ("10.0.0.0/16", "around"), ("10.0.0.0/24", "equal")] {
        let e = network(&s.client, "other", s.west.id, cidr).await.unwrap_err();
        assert_eq!(status(e), conflict("cidr_overlap"), "{why}");
    }
    // Next door, another cluster, another tenant: no overlap.
    network(&s.client, "lan2", s.west.id, "10.0.1.0/24").await.expect("adjacent");
    network(&s.client, "lan-east", s.east.id, "10.0.0.0/24").await.expect("same cidr on another cluster");
    let (other, _, other_client) = s.app.tenant_with_user("globex").await;
    quota(&s.app, &other, &s.west, 1, None).await;
    let theirs = network(&other_client, "lan", s.west.id, "10.0.0.0/24").await.expect("same cidr in another tenant");

    // A retried create (same Idempotency-Key) answers the first result, not an overlap.
    let keyed = RequestOptions { idempotency_key: Some("net-1".into()), ..Default::default() };
    let body =
        CreateNetwork { name: "dmz".into(), cluster_id: s.west.id, cidr: "172.16.0.0/29".into(), ..Default::default() };
    let first: Network = s.client.post_at("/v1/networks", &body, &keyed).await.unwrap();
    let again: Network = s.client.post_at("/v1/networks", &body, &keyed).await.unwrap();
    assert_eq!(first, again);
    let e = network(&s.client, "dmz", s.west.id, "172.17.0.0/29").await.unwrap_err();
    assert_eq!(status(e), conflict("already_exists"), "names are unique in the tenant");

    // Update: name and description, under If-Match; the CIDR is not a field.
    let stale = RequestOptions { if_match: Some(7), ..Default::default() };
    let e = s.client.patch_at::<_, Network>(&format!("/v1/networks/{}", lan.id), &json!({ "name": "x" }), &stale).await;
    assert_eq!(e.unwrap_err().status(), Some(409));
    let fresh = RequestOptions { if_match: Some(1), ..Default::default() };
    let renamed: Network = s
        .client
        .patch_at(&format!("/v1/networks/{}", lan.id), &json!({ "name": "office", "description": "floor 2" }), &fresh)
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str(), renamed.cidr.as_str()),
        ("office", "floor 2", "10.0.0.0/24")
    );
    assert_eq!(renamed.version, 2);
    let e = s
        .client
        .patch_at::<_, Network>(&format!("/v1/networks/{}", lan.id), &json!({ "cidr": "10.9.0.0/24" }), &opts())
        .await;
    assert_eq!((e.unwrap_err().status()), Some(400));

    let page: Page<Network> = s.client.get_at("/v1/networks").await.unwrap();
    assert_eq!(page.items.len(), 4, "the tenant's own four");
    assert!(page.items.iter().all(|n| n.tenant_id == s.tenant.id));

    // Another tenant's network does not exist for it, whatever the verb.
    let path = format!("/v1/networks/{}", theirs.id);
    assert_eq!(s.client.get_at::<Network>(&path).await.unwrap_err().status(), Some(404));
    let e = s.client.patch_at::<_, Network>(&path, &json!({ "description": "mine" }), &opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(s.client.delete_at(&path).await.unwrap_err().status(), Some(404));
    assert_eq!(other_client.get_at::<Network>(&path).await.unwrap().name, "lan", "untouched");

    s.client.delete_at(&format!("/v1/networks/{}", lan.id)).await.expect("delete");
    assert_eq!(s.client.get_at::<Network>(&format!("/v1/networks/{}", lan.id)).await.unwrap_err().status(), Some(404));
    s.app.stop().await;
}

#[tokio::test]
async fn interfaces_get_addresses_from_ipam_and_reach_the_domain() {
    let s = setup(None).await;
    let net = network(&s.client, "lan", s.west.id, "10.0.0.0/24").await.unwrap();
    let id = running_vm(&s.client, "web-1", s.west.id, s.template.id).await;

    let first = attach(&s.client, id, net.id, None).await.expect("attach");
    assert_eq!(
        (first.ip.as_str(), first.vm_id, first.network_id),
        ("10.0.0.2", id, net.id),
        "skips .0 and the gateway"
    );
    assert!(first.mac.starts_with("52:54:00:") && first.mac.len() == 17, "{}", first.mac);
    assert!(domain_xml(id).contains(&format!("<mac address='{}'/>", first.mac)), "the NIC is in the definition");

    assert_eq!(status(attach(&s.client, id, net.id, Some("10.0.0.2")).await.unwrap_err()), conflict("ip_in_use"));
    for outside in ["10.0.0.0", "10.0.0.1", "10.0.0.255", "10.0.1.5"] {
        let e = attach(&s.client, id, net.id, Some(outside)).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_field")), "{outside}");
    }
    let asked = attach(&s.client, id, net.id, Some("10.0.0.9")).await.expect("a free address asked for");
    assert_eq!(asked.ip, "10.0.0.9");
    assert_eq!(attach(&s.client, id, net.id, None).await.unwrap().ip, "10.0.0.3");
    assert_ne!(asked.mac, first.mac);

    // Detaching frees the address (and takes the NIC out of the definition).
    s.client.delete_at(&format!("/v1/vms/{id}/interfaces/{}", first.id)).await.expect("detach");
    assert!(!domain_xml(id).contains(&first.mac));
    assert!(domain_xml(id).contains(&asked.mac));
    assert_eq!(attach(&s.client, id, net.id, None).await.unwrap().ip, "10.0.0.2");
    let listed: Page<VmInterface> = s.client.get_at(&format!("/v1/vms/{id}/interfaces")).await.unwrap();
    let ips: BTreeSet<String> = listed.items.iter().map(|i| i.ip.clone()).collect();
    assert_eq!(ips, ["10.0.0.2", "10.0.0.3", "10.0.0.9"].map(String::from).into());

    // The network is in use; the VM and the network must share a cluster and a tenant.
    let e = s.client.delete_at(&format!("/v1/networks/{}", net.id)).await.unwrap_err();
    assert_eq!(status(e), conflict("network_in_use"));
    let east = network(&s.client, "lan-east", s.east.id, "10.5.0.0/24").await.unwrap();
    let e = attach(&s.client, id, east.id, None).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(422), Some("cluster_mismatch")));
    let (other, _, other_client) = s.app.tenant_with_user("globex").await;
    quota(&s.app, &other, &s.west, 1, None).await;
    let theirs = network(&other_client, "lan", s.west.id, "10.0.0.0/24").await.unwrap();
    let e = attach(&s.client, id, theirs.id, None).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(422), Some("invalid_reference")), "another tenant's network");
    let e = attach(&other_client, id, theirs.id, None).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "another tenant's VM");
    assert_eq!(
        other_client.get_at::<Page<VmInterface>>(&format!("/v1/vms/{id}/interfaces")).await.unwrap_err().status(),
        Some(404)
    );
    let e = other_client.delete_at(&format!("/v1/vms/{id}/interfaces/{}", asked.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));

    // A /29 has five host addresses, then it is full.
    let small = network(&s.client, "small", s.west.id, "192.168.7.0/29").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(attach(&s.client, id, small.id, None).await.expect("room").ip);
    }
    assert_eq!(got, ["192.168.7.2", "192.168.7.3", "192.168.7.4", "192.168.7.5", "192.168.7.6"]);
    assert_eq!(status(attach(&s.client, id, small.id, None).await.unwrap_err()), conflict("network_full"));

    // Deleting the VM frees its addresses; then the network can go.
    let op = s.client.delete_at(&format!("/v1/vms/{id}")).await.unwrap().expect("operation");
    assert_eq!(
        s.client.wait_operation(op.id, Duration::from_secs(20)).await.unwrap().status,
        OperationStatus::Succeeded
    );
    s.client.delete_at(&format!("/v1/networks/{}", net.id)).await.expect("delete once unused");
    s.app.stop().await;
}

#[tokio::test]
async fn twenty_parallel_attaches_get_twenty_distinct_addresses() {
    let s = setup(None).await;
    let net = network(&s.client, "lan", s.west.id, "10.20.0.0/27").await.unwrap();
    let mut vms = Vec::new();
    for i in 0..4 {
        vms.push(running_vm(&s.client, &format!("web-{i}"), s.west.id, s.template.id).await);
    }
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, vm, net) = (s.client.clone(), vms[i % 4], net.id);
        tasks.push(tokio::spawn(async move { attach(&client, vm, net, None).await }));
    }
    let mut ips = BTreeSet::new();
    let mut macs = BTreeSet::new();
    for t in tasks {
        let i = t.await.unwrap().expect("every attach succeeds");
        ips.insert(i.ip);
        macs.insert(i.mac);
    }
    let expected: BTreeSet<String> = (2..22).map(|h| format!("10.20.0.{h}")).collect();
    assert_eq!(ips, expected, "20 distinct addresses, the lowest 20");
    assert_eq!(macs.len(), 20);
    // Every NIC reached its domain's definition (none lost to a concurrent redefinition).
    for v in &vms {
        let xml = domain_xml(*v);
        let page: Page<VmInterface> = s.client.get_at(&format!("/v1/vms/{v}/interfaces")).await.unwrap();
        assert_eq!(page.items.len(), 5);
        assert!(page.items.iter().all(|i| xml.contains(&i.mac)));
    }
    // The database itself refuses a second holder of an address.
    let mut conn = s.app.db.admin().await;
    let dup = sqlx::query(
        "INSERT INTO vm_interfaces (id, tenant_id, vm_id, network_id, ip, mac)
         SELECT $1, tenant_id, vm_id, network_id, ip, '52:54:00:ff:ff:ff' FROM vm_interfaces LIMIT 1",
    )
    .bind(Uuid::now_v7())
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert_eq!(dup.as_database_error().and_then(|d| d.constraint()), Some("vm_interfaces_tenant_network_ip"));
    s.app.stop().await;
}

async fn quota_on(client: &Client, cluster: Uuid) -> Quota {
    let page: Page<Quota> = client.get_at("/v1/quotas").await.unwrap();
    page.items.into_iter().find(|q| q.cluster_id == cluster).expect("quota")
}

fn virtual_size_gib(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("qemu-img").arg("info").arg("--output=json").arg(path).output().unwrap();
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    info["virtual-size"].as_u64().unwrap() >> 30
}

#[tokio::test]
async fn volumes_are_files_counted_against_the_disk_quota() {
    let s = setup(Some(10)).await;
    let a = volume(&s.client, "a", s.west.id, 6).await.expect("create");
    let file = s.app.state.compute.storage_dir.join("volumes").join(format!("{}.qcow2", a.id));
    assert_eq!(virtual_size_gib(&file), 6, "a real qcow2 file");
    assert_eq!(quota_on(&s.client, s.west.id).await.disk_used_gib, 6);

    let e = volume(&s.client, "b", s.west.id, 5).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(422), Some("quota_exceeded")));
    let b = volume(&s.client, "b", s.west.id, 4).await.expect("exactly to the limit");
    assert_eq!(quota_on(&s.client, s.west.id).await.disk_used_gib, 10);
    let e = s.client.patch_at::<_, Volume>(&format!("/v1/volumes/{}", b.id), &json!({ "size_gib": 5 }), &opts()).await;
    assert_eq!(e.unwrap_err().code(), Some("quota_exceeded"));
    // No limit on the other cluster.
    volume(&s.client, "big", s.east.id, 1000).await.expect("no disk limit there");

    // Provider staff cannot set the limit below the usage, nor withdraw the quota.
    let q = quota_on(&s.client, s.west.id).await;
    let e = s.app.admin.patch_at::<_, Quota>(&format!("/v1/quotas/{}", q.id), &json!({ "disk_gib": 9 }), &opts()).await;
    assert_eq!(status(e.unwrap_err()), conflict("quota_in_use"));
    let e = s.app.admin.delete_at(&format!("/v1/quotas/{}", q.id)).await.unwrap_err();
    assert_eq!(status(e), conflict("quota_in_use"));

    s.client.delete_at(&format!("/v1/volumes/{}", a.id)).await.expect("delete");
    assert!(!file.exists(), "the file goes with it");
    assert_eq!(quota_on(&s.client, s.west.id).await.disk_used_gib, 4);
    let grown: Volume = s
        .client
        .patch_at(&format!("/v1/volumes/{}", b.id), &json!({ "size_gib": 8, "description": "logs" }), &opts())
        .await
        .expect("grow");
    assert_eq!((grown.size_gib, grown.description.as_str(), grown.version), (8, "logs", 2));
    let b_file = s.app.state.compute.storage_dir.join("volumes").join(format!("{}.qcow2", b.id));
    assert_eq!(virtual_size_gib(&b_file), 8);
    assert_eq!(quota_on(&s.client, s.west.id).await.disk_used_gib, 8);
    let e = s.client.patch_at::<_, Volume>(&format!("/v1/volumes/{}", b.id), &json!({ "size_gib": 2 }), &opts()).await;
    let e = e.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_field")), "a volume only grows");

    // Lifting the limit (null) and reading it back.
    let lifted: Quota =
        s.app.admin.patch_at(&format!("/v1/quotas/{}", q.id), &json!({ "disk_gib": null }), &opts()).await.unwrap();
    assert_eq!((lifted.disk_gib, lifted.disk_used_gib), (None, 8));
    volume(&s.client, "c", s.west.id, 100).await.expect("no limit any more");
    s.app.stop().await;
}

#[tokio::test]
async fn volumes_attach_to_one_vm_of_their_cluster() {
    let s = setup(None).await;
    let web = running_vm(&s.client, "web", s.west.id, s.template.id).await;
    let db = running_vm(&s.client, "db", s.west.id, s.template.id).await;
    let far = running_vm(&s.client, "far", s.east.id, s.template.id).await;
    let data = volume(&s.client, "data", s.west.id, 2).await.unwrap();
    let logs = volume(&s.client, "logs", s.west.id, 1).await.unwrap();
    let file = s.app.state.compute.storage_dir.join("volumes").join(format!("{}.qcow2", data.id));
    let at = |id: Uuid, what: &str| format!("/v1/volumes/{id}/{what}");

    let attached: Volume = s.client.post_at(&at(data.id, "attach"), &json!({ "vm_id": web }), &opts()).await.unwrap();
    assert_eq!((attached.vm_id, attached.device.as_deref()), (Some(web), Some("vdb")));
    assert!(domain_xml(web).contains(&format!("<source file='{}'/>", file.display())), "the disk is in the definition");
    let again: Volume = s.client.post_at(&at(data.id, "attach"), &json!({ "vm_id": web }), &opts()).await.unwrap();
    assert_eq!(again.version, attached.version, "attaching again changes nothing");
    let second: Volume = s.client.post_at(&at(logs.id, "attach"), &json!({ "vm_id": web }), &opts()).await.unwrap();
    assert_eq!(second.device.as_deref(), Some("vdc"));

    let e = s.client.post_at::<_, Volume>(&at(data.id, "attach"), &json!({ "vm_id": db }), &opts()).await.unwrap_err();
    assert_eq!(status(e), conflict("volume_attached"), "one VM at a time");
    let e = s.client.delete_at(&format!("/v1/volumes/{}", data.id)).await.unwrap_err();
    assert_eq!(status(e), conflict("volume_attached"));
    let e =
        s.client.patch_at::<_, Volume>(&format!("/v1/volumes/{}", data.id), &json!({ "size_gib": 3 }), &opts()).await;
    assert_eq!(status(e.unwrap_err()), conflict("volume_in_use"), "not while a running VM uses it");
    let e = s.client.post_at::<_, Volume>(&at(data.id, "detach"), &json!({ "vm_id": db }), &opts()).await.unwrap_err();
    assert_eq!(status(e), conflict("volume_not_attached"));

    let spare = volume(&s.client, "spare", s.west.id, 1).await.unwrap();
    let e =
        s.client.post_at::<_, Volume>(&at(spare.id, "attach"), &json!({ "vm_id": far }), &opts()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(422), Some("cluster_mismatch")));

    let detached: Volume = s.client.post_at(&at(data.id, "detach"), &json!({ "vm_id": web }), &opts()).await.unwrap();
    assert_eq!((detached.vm_id, detached.device), (None, None));
    assert!(!domain_xml(web).contains(&file.display().to_string()), "and out of the definition");
    let moved: Volume = s.client.post_at(&at(data.id, "attach"), &json!({ "vm_id": db }), &opts()).await.unwrap();
    assert_eq!((moved.vm_id, moved.device.as_deref()), (Some(db), Some("vdb")));

    // Another tenant: the volume does not exist, nor do the tenant's VMs.
    let (other, _, other_client) = s.app.tenant_with_user("globex").await;
    quota(&s.app, &other, &s.west, 1, None).await;
    let path = format!("/v1/volumes/{}", logs.id);
    assert_eq!(other_client.get_at::<Volume>(&path).await.unwrap_err().status(), Some(404));
    assert_eq!(other_client.delete_at(&path).await.unwrap_err().status(), Some(404));
    let e = other_client.patch_at::<_, Volume>(&path, &json!({ "description": "x" }), &opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = other_client.post_at::<_, Volume>(&at(logs.id, "detach"), &json!({ "vm_id": web }), &opts()).await;
    assert_eq!(e.unwrap_err().status(), Some(404));
    let theirs = volume(&other_client, "theirs", s.west.id, 1).await.unwrap();
    let e = other_client.post_at::<_, Volume>(&at(theirs.id, "attach"), &json!({ "vm_id": web }), &opts()).await;
    assert_eq!(e.unwrap_err().code(), Some("invalid_reference"), "another tenant's VM is no VM");
    let page: Page<Volume> = other_client.get_at("/v1/volumes").await.unwrap();
    assert_eq!(page.items.iter().map(|v| v.id).collect::<Vec<_>>(), [theirs.id]);

    // Deleting a VM detaches its volumes and keeps them.
    let op = s.client.delete_at(&format!("/v1/vms/{web}")).await.unwrap().expect("operation");
    assert_eq!(
        s.client.wait_operation(op.id, Duration::from_secs(20)).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let kept: Volume = s.client.get_at(&path).await.unwrap();
    assert_eq!((kept.vm_id, kept.device), (None, None));
    s.client.delete_at(&path).await.expect("a detached volume can go");
    s.app.stop().await;
}

#[tokio::test]
async fn cluster_delegates_see_networks_and_volumes_of_their_cluster_only() {
    let s = setup(None).await;
    let west_net = network(&s.client, "w", s.west.id, "10.0.0.0/24").await.unwrap();
    let east_net = network(&s.client, "e", s.east.id, "10.1.0.0/24").await.unwrap();
    let west_vol = volume(&s.client, "wv", s.west.id, 1).await.unwrap();
    let east_vol = volume(&s.client, "ev", s.east.id, 1).await.unwrap();
    let ops = s.app.cluster_delegate(&s.client, &s.tenant, "ops", "cluster-operator", s.west.id).await;

    let nets: Page<Network> = ops.get_at("/v1/networks").await.unwrap();
    assert_eq!(nets.items.iter().map(|n| n.id).collect::<Vec<_>>(), [west_net.id]);
    let vols: Page<Volume> = ops.get_at("/v1/volumes").await.unwrap();
    assert_eq!(vols.items.iter().map(|v| v.id).collect::<Vec<_>>(), [west_vol.id]);
    assert_eq!(ops.get_at::<Network>(&format!("/v1/networks/{}", east_net.id)).await.unwrap_err().status(), Some(404));
    assert_eq!(ops.get_at::<Volume>(&format!("/v1/volumes/{}", east_vol.id)).await.unwrap_err().status(), Some(404));
    network(&ops, "w2", s.west.id, "10.2.0.0/24").await.expect("create on its cluster");
    let e = network(&ops, "e2", s.east.id, "10.3.0.0/24").await.unwrap_err();
    assert_eq!(e.status(), Some(422), "another cluster is no cluster to it");
    let e = volume(&ops, "ev2", s.east.id, 1).await.unwrap_err();
    assert_eq!(e.status(), Some(422));
    // cluster-operator holds no deletions.
    let e = ops.delete_at(&format!("/v1/volumes/{}", west_vol.id)).await.unwrap_err();
    assert_eq!(e.code(), Some("permission_denied"));
    // Plugging its VM into the other cluster's network: no such network (as for
    // a random id), not a `cluster_mismatch` that would confirm it exists.
    let vm = running_vm(&ops, "w-vm", s.west.id, s.template.id).await;
    let e = attach(&ops, vm, east_net.id, None).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(422), Some("invalid_reference")), "{e:?}");
    let random = attach(&ops, vm, Uuid::now_v7(), None).await.unwrap_err();
    assert_eq!(e.to_string(), random.to_string(), "the same answer as for a random id");
    s.app.stop().await;
}
