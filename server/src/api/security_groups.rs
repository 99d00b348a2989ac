//! `/v1/security-groups`, their rules (`/v1/security-groups/{id}/rules`) and VM
//! membership (`/v1/vms/{id}/security-groups`): a tenant's named sets of allow
//! rules on one cluster, and which VMs of that cluster they apply to.
//!
//! * A group has a name (unique in the tenant) and a description; its cluster
//!   is fixed. It cannot be deleted while a VM is attached to it (409
//!   `security_group_in_use`); its rules go with it.
//! * A rule is a direction (`ingress`/`egress`), a protocol (`tcp`, `udp`,
//!   `icmp`, `any`), a port range (tcp/udp only: 1–65535, from <= to; none
//!   given means every port, `port_from` alone one port) and a remote CIDR
//!   (IPv4 or IPv6, host bits zero; a bare address is a /32 or /128), stored
//!   normalised so that one rule has one spelling. The same rule twice is 409
//!   `duplicate_rule`; a group holds at most [`MAX_RULES`] (409
//!   `too_many_rules` beyond). Rules are added and removed, never edited.
//! * A VM is attached to groups of its own tenant on its own cluster only: any
//!   other group (missing, another tenant's, another cluster's) is 422
//!   `invalid_reference` naming `security_group_id`, the same answer for each.
//!
//! A cluster delegate sees the groups of its clusters only; another cluster's
//! or another tenant's group is a 404, like a missing one.
//!
//! **Not enforced yet**: Basalt has no packet filter on the hosts (networks are
//! user-mode NICs), so rules are stored and served but do not reach libvirt;
//! see docs/compute.md.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{
    AttachSecurityGroup, CreateSecurityGroup, CreateSecurityGroupRule, Page, RuleDirection, RuleProtocol,
    SecurityGroup, SecurityGroupRule, UpdateSecurityGroup, VmSecurityGroup,
};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud::{self, OnCluster};
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, PathIds, Req};
use super::vms;
use crate::audit::Event;
use crate::authz::Permission;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

/// The most rules one group holds.
pub const MAX_RULES: i64 = 100;

const COLUMNS: &str = "id, tenant_id, cluster_id, name, description, version, created_at, updated_at";

const RULE_COLUMNS: &str = "id, tenant_id, security_group_id, direction, protocol, port_from, port_to, \
                            remote_cidr::text AS remote_cidr, description, created_at";

