//! Security groups through the API on a real Postgres and real libvirt (its
//! in-process test driver, for the VMs they attach to): group CRUD under
//! If-Match, rule validation and normalisation, duplicate and surplus rules,
//! VM membership and the delete it blocks, other tenants (404) and cluster
//! delegates (their cluster only).

mod common;

use std::time::Duration;

use basalt_client::{
    Client, ClientError, Cluster, CreateSecurityGroup, OperationStatus, Page, RequestOptions, SecurityGroup,
    SecurityGroupRule, Template, Tenant, VmSecurityGroup,
};
use common::{running_vm, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

fn opts() -> RequestOptions {
    RequestOptions::default()
}

async fn quota(app: &TestApp, tenant: &Tenant, cluster: &Cluster) {
    let body =
        json!({ "tenant_id": tenant.id, "cluster_id": cluster.id, "vcpus": 64, "memory_mib": 65536, "max_vms": 8 });
    let _: Value = app.admin.post_at("/v1/quotas", &body, &opts()).await.expect("create quota");
}

async fn group(client: &Client, name: &str, cluster: Uuid) -> Result<SecurityGroup, ClientError> {
    let body = CreateSecurityGroup { name: name.into(), cluster_id: cluster, ..Default::default() };
    client.post_at("/v1/security-groups", &body, &opts()).await
}

async fn rule(client: &Client, group: Uuid, body: Value) -> Result<SecurityGroupRule, ClientError> {
    client.post_at(&format!("/v1/security-groups/{group}/rules"), &body, &opts()).await
}

async fn rules(client: &Client, group: Uuid) -> Result<Vec<SecurityGroupRule>, ClientError> {
    let page: Page<SecurityGroupRule> = client.get_at(&format!("/v1/security-groups/{group}/rules?limit=200")).await?;
    Ok(page.items)
}

async fn attach(client: &Client, vm: Uuid, group: Uuid) -> Result<VmSecurityGroup, ClientError> {
    client.post_at(&format!("/v1/vms/{vm}/security-groups"), &json!({ "security_group_id": group }), &opts()).await
}

async fn attached(client: &Client, vm: Uuid) -> Result<Vec<Uuid>, ClientError> {
    let page: Page<VmSecurityGroup> = client.get_at(&format!("/v1/vms/{vm}/security-groups")).await?;
    Ok(page.items.iter().map(|m| m.security_group_id).collect())
}

fn status(e: ClientError) -> (Option<u16>, Option<String>) {
    (e.status(), e.code().map(String::from))
}

/// The field a 4xx names (`details.field`).
fn field(e: &ClientError) -> Option<&str> {
    match e {
        ClientError::Api { body, .. } => body.error.details["field"].as_str(),
        _ => None,
    }
}

fn is(status_code: u16, code: &str) -> (Option<u16>, Option<String>) {
    (Some(status_code), Some(code.into()))
}

/// The audited actions on object `id`, oldest first.
async fn audited(app: &TestApp, id: Uuid) -> Vec<String> {
    let mut conn = app.db.admin().await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT action FROM audit_events WHERE target_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|(a,)| a).collect()
}

struct Setup {
    app: TestApp,
    west: Cluster,
    east: Cluster,
    tenant: Tenant,
    client: Client,
    template: Template,
}

/// Tenant `acme` with quotas on clusters `west` and `east`.
async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let west = app.test_cluster("west").await;
    let east = app.test_cluster("east").await;
    let (tenant, _, client) = app.tenant_with_user("acme").await;
    quota(&app, &tenant, &west).await;
    quota(&app, &tenant, &east).await;
    let template = app.tiny_template().await;
    Setup { app, west, east, tenant, client, template }
}