const MEMBER_COLUMNS: &str = "id, tenant_id, vm_id, security_group_id, created_at";

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: Uuid,
    tenant_id: Uuid,
    cluster_id: Uuid,
    name: String,
    description: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<GroupRow> for SecurityGroup {
    fn from(r: GroupRow) -> SecurityGroup {
        SecurityGroup {
            id: r.id,
            tenant_id: r.tenant_id,
            cluster_id: r.cluster_id,
            name: r.name,
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: Uuid,
    tenant_id: Uuid,
    security_group_id: Uuid,
    direction: String,
    protocol: String,
    port_from: Option<i32>,
    port_to: Option<i32>,
    remote_cidr: String,
    description: String,
    created_at: DateTime<Utc>,
}

impl From<RuleRow> for SecurityGroupRule {
    fn from(r: RuleRow) -> SecurityGroupRule {
        // The table's CHECKs admit only the values these parse.
        SecurityGroupRule {
            id: r.id,
            tenant_id: r.tenant_id,
            security_group_id: r.security_group_id,
            direction: RuleDirection::parse(&r.direction).unwrap_or_default(),
            protocol: RuleProtocol::parse(&r.protocol).unwrap_or_default(),
            port_from: r.port_from,
            port_to: r.port_to,
            remote_cidr: r.remote_cidr,
            description: r.description,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: Uuid,
    tenant_id: Uuid,
    vm_id: Uuid,
    security_group_id: Uuid,
    created_at: DateTime<Utc>,
}

impl From<MemberRow> for VmSecurityGroup {
    fn from(r: MemberRow) -> VmSecurityGroup {
        VmSecurityGroup {
            id: r.id,
            tenant_id: r.tenant_id,
            vm_id: r.vm_id,
            security_group_id: r.security_group_id,
            created_at: r.created_at,
        }
    }
}

// --- Rule validation ---------------------------------------------------------

/// A rule as it is stored: validated and in its one spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalRule {
    pub direction: RuleDirection,
    pub protocol: RuleProtocol,
    pub ports: Option<(i32, i32)>,
    pub remote_cidr: String,
}

impl NormalRule {
    /// Checks a rule (errors name the field) and normalises it.
    pub fn new(body: &CreateSecurityGroupRule) -> ApiResult<NormalRule> {
        Ok(NormalRule {
            direction: body.direction,
            protocol: body.protocol,
            ports: ports(body.protocol, body.port_from, body.port_to)?,
            remote_cidr: remote_cidr("remote_cidr", &body.remote_cidr)?,
        })
    }
}

/// The port range of a rule: none for icmp/any (giving one is an error), every
/// port for tcp/udp without ports, `from` alone for a single port.
fn ports(protocol: RuleProtocol, from: Option<i32>, to: Option<i32>) -> ApiResult<Option<(i32, i32)>> {
    if !protocol.has_ports() {
        let field = if from.is_some() { "port_from" } else { "port_to" };
        return match from.or(to) {
            Some(_) => {
                Err(ApiError::bad_field(field, format!("{} rules have no ports: leave out {field}", protocol.as_str())))
            }
            None => Ok(None),
        };
    }
    let in_range = |field: &str, port: i32| {
        if (1..=65535).contains(&port) {
            Ok(port)
        } else {
            Err(ApiError::bad_field(field, format!("{field} must be 1 to 65535")))
        }
    };
    match (from, to) {
        (None, None) => Ok(Some((1, 65535))),
        (None, Some(_)) => Err(ApiError::bad_field("port_from", "port_from is required with port_to")),
        (Some(from), to) => {
            let from = in_range("port_from", from)?;
            let to = in_range("port_to", to.unwrap_or(from))?;
            if to < from {
                return Err(ApiError::bad_field("port_to", format!("port_to must be at least port_from ({from})")));
            }
            Ok(Some((from, to)))
        }
    }
}

/// Parses an IPv4 or IPv6 network in CIDR notation (a bare address is one
/// host: /32 or /128) with no host bits set, and answers its canonical text
/// (`2001:DB8:0::/32` is `2001:db8::/32`). The error names `field`.
pub fn remote_cidr(field: &str, text: &str) -> ApiResult<String> {
    let usage = || {
        ApiError::bad_field(
            field,
            format!("{field} must be an IPv4 or IPv6 network in CIDR notation, e.g. 10.0.0.0/8 or 2001:db8::/32"),
        )
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| usage())?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if canonical_number(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(ApiError::bad_field(field, format!("{field} must have a prefix length of 0 to {max}"))),
        },
        Some(_) => return Err(usage()),
    };
    let network = masked(addr, prefix);
    if network != addr {
        return Err(ApiError::bad_field(field, format!("{field} has host bits set: did you mean {network}/{prefix}?")));
    }
    Ok(format!("{network}/{prefix}"))
}

/// Decimal digits without a sign or a leading zero (`0` itself is fine).
fn canonical_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// `addr` with every bit past `prefix` cleared.
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

// --- Groups --------------------------------------------------------------------

/// A group the caller may see (RLS, then its cluster's read permission),
/// optionally locked. Anything else is a 404.
async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<SecurityGroup> {
    let what = ("security_groups", COLUMNS, "security_group");
    crud::fetch_on_cluster::<GroupRow, SecurityGroup>(req, tx, what, id, lock, Permission::SecurityGroupRead, |g| {
        g.cluster_id
    })
    .await
}

/// The group, locked, for a change that needs `permission` on its cluster.
async fn lock_for(req: &Req, tx: &mut Tx, id: Uuid, permission: Permission) -> ApiResult<SecurityGroup> {
    let group = fetch(req, tx, id, true).await?;
    req.grants.require_on_cluster(permission, group.cluster_id)?;
    Ok(group)
}

/// List the security groups the caller may see.
#[utoipa::path(get, operation_id = "security_groups_list", path = "/v1/security-groups", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<SecurityGroup>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<SecurityGroup>>> {
    crud::list_on_clusters::<GroupRow, SecurityGroup>(
        &req,
        &q,
        "security_groups",
        COLUMNS,
        Permission::SecurityGroupList,
    )
    .await
}

/// Create a security group (with no rules) on a cluster where the tenant holds
/// a quota. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "security_groups_create", path = "/v1/security-groups", tag = "compute", request_body = CreateSecurityGroup,
    responses((status = 201, body = SecurityGroup), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateSecurityGroup>) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let new = OnCluster {
        tenant_id: body.tenant_id,
        cluster_id: body.cluster_id,
        name: &body.name,
        description: body.description.as_deref(),
    };
    let (cluster, description) = crud::check_on_cluster(&req, &mut tx, new, Permission::SecurityGroupCreate).await?;
    let name = body.name.clone();
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                let row: GroupRow = sqlx::query_as(&format!(
                    "INSERT INTO security_groups (id, tenant_id, cluster_id, name, description)
                     VALUES ($1, basalt_tenant(), $2, $3, $4) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(cluster)
                .bind(&name)
                .bind(&description)
                .fetch_one(&mut **tx)
                .await?;
                Ok(SecurityGroup::from(row))
            })
        },
        |g| Event::new("security_group.create", "security_group", Some(g.id)).details(json!({ "after": g })),
    )
    .await
}

/// Read a security group.
#[utoipa::path(get, operation_id = "security_groups_get", path = "/v1/security-groups/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = SecurityGroup), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<SecurityGroup>> {
    let mut tx = req.tx()?;
    let group = fetch(&req, &mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(group))
}

/// Rename a security group or change its description (its cluster is fixed).
/// Takes `If-Match`.
#[utoipa::path(patch, operation_id = "security_groups_update", path = "/v1/security-groups/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateSecurityGroup, responses((status = 200, body = SecurityGroup), (status = 400), (status = 404), (status = 409), (status = 412)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateSecurityGroup>,
) -> ApiResult<Json<SecurityGroup>> {
    validate::rename(body.name.as_deref(), body.description.as_deref())?;
    let mut tx = req.tx()?;
    let current = lock_for(&req, &mut tx, id, Permission::SecurityGroupUpdate).await?;
    check_version(&if_match, current.version)?;
    let (name, description) = (body.name.as_deref(), body.description.as_deref());
    let what = ("security_groups", COLUMNS);
    let after = crud::renamed::<GroupRow, SecurityGroup>(&mut tx, what, id, name, description).await?;
    crud::updated(tx, &req, "security_group.update", "security_group", id, &current, after).await
}

/// Delete a security group and its rules; refused while VMs are attached to
/// it (409 `security_group_in_use`).
#[utoipa::path(delete, operation_id = "security_groups_delete", path = "/v1/security-groups/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = lock_for(&req, &mut tx, id, Permission::SecurityGroupDelete).await?;
    let (members,): (i64,) = sqlx::query_as("SELECT count(*) FROM vm_security_groups WHERE security_group_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if members > 0 {
        return Err(ApiError::Conflict {
            code: "security_group_in_use",
            message: format!("{members} VM(s) are attached to this security group; detach them first"),
        });
    }
    crud::deleted(tx, &req, "security_groups", "security_group.delete", "security_group", id, &current).await
}

// --- Rules -----------------------------------------------------------------------