#[tokio::test]
async fn groups_are_created_renamed_under_if_match_and_deleted_with_their_rules() {
    let s = setup().await;
    let web = group(&s.client, "web", s.west.id).await.expect("create");
    assert_eq!((web.name.as_str(), web.cluster_id, web.version, web.tenant_id), ("web", s.west.id, 1, s.tenant.id));
    assert_eq!(status(group(&s.client, "web", s.east.id).await.unwrap_err()), is(409, "already_exists"));
    let ghost = Uuid::now_v7();
    assert_eq!(status(group(&s.client, "db", ghost).await.unwrap_err()), is(422, "invalid_reference"));

    // A retried create (same Idempotency-Key) answers the first result.
    let keyed = RequestOptions { idempotency_key: Some("sg-1".into()), ..Default::default() };
    let body = CreateSecurityGroup { name: "db".into(), cluster_id: s.east.id, ..Default::default() };
    let first: SecurityGroup = s.client.post_at("/v1/security-groups", &body, &keyed).await.unwrap();
    let again: SecurityGroup = s.client.post_at("/v1/security-groups", &body, &keyed).await.unwrap();
    assert_eq!(first, again);

    let path = format!("/v1/security-groups/{}", web.id);
    let stale = RequestOptions { if_match: Some(7), ..Default::default() };
    let e = s.client.patch_at::<_, SecurityGroup>(&path, &json!({ "name": "x" }), &stale).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    let fresh = RequestOptions { if_match: Some(1), ..Default::default() };
    let renamed: SecurityGroup =
        s.client.patch_at(&path, &json!({ "name": "frontend", "description": "http in" }), &fresh).await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.description.as_str(), renamed.version), ("frontend", "http in", 2));
    let e = s.client.patch_at::<_, SecurityGroup>(&path, &json!({ "cluster_id": s.east.id }), &opts()).await;
    assert_eq!(e.unwrap_err().status(), Some(400), "the cluster is fixed");
    assert_eq!(s.client.get_at::<SecurityGroup>(&path).await.unwrap(), renamed);

    let page: Page<SecurityGroup> = s.client.get_at("/v1/security-groups").await.unwrap();
    assert_eq!(page.items.iter().map(|g| g.id).collect::<Vec<_>>(), [web.id, first.id]);

    rule(
        &s.client,
        web.id,
        json!({ "direction": "ingress", "protocol": "tcp", "port_from": 443, "remote_cidr": "0.0.0.0/0" }),
    )
    .await
    .unwrap();
    s.client.delete_at(&path).await.expect("delete");
    assert_eq!(s.client.get_at::<SecurityGroup>(&path).await.unwrap_err().status(), Some(404));
    assert_eq!(rules(&s.client, web.id).await.unwrap_err().status(), Some(404));
    let actions = ["security_group.create", "security_group.update", "security_group.delete"];
    assert_eq!(audited(&s.app, web.id).await, actions);
    let mut conn = s.app.db.admin().await;
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM security_group_rules WHERE security_group_id = $1")
        .bind(web.id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the rules went with the group");
    s.app.stop().await;
}