/// List a security group's rules.
#[utoipa::path(get, operation_id = "security_group_rules_list", path = "/v1/security-groups/{id}/rules", tag = "compute", params(("id" = Uuid, Path), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<SecurityGroupRule>), (status = 404)), security(("bearer" = [])))]
pub async fn list_rules(
    req: Req,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<SecurityGroupRule>>> {
    let mut tx = req.tx()?;
    let group = fetch(&req, &mut tx, id, false).await?;
    req.grants.require_on_cluster(Permission::SecurityGroupRuleList, group.cluster_id)?;
    let table = ("security_group_rules", RULE_COLUMNS);
    crud::list_children::<RuleRow, SecurityGroupRule>(tx, &q, table, ("security_group_id", group.id)).await
}

/// Add a rule to a security group: 201 with the rule as stored (normalised).
/// The same rule twice is 409 `duplicate_rule`; past [`MAX_RULES`] rules, 409
/// `too_many_rules`. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "security_group_rules_create", path = "/v1/security-groups/{id}/rules", tag = "compute", params(("id" = Uuid, Path)),
    request_body = CreateSecurityGroupRule, responses((status = 201, body = SecurityGroupRule), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn create_rule(
    req: Req,
    PathId(id): PathId,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CreateSecurityGroupRule>,
) -> ApiResult<Response> {
    let rule = NormalRule::new(&body)?;
    let description = body.description.clone().unwrap_or_default();
    validate::description(Some(&description))?;
    let mut tx = req.tx()?;
    // The group's row stays locked: rule creates of one group queue, so the
    // count and the duplicate check below see every rule.
    let group = lock_for(&req, &mut tx, id, Permission::SecurityGroupRuleCreate).await?;
    crud::create(
        tx,
        &req,
        &key,
        &(group.id, &body),
        move |tx| Box::pin(async move { insert_rule(tx, group.id, &rule, &description).await }),
        |r| Event::new("security_group_rule.create", "security_group_rule", Some(r.id)).details(json!({ "after": r })),
    )
    .await
}

/// Inserts `rule` into `group` (whose row the caller holds locked) unless the
/// group is full or already has it.
async fn insert_rule(tx: &mut Tx, group: Uuid, rule: &NormalRule, description: &str) -> ApiResult<SecurityGroupRule> {
    let (count, same): (i64, Option<Uuid>) = sqlx::query_as(
        "SELECT count(*), (array_agg(id) FILTER (WHERE direction = $2 AND protocol = $3
                    AND port_from IS NOT DISTINCT FROM $4 AND port_to IS NOT DISTINCT FROM $5
                    AND remote_cidr = $6::cidr))[1]
           FROM security_group_rules WHERE security_group_id = $1",
    )
    .bind(group)
    .bind(rule.direction.as_str())
    .bind(rule.protocol.as_str())
    .bind(rule.ports.map(|(from, _)| from))
    .bind(rule.ports.map(|(_, to)| to))
    .bind(&rule.remote_cidr)
    .fetch_one(&mut **tx)
    .await?;
    if let Some(existing) = same {
        return Err(ApiError::Conflict {
            code: "duplicate_rule",
            message: format!("the security group already has this rule ({existing})"),
        });
    }
    if count >= MAX_RULES {
        return Err(ApiError::Conflict {
            code: "too_many_rules",
            message: format!("a security group holds at most {MAX_RULES} rules; remove one first"),
        });
    }
    let row: RuleRow = sqlx::query_as(&format!(
        "INSERT INTO security_group_rules
                (id, tenant_id, security_group_id, direction, protocol, port_from, port_to, remote_cidr, description)
         VALUES ($1, basalt_tenant(), $2, $3, $4, $5, $6, $7::cidr, $8) RETURNING {RULE_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(group)
    .bind(rule.direction.as_str())
    .bind(rule.protocol.as_str())
    .bind(rule.ports.map(|(from, _)| from))
    .bind(rule.ports.map(|(_, to)| to))
    .bind(&rule.remote_cidr)
    .bind(description)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// Remove a rule from a security group.
#[utoipa::path(delete, operation_id = "security_group_rules_delete", path = "/v1/security-groups/{id}/rules/{rule_id}", tag = "compute", params(("id" = Uuid, Path), ("rule_id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete_rule(req: Req, PathIds(id, rule_id): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let group = lock_for(&req, &mut tx, id, Permission::SecurityGroupRuleDelete).await?;
    let row: Option<RuleRow> = sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM security_group_rules WHERE id = $1 AND security_group_id = $2"
    ))
    .bind(rule_id)
    .bind(group.id)
    .fetch_optional(&mut *tx)
    .await?;
    let rule = SecurityGroupRule::from(row.ok_or(ApiError::NotFound { kind: "security_group_rule" })?);
    let (action, kind) = ("security_group_rule.delete", "security_group_rule");
    crud::deleted(tx, &req, "security_group_rules", action, kind, rule_id, &rule).await
}

// --- VM membership -------------------------------------------------------------

/// List the security groups a VM is attached to.
#[utoipa::path(get, operation_id = "vm_security_groups_list", path = "/v1/vms/{id}/security-groups", tag = "compute", params(("id" = Uuid, Path), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<VmSecurityGroup>), (status = 404)), security(("bearer" = [])))]
pub async fn list_attached(
    req: Req,
    PathId(vm): PathId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<VmSecurityGroup>>> {
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, vm, false).await?;
    req.grants.require_on_cluster(Permission::VmSecurityGroupList, vm.cluster_id)?;
    let table = ("vm_security_groups", MEMBER_COLUMNS);
    crud::list_children::<MemberRow, VmSecurityGroup>(tx, &q, table, ("vm_id", vm.id)).await
}

/// Attach a security group of the VM's tenant and cluster to the VM (422
/// `invalid_reference` for any other group; 409 `security_group_attached` if it
/// already is). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "vm_security_groups_attach", path = "/v1/vms/{id}/security-groups", tag = "compute", params(("id" = Uuid, Path)), request_body = AttachSecurityGroup,
    responses((status = 201, body = VmSecurityGroup), (status = 400), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn attach(
    req: Req,
    PathId(vm): PathId,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<AttachSecurityGroup>,
) -> ApiResult<Response> {
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, vm, true).await?;
    req.grants.require_on_cluster(Permission::VmSecurityGroupAttach, vm.cluster_id)?;
    // Locked, so a concurrent delete of the group waits for this attachment
    // (and then refuses) or wins first (and this answers 422).
    let found = crud::fetch::<GroupRow, SecurityGroup>(
        &mut tx,
        "security_groups",
        COLUMNS,
        body.security_group_id,
        true,
        "security_group",
    )
    .await;
    // Missing, another tenant's (RLS) and another cluster's look alike; a
    // database failure stays an error.
    let group = match found {
        Ok(group) if group.cluster_id == vm.cluster_id => group,
        Ok(_) | Err(ApiError::NotFound { .. }) => {
            return Err(ApiError::invalid_reference("security_group_id", "no such security group on the VM's cluster"))
        }
        Err(e) => return Err(e),
    };
    crud::create(
        tx,
        &req,
        &key,
        &(vm.id, &body),
        move |tx| Box::pin(async move { insert_member(tx, vm.id, group.id).await }),
        |m| Event::new("vm_security_group.attach", "vm_security_group", Some(m.id)).details(json!({ "after": m })),
    )
    .await
}

async fn insert_member(tx: &mut Tx, vm: Uuid, group: Uuid) -> ApiResult<VmSecurityGroup> {
    let row: Option<MemberRow> = sqlx::query_as(&format!(
        "INSERT INTO vm_security_groups (id, tenant_id, vm_id, security_group_id)
         VALUES ($1, basalt_tenant(), $2, $3)
         ON CONFLICT ON CONSTRAINT vm_security_groups_unique DO NOTHING RETURNING {MEMBER_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(vm)
    .bind(group)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(VmSecurityGroup::from).ok_or_else(|| ApiError::Conflict {
        code: "security_group_attached",
        message: "the security group is already attached to this VM".into(),
    })
}

/// Detach a security group from a VM.
#[utoipa::path(delete, operation_id = "vm_security_groups_detach", path = "/v1/vms/{id}/security-groups/{security_group_id}", tag = "compute", params(("id" = Uuid, Path), ("security_group_id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn detach(req: Req, PathIds(vm, group): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, vm, true).await?;
    req.grants.require_on_cluster(Permission::VmSecurityGroupDetach, vm.cluster_id)?;
    let row: Option<MemberRow> = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM vm_security_groups WHERE vm_id = $1 AND security_group_id = $2"
    ))
    .bind(vm.id)
    .bind(group)
    .fetch_optional(&mut *tx)
    .await?;
    let member = VmSecurityGroup::from(row.ok_or(ApiError::NotFound { kind: "security_group_attachment" })?);
    let (action, kind) = ("vm_security_group.detach", "vm_security_group");
    crud::deleted(tx, &req, "vm_security_groups", action, kind, member.id, &member).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: RuleProtocol, from: Option<i32>, to: Option<i32>) -> CreateSecurityGroupRule {
        CreateSecurityGroupRule {
            protocol,
            port_from: from,
            port_to: to,
            remote_cidr: "0.0.0.0/0".into(),
            ..Default::default()
        }
    }

    fn field(e: ApiError) -> String {
        e.to_string()
    }

    #[test]
    fn cidrs_are_normalised() {
        for (given, stored) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("192.0.2.7", "192.0.2.7/32"),
            ("2001:DB8:0:0::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("2001:db8::1", "2001:db8::1/128"),
        ] {
            assert_eq!(remote_cidr("remote_cidr", given).unwrap(), stored, "{given}");
        }
    }

    #[test]
    fn bad_cidrs_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/08",
            "10.0.0.0/+8",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/",
            "fe80::1%eth0/64",
        ] {
            let e = remote_cidr("remote_cidr", bad).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(field(remote_cidr("remote_cidr", "10.0.0.1/8").unwrap_err()).contains("10.0.0.0/8"));
        assert!(field(remote_cidr("remote_cidr", "2001:db8::1/32").unwrap_err()).contains("2001:db8::/32"));
    }

    #[test]
    fn ports_follow_the_protocol() {
        let ok = |r: CreateSecurityGroupRule| NormalRule::new(&r).unwrap().ports;
        assert_eq!(ok(rule(RuleProtocol::Tcp, None, None)), Some((1, 65535)));
        assert_eq!(ok(rule(RuleProtocol::Udp, Some(53), None)), Some((53, 53)));
        assert_eq!(ok(rule(RuleProtocol::Tcp, Some(8000), Some(8080))), Some((8000, 8080)));
        assert_eq!(ok(rule(RuleProtocol::Icmp, None, None)), None);
        for bad in [
            rule(RuleProtocol::Tcp, Some(0), None),
            rule(RuleProtocol::Tcp, Some(1), Some(65536)),
            rule(RuleProtocol::Tcp, Some(80), Some(79)),
            rule(RuleProtocol::Tcp, None, Some(80)),
            rule(RuleProtocol::Icmp, Some(1), None),
            rule(RuleProtocol::Any, None, Some(1)),
        ] {
            assert_eq!(NormalRule::new(&bad).unwrap_err().status(), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