#[tokio::test]
async fn rules_are_validated_normalised_and_unique() {
    let s = setup().await;
    let g = group(&s.client, "web", s.west.id).await.unwrap();

    let ssh = rule(&s.client, g.id, json!({ "direction": "ingress", "protocol": "tcp", "port_from": 22, "remote_cidr": "10.0.0.0/8", "description": "ssh" }))
        .await
        .expect("ssh");
    assert_eq!((ssh.port_from, ssh.port_to, ssh.remote_cidr.as_str()), (Some(22), Some(22), "10.0.0.0/8"));
    let v6 = rule(&s.client, g.id, json!({ "direction": "egress", "protocol": "udp", "port_from": 53, "port_to": 53, "remote_cidr": "2001:DB8:0:0::/32" }))
        .await
        .expect("ipv6");
    assert_eq!(v6.remote_cidr, "2001:db8::/32", "IPv6 in its canonical form");
    let host = rule(&s.client, g.id, json!({ "direction": "ingress", "protocol": "icmp", "remote_cidr": "192.0.2.7" }))
        .await
        .expect("a host");
    assert_eq!((host.remote_cidr.as_str(), host.port_from, host.port_to), ("192.0.2.7/32", None, None));
    let all = rule(&s.client, g.id, json!({ "direction": "ingress", "protocol": "tcp", "remote_cidr": "::/0" }))
        .await
        .expect("every port");
    assert_eq!((all.port_from, all.port_to), (Some(1), Some(65535)), "tcp without ports is every port");

    // The same rule in another spelling is a duplicate.
    for same in [
        json!({ "direction": "ingress", "protocol": "tcp", "port_from": 22, "port_to": 22, "remote_cidr": "10.0.0.0/8" }),
        json!({ "direction": "egress", "protocol": "udp", "port_from": 53, "remote_cidr": "2001:db8::/32" }),
        json!({ "direction": "ingress", "protocol": "icmp", "remote_cidr": "192.0.2.7/32", "description": "ping" }),
        json!({ "direction": "ingress", "protocol": "tcp", "port_from": 1, "port_to": 65535, "remote_cidr": "::/0" }),
    ] {
        assert_eq!(status(rule(&s.client, g.id, same.clone()).await.unwrap_err()), is(409, "duplicate_rule"), "{same}");
    }
    // Other direction, protocol, ports or CIDR: not a duplicate.
    rule(
        &s.client,
        g.id,
        json!({ "direction": "egress", "protocol": "tcp", "port_from": 22, "remote_cidr": "10.0.0.0/8" }),
    )
    .await
    .expect("egress differs");
    rule(
        &s.client,
        g.id,
        json!({ "direction": "ingress", "protocol": "tcp", "port_from": 22, "remote_cidr": "10.0.0.0/16" }),
    )
    .await
    .expect("cidr differs");

    // Bad rules: 400 naming the field, nothing written.
    let before = rules(&s.client, g.id).await.unwrap();
    for (bad, named) in [
        (json!({ "direction": "ingress", "protocol": "tcp", "port_from": 0, "remote_cidr": "0.0.0.0/0" }), "port_from"),
        (
            json!({ "direction": "ingress", "protocol": "tcp", "port_from": 80, "port_to": 65536, "remote_cidr": "0.0.0.0/0" }),
            "port_to",
        ),
        (
            json!({ "direction": "ingress", "protocol": "tcp", "port_from": 90, "port_to": 80, "remote_cidr": "0.0.0.0/0" }),
            "port_to",
        ),
        (
            json!({ "direction": "ingress", "protocol": "icmp", "port_from": 8, "remote_cidr": "0.0.0.0/0" }),
            "port_from",
        ),
        (
            json!({ "direction": "ingress", "protocol": "tcp", "port_from": 22, "remote_cidr": "10.0.0.1/8" }),
            "remote_cidr",
        ),
        (
            json!({ "direction": "ingress", "protocol": "tcp", "port_from": 22, "remote_cidr": "2001:db8::/129" }),
            "remote_cidr",
        ),
        (json!({ "direction": "inbound", "protocol": "tcp", "remote_cidr": "0.0.0.0/0" }), "direction"),
        (json!({ "direction": "ingress", "protocol": "sctp", "remote_cidr": "0.0.0.0/0" }), "protocol"),
    ] {
        let e = s
            .client
            .post_at::<_, Value>(&format!("/v1/security-groups/{}/rules", g.id), &bad, &opts())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(400), "{bad}");
        assert_eq!(field(&e), Some(named), "{bad}");
    }
    let e = rule(
        &s.client,
        g.id,
        json!({ "direction": "ingress", "protocol": "tcp", "port_from": 22, "remote_cidr": "10.0.0.1/8" }),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("10.0.0.0/8"), "the message suggests the network: {e}");
    assert_eq!(rules(&s.client, g.id).await.unwrap(), before, "nothing written");

    // Delete a rule; it is gone, once.
    let path = format!("/v1/security-groups/{}/rules/{}", g.id, ssh.id);
    s.client.delete_at(&path).await.expect("delete rule");
    assert_eq!(s.client.delete_at(&path).await.unwrap_err().status(), Some(404));
    assert!(!rules(&s.client, g.id).await.unwrap().iter().any(|r| r.id == ssh.id));
    assert_eq!(audited(&s.app, ssh.id).await, ["security_group_rule.create", "security_group_rule.delete"]);
    // A rule id under another group is not found there.
    let other = group(&s.client, "other", s.west.id).await.unwrap();
    let e = s.client.delete_at(&format!("/v1/security-groups/{}/rules/{}", other.id, v6.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    s.app.stop().await;
}

#[tokio::test]
async fn ten_concurrent_creates_of_one_rule_store_it_once() {
    let s = setup().await;
    let g = group(&s.client, "web", s.west.id).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = s.client.clone();
        // Two spellings of the same rule, racing.
        let cidr = if i % 2 == 0 { "2001:db8::/32" } else { "2001:DB8:0::/32" };
        let body = json!({ "direction": "ingress", "protocol": "tcp", "port_from": 443, "remote_cidr": cidr });
        tasks.push(tokio::spawn(async move { rule(&client, g.id, body).await }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(e) => assert_eq!(status(e), is(409, "duplicate_rule")),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(rules(&s.client, g.id).await.unwrap().len(), 1);
    s.app.stop().await;
}

#[tokio::test]
async fn a_group_holds_at_most_a_hundred_rules() {
    let s = setup().await;
    let g = group(&s.client, "busy", s.west.id).await.unwrap();
    for port in 1..=100 {
        rule(
            &s.client,
            g.id,
            json!({ "direction": "ingress", "protocol": "tcp", "port_from": port, "remote_cidr": "0.0.0.0/0" }),
        )
        .await
        .expect("within the limit");
    }
    let e = rule(
        &s.client,
        g.id,
        json!({ "direction": "ingress", "protocol": "tcp", "port_from": 101, "remote_cidr": "0.0.0.0/0" }),
    )
    .await
    .unwrap_err();
    assert_eq!(status(e), is(409, "too_many_rules"));
    assert_eq!(rules(&s.client, g.id).await.unwrap().len(), 100);
    s.app.stop().await;
}

#[tokio::test]
async fn vms_attach_groups_of_their_cluster_and_block_their_deletion() {
    let s = setup().await;
    let web = group(&s.client, "web", s.west.id).await.unwrap();
    let east = group(&s.client, "east", s.east.id).await.unwrap();
    let id = running_vm(&s.client, "web-1", s.west.id, s.template.id).await;

    let member = attach(&s.client, id, web.id).await.expect("attach");
    assert_eq!((member.vm_id, member.security_group_id, member.tenant_id), (id, web.id, s.tenant.id));
    assert_eq!(status(attach(&s.client, id, web.id).await.unwrap_err()), is(409, "security_group_attached"));
    assert_eq!(attached(&s.client, id).await.unwrap(), [web.id]);
    let e = attach(&s.client, id, east.id).await.unwrap_err();
    assert_eq!(status(e), is(422, "invalid_reference"), "another cluster's group");
    let e = attach(&s.client, id, Uuid::now_v7()).await.unwrap_err();
    assert_eq!((e.status(), field(&e)), (Some(422), Some("security_group_id")), "a missing group");

    let group_path = format!("/v1/security-groups/{}", web.id);
    assert_eq!(status(s.client.delete_at(&group_path).await.unwrap_err()), is(409, "security_group_in_use"));

    let member_path = format!("/v1/vms/{id}/security-groups/{}", web.id);
    s.client.delete_at(&member_path).await.expect("detach");
    assert_eq!(s.client.delete_at(&member_path).await.unwrap_err().status(), Some(404), "detached once");
    assert!(attached(&s.client, id).await.unwrap().is_empty());
    assert_eq!(audited(&s.app, member.id).await, ["vm_security_group.attach", "vm_security_group.detach"]);
    s.client.delete_at(&group_path).await.expect("delete once unused");

    // A VM's deletion takes its memberships with it, so the group can go.
    let again = attach(&s.client, id, east.id).await;
    assert_eq!(again.unwrap_err().status(), Some(422));
    let db = group(&s.client, "db", s.west.id).await.unwrap();
    attach(&s.client, id, db.id).await.unwrap();
    let op = s.client.delete_at(&format!("/v1/vms/{id}")).await.expect("delete vm").expect("an operation");
    let op = s.client.wait_operation(op.id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(op.status, OperationStatus::Succeeded, "{:?}", op.error);
    s.client.delete_at(&format!("/v1/security-groups/{}", db.id)).await.expect("no member left");
    s.app.stop().await;
}

#[tokio::test]
async fn another_tenants_groups_rules_and_attachments_are_not_found() {
    let s = setup().await;
    let ours = group(&s.client, "web", s.west.id).await.unwrap();
    let our_rule =
        rule(&s.client, ours.id, json!({ "direction": "ingress", "protocol": "any", "remote_cidr": "10.0.0.0/8" }))
            .await
            .unwrap();
    let our_vm = running_vm(&s.client, "web-1", s.west.id, s.template.id).await;
    attach(&s.client, our_vm, ours.id).await.unwrap();

    let (other, _, them) = s.app.tenant_with_user("globex").await;
    quota(&s.app, &other, &s.west).await;
    let their_vm = running_vm(&them, "evil-1", s.west.id, s.template.id).await;

    let path = format!("/v1/security-groups/{}", ours.id);
    assert_eq!(them.get_at::<SecurityGroup>(&path).await.unwrap_err().status(), Some(404));
    let e = them.patch_at::<_, SecurityGroup>(&path, &json!({ "description": "mine" }), &opts()).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(them.delete_at(&path).await.unwrap_err().status(), Some(404));
    assert_eq!(rules(&them, ours.id).await.unwrap_err().status(), Some(404));
    let e = rule(&them, ours.id, json!({ "direction": "egress", "protocol": "any", "remote_cidr": "0.0.0.0/0" })).await;
    assert_eq!(e.unwrap_err().status(), Some(404));
    let e = them.delete_at(&format!("{path}/rules/{}", our_rule.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    let listed: Page<SecurityGroup> = them.get_at("/v1/security-groups").await.unwrap();
    assert!(listed.items.is_empty());

    // Our group is no group to their VM (the same answer as a missing one), and
    // our VM's memberships are not theirs to see or change.
    let e = attach(&them, their_vm, ours.id).await.unwrap_err();
    assert_eq!((e.status(), field(&e)), (Some(422), Some("security_group_id")));
    assert_eq!(attached(&them, our_vm).await.unwrap_err().status(), Some(404));
    let theirs = group(&them, "web", s.west.id).await.expect("names are per tenant");
    assert_eq!(attach(&them, our_vm, theirs.id).await.unwrap_err().status(), Some(404));
    let e = them.delete_at(&format!("/v1/vms/{our_vm}/security-groups/{}", ours.id)).await.unwrap_err();
    assert_eq!(e.status(), Some(404));

    assert_eq!(rules(&s.client, ours.id).await.unwrap(), [our_rule], "untouched");
    assert_eq!(attached(&s.client, our_vm).await.unwrap(), [ours.id]);
    s.app.stop().await;
}

#[tokio::test]
async fn cluster_delegates_see_groups_of_their_cluster_only() {
    let s = setup().await;
    let west = group(&s.client, "w", s.west.id).await.unwrap();
    let east = group(&s.client, "e", s.east.id).await.unwrap();
    let west_rule =
        rule(&s.client, west.id, json!({ "direction": "ingress", "protocol": "icmp", "remote_cidr": "0.0.0.0/0" }))
            .await
            .unwrap();
    let ops = s.app.cluster_delegate(&s.client, &s.tenant, "ops", "cluster-operator", s.west.id).await;

    let listed: Page<SecurityGroup> = ops.get_at("/v1/security-groups").await.unwrap();
    assert_eq!(listed.items.iter().map(|g| g.id).collect::<Vec<_>>(), [west.id]);
    let east_path = format!("/v1/security-groups/{}", east.id);
    assert_eq!(ops.get_at::<SecurityGroup>(&east_path).await.unwrap_err().status(), Some(404));
    assert_eq!(rules(&ops, east.id).await.unwrap_err().status(), Some(404));
    let e = rule(&ops, east.id, json!({ "direction": "ingress", "protocol": "any", "remote_cidr": "0.0.0.0/0" })).await;
    assert_eq!(e.unwrap_err().status(), Some(404));
    assert_eq!(status(group(&ops, "e2", s.east.id).await.unwrap_err()), is(422, "invalid_reference"));

    // On its own cluster it operates: groups, rules, memberships.
    assert_eq!(rules(&ops, west.id).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [west_rule.id]);
    group(&ops, "w2", s.west.id).await.expect("create on its cluster");
    rule(
        &ops,
        west.id,
        json!({ "direction": "ingress", "protocol": "tcp", "port_from": 80, "remote_cidr": "0.0.0.0/0" }),
    )
    .await
    .expect("add a rule");
    let id = running_vm(&s.client, "web-1", s.west.id, s.template.id).await;
    attach(&ops, id, west.id).await.expect("attach on its cluster");
    assert_eq!(attached(&ops, id).await.unwrap(), [west.id]);
    // ... but cluster-operator destroys nothing.
    assert_eq!(
        ops.delete_at(&format!("/v1/security-groups/{}", west.id)).await.unwrap_err().code(),
        Some("permission_denied")
    );
    let e = ops.delete_at(&format!("/v1/security-groups/{}/rules/{}", west.id, west_rule.id)).await.unwrap_err();
    assert_eq!(e.code(), Some("permission_denied"));
    s.app.stop().await;
}
