//! `/v1/networks` and `/v1/vms/{id}/interfaces`: a tenant's private IPv4
//! networks on a cluster, and its VMs' interfaces on them with the addresses
//! Postgres hands out (IPAM).
//!
//! * A network's CIDR is IPv4, prefix /16 to /29, host bits zero, and overlaps
//!   no other network of the tenant on the same cluster (checked under a
//!   transaction-scoped advisory lock per tenant and cluster, so two concurrent
//!   creates cannot both pass). Only its name and description change later.
//! * An interface gets the lowest free host address of its network (the network
//!   address, the gateway `.1` and the broadcast address are never handed out),
//!   or the one asked for if it is free and inside the network. Allocation runs
//!   with the network's row locked, and `UNIQUE (tenant_id, network_id, ip)`
//!   makes a double allocation impossible even if that lock were missing.
//! * The NIC reaches the VM's domain through [`Hypervisor::attach_device`]
//!   (hot-plugged where the host can, else from the next boot: see
//!   docs/compute.md), after the row is committed; a host that refuses undoes the row.
//! * A network with interfaces cannot be deleted (409 `network_in_use`).
//!
//! A cluster delegate sees the networks of its clusters only; another
//! cluster's or another tenant's network is a 404, like a missing one.
//!
//! [`Hypervisor::attach_device`]: crate::compute::Hypervisor::attach_device

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{AttachInterface, CreateNetwork, Network, Page, UpdateNetwork, VmInterface};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud::{self, OnCluster};
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, PathIds, Req};
use super::vms;
use crate::audit::{self, Event};
use crate::authz::Permission;
use crate::compute::{placement, Device};
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::idempotency::{self, Claim};
use crate::validate;

const COLUMNS: &str =
    "id, tenant_id, cluster_id, name, cidr::text AS cidr, description, version, created_at, updated_at";

const INTERFACE_COLUMNS: &str = "id, tenant_id, vm_id, network_id, host(ip) AS ip, mac::text AS mac, created_at";

#[derive(sqlx::FromRow)]
struct NetworkRow {
    id: Uuid,
    tenant_id: Uuid,
    cluster_id: Uuid,
    name: String,
    cidr: String,
    description: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<NetworkRow> for Network {
    fn from(r: NetworkRow) -> Network {
        Network {
            id: r.id,
            tenant_id: r.tenant_id,
            cluster_id: r.cluster_id,
            name: r.name,
            cidr: r.cidr,
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct InterfaceRow {
    id: Uuid,
    tenant_id: Uuid,
    vm_id: Uuid,
    network_id: Uuid,
    ip: String,
    mac: String,
    created_at: DateTime<Utc>,
}

impl From<InterfaceRow> for VmInterface {
    fn from(r: InterfaceRow) -> VmInterface {
        VmInterface {
            id: r.id,
            tenant_id: r.tenant_id,
            vm_id: r.vm_id,
            network_id: r.network_id,
            ip: r.ip,
            mac: r.mac,
            created_at: r.created_at,
        }
    }
}

/// An IPv4 network: its address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses a private network's `a.b.c.d/n`: a prefix of /16 to /29 and no
    /// host bits set; the error names `field`.
    pub fn parse(field: &str, text: &str) -> ApiResult<Cidr> {
        Cidr::parse_with_prefix(field, text, 16..=29)
    }

    /// Parses `a.b.c.d/n` with a prefix length in `prefixes` and no host bits
    /// set; the error names `field`.
    pub fn parse_with_prefix(field: &str, text: &str, prefixes: RangeInclusive<u8>) -> ApiResult<Cidr> {
        let bad = |m: &str| ApiError::bad_field(field, format!("{field} {m}"));
        let (addr, prefix) =
            text.split_once('/').ok_or_else(|| bad("must be an IPv4 network in CIDR notation, e.g. 10.0.0.0/24"))?;
        let network: Ipv4Addr =
            addr.parse().map_err(|_| bad("must be an IPv4 network in CIDR notation, e.g. 10.0.0.0/24"))?;
        let prefix: u8 = match prefix.parse() {
            Ok(p) if prefixes.contains(&p) && !prefix.starts_with(['0', '+']) => p,
            _ => {
                let (low, high) = (prefixes.start(), prefixes.end());
                return Err(bad(&format!("must have a prefix length of /{low} to /{high}")));
            }
        };
        let cidr = Cidr { network, prefix };
        if u32::from(network) & !cidr.mask() != 0 {
            let base = Ipv4Addr::from(u32::from(network) & cidr.mask());
            return Err(bad(&format!("has host bits set: did you mean {base}/{prefix}?")));
        }
        Ok(cidr)
    }

    fn mask(self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    /// Whether `ip` is an address Basalt hands out here: inside the network,
    /// and neither the network address, the gateway (`.1`) nor the broadcast.
    pub fn is_host(self, ip: Ipv4Addr) -> bool {
        self.is_usable(ip) && self.offset(ip) >= 2
    }

    /// Whether `ip` is inside the network and neither its network nor its
    /// broadcast address.
    pub fn is_usable(self, ip: Ipv4Addr) -> bool {
        let offset = self.offset(ip);
        u32::from(ip) & self.mask() == u32::from(self.network) && offset >= 1 && offset < !self.mask()
    }

    fn offset(self, ip: Ipv4Addr) -> u32 {
        u32::from(ip).wrapping_sub(u32::from(self.network))
    }

    /// `a.b.c.d/n`.
    pub fn text(self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }
}

/// Refuses (409 `cidr_overlap`) a CIDR `text` that overlaps a row of `table`
/// (whose rows are `kind`s with `name` and `cidr`) on `cluster` that the
/// transaction sees. Takes a transaction-scoped advisory lock per table,
/// context and cluster first, so two concurrent creates cannot both pass.
pub async fn refuse_overlap(tx: &mut Tx, (table, kind): (&str, &str), cluster: Uuid, text: &str) -> ApiResult<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(
             'basalt.' || $1 || ':' || coalesce(basalt_tenant()::text, 'system') || ':' || $2, 0))",
    )
    .bind(table)
    .bind(cluster.to_string())
    .execute(&mut **tx)
    .await?;
    let overlapping: Option<(String, String)> = sqlx::query_as(&format!(
        "SELECT name, cidr::text FROM {table} WHERE cluster_id = $1 AND cidr && $2::cidr ORDER BY id LIMIT 1"
    ))
    .bind(cluster)
    .bind(text)
    .fetch_optional(&mut **tx)
    .await?;
    match overlapping {
        Some((other, other_cidr)) => Err(ApiError::Conflict {
            code: "cidr_overlap",
            message: format!("{text} overlaps {kind} {other} ({other_cidr}) on this cluster"),
        }),
        None => Ok(()),
    }
}

/// A network the caller may see (RLS, then its cluster's read permission),
/// optionally locked. Anything else is a 404.
async fn fetch(req: &Req, tx: &mut Tx, id: Uuid, lock: bool) -> ApiResult<Network> {
    let what = ("networks", COLUMNS, "network");
    crud::fetch_on_cluster::<NetworkRow, Network>(req, tx, what, id, lock, Permission::NetworkRead, |n| n.cluster_id)
        .await
}

/// List the networks the caller may see.
#[utoipa::path(get, operation_id = "networks_list", path = "/v1/networks", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Network>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Network>>> {
    crud::list_on_clusters::<NetworkRow, Network>(&req, &q, "networks", COLUMNS, Permission::NetworkList).await
}

/// Create a private network on a cluster where the tenant holds a quota. Its
/// CIDR must not overlap another network of the tenant on that cluster (409
/// `cidr_overlap`). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "networks_create", path = "/v1/networks", tag = "compute", request_body = CreateNetwork,
    responses((status = 201, body = Network), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateNetwork>) -> ApiResult<Response> {
    let cidr = Cidr::parse("cidr", &body.cidr)?;
    let mut tx = req.tx()?;
    let new = OnCluster {
        tenant_id: body.tenant_id,
        cluster_id: body.cluster_id,
        name: &body.name,
        description: body.description.as_deref(),
    };
    let (cluster, description) = crud::check_on_cluster(&req, &mut tx, new, Permission::NetworkCreate).await?;
    let (name, text) = (body.name.clone(), cidr.text());
    crud::create(
        tx,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                refuse_overlap(tx, ("networks", "network"), cluster, &text).await?;
                let row: NetworkRow = sqlx::query_as(&format!(
                    "INSERT INTO networks (id, tenant_id, cluster_id, name, cidr, description)
                     VALUES ($1, basalt_tenant(), $2, $3, $4::cidr, $5) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(cluster)
                .bind(&name)
                .bind(&text)
                .bind(&description)
                .fetch_one(&mut **tx)
                .await?;
                Ok(Network::from(row))
            })
        },
        |n| Event::new("network.create", "network", Some(n.id)).details(json!({ "after": n })),
    )
    .await
}

/// Read a network.
#[utoipa::path(get, operation_id = "networks_get", path = "/v1/networks/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Network), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Network>> {
    let mut tx = req.tx()?;
    let network = fetch(&req, &mut tx, id, false).await?;
    tx.commit().await?;
    Ok(Json(network))
}

/// Rename a network or change its description (its CIDR and cluster are fixed).
#[utoipa::path(patch, operation_id = "networks_update", path = "/v1/networks/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateNetwork, responses((status = 200, body = Network), (status = 400), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateNetwork>,
) -> ApiResult<Json<Network>> {
    validate::rename(body.name.as_deref(), body.description.as_deref())?;
    let mut tx = req.tx()?;
    let current = fetch(&req, &mut tx, id, true).await?;
    req.grants.require_on_cluster(Permission::NetworkUpdate, current.cluster_id)?;
    check_version(&if_match, current.version)?;
    let (name, description) = (body.name.as_deref(), body.description.as_deref());
    let after = crud::renamed::<NetworkRow, Network>(&mut tx, ("networks", COLUMNS), id, name, description).await?;
    crud::updated(tx, &req, "network.update", "network", id, &current, after).await
}

/// Delete a network; refused while VM interfaces use it (409 `network_in_use`).
#[utoipa::path(delete, operation_id = "networks_delete", path = "/v1/networks/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = fetch(&req, &mut tx, id, true).await?;
    req.grants.require_on_cluster(Permission::NetworkDelete, current.cluster_id)?;
    let (in_use,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM vm_interfaces WHERE network_id = $1").bind(id).fetch_one(&mut *tx).await?;
    if in_use > 0 {
        return Err(ApiError::Conflict {
            code: "network_in_use",
            message: format!("{in_use} VM interface(s) use this network; detach them first"),
        });
    }
    crud::deleted(tx, &req, "networks", "network.delete", "network", id, &current).await
}

// --- VM interfaces -----------------------------------------------------------

/// The NIC of an interface, as the hypervisor gets it.
fn nic(mac: &str) -> Device {
    Device::Nic { mac: mac.to_owned() }
}

/// List a VM's network interfaces.
#[utoipa::path(get, operation_id = "vm_interfaces_list", path = "/v1/vms/{id}/interfaces", tag = "compute", params(("id" = Uuid, Path), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<VmInterface>), (status = 404)), security(("bearer" = [])))]
pub async fn list_interfaces(
    req: Req,
    PathId(vm): PathId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<VmInterface>>> {
    let mut tx = req.tx()?;
    let vm = vms::fetch(&req, &mut tx, vm, false).await?;
    req.grants.require_on_cluster(Permission::VmInterfaceList, vm.cluster_id)?;
    let table = ("vm_interfaces", INTERFACE_COLUMNS);
    crud::list_children::<InterfaceRow, VmInterface>(tx, &q, table, ("vm_id", vm.id)).await
}

/// The address for a new interface on `network` (whose row the caller holds
/// locked): `asked` if it is a free host address of the network, else the
/// lowest free one.
async fn allocate(tx: &mut Tx, network: &Network, asked: Option<Ipv4Addr>) -> ApiResult<String> {
    if let Some(ip) = asked {
        let cidr = Cidr::parse("cidr", &network.cidr).map_err(ApiError::internal)?;
        if !cidr.is_host(ip) {
            return Err(ApiError::bad_field(
                "ip",
                format!(
                    "ip must be a host address of {} (not its network, gateway .1 or broadcast address)",
                    network.cidr
                ),
            ));
        }
        let (taken,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM vm_interfaces WHERE network_id = $1 AND ip = $2::inet)")
                .bind(network.id)
                .bind(ip.to_string())
                .fetch_one(&mut **tx)
                .await?;
        if taken {
            return Err(ApiError::Conflict {
                code: "ip_in_use",
                message: format!("{ip} is already in use on this network"),
            });
        }
        return Ok(ip.to_string());
    }
    let free: Option<(String,)> = sqlx::query_as(
        "SELECT host(set_masklen(n.cidr + g, 32))
           FROM networks n, generate_series(2::bigint, (1::bigint << (32 - masklen(n.cidr))) - 2) AS g
          WHERE n.id = $1
            AND NOT EXISTS (SELECT 1 FROM vm_interfaces i WHERE i.network_id = n.id AND i.ip = set_masklen(n.cidr + g, 32))
          ORDER BY g LIMIT 1",
    )
    .bind(network.id)
    .fetch_optional(&mut **tx)
    .await?;
    free.map(|(ip,)| ip).ok_or_else(|| ApiError::Conflict {
        code: "network_full",
        message: format!("no free address is left in {}", network.cidr),
    })
}

/// Inserts the interface with a fresh random MAC (`52:54:00:xx:xx:xx`, QEMU's
/// prefix), drawing again in the unlikely case the tenant already has it.
async fn insert_interface(tx: &mut Tx, vm: Uuid, network: Uuid, ip: &str) -> ApiResult<VmInterface> {
    for _ in 0..8 {
        let tail: [u8; 3] = rand::random();
        let mac = format!("52:54:00:{:02x}:{:02x}:{:02x}", tail[0], tail[1], tail[2]);
        let row: Option<InterfaceRow> = sqlx::query_as(&format!(
            "INSERT INTO vm_interfaces (id, tenant_id, vm_id, network_id, ip, mac)
             VALUES ($1, basalt_tenant(), $2, $3, $4::inet, $5::macaddr)
             ON CONFLICT ON CONSTRAINT vm_interfaces_tenant_mac DO NOTHING RETURNING {INTERFACE_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(vm)
        .bind(network)
        .bind(ip)
        .bind(&mac)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            return Ok(row.into());
        }
    }
    Err(ApiError::internal("no free MAC address after 8 draws"))
}

/// Attach a VM to a network of its tenant on its cluster: 201 with the
/// interface, its address (the lowest free one, or `ip`) and its MAC. The NIC
/// is added to the VM's domain (hot-plugged where the host can, else from its
/// next boot). Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "vm_interfaces_attach", path = "/v1/vms/{id}/interfaces", tag = "compute", params(("id" = Uuid, Path)), request_body = AttachInterface,
    responses((status = 201, body = VmInterface), (status = 400), (status = 404), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn attach(
    req: Req,
    PathId(vm): PathId,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<AttachInterface>,
) -> ApiResult<Response> {
    let asked = match &body.ip {
        Some(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::bad_field("ip", "ip must be an IPv4 address such as 10.0.0.5"))?,
        ),
        None => None,
    };
    let mut tx = req.tx()?;
    let claimed = match idempotency::claim(&mut tx, &req, &key, &(vm, &body)).await? {
        Claim::Replay(status, stored) => return Ok(idempotency::replay(status, stored)),
        Claim::Proceed(c) => c,
    };
    let vm = vms::lock_for(&req, &mut tx, vm, Permission::VmInterfaceAttach).await?;
    // A network the caller cannot see (another tenant's, or of a cluster a
    // delegate does not hold) is no network: never a `cluster_mismatch`.
    let network = match fetch(&req, &mut tx, body.network_id, true).await {
        Err(ApiError::NotFound { .. }) => return Err(ApiError::invalid_reference("network_id", "no such network")),
        other => other?,
    };
    if network.cluster_id != vm.cluster_id {
        return Err(cluster_mismatch("network_id", "the network is on another cluster than the VM"));
    }
    let ip = allocate(&mut tx, &network, asked).await?;
    let interface = insert_interface(&mut tx, vm.id, network.id, &ip).await?;
    audit::record(
        &mut tx,
        &req,
        Event::new("vm_interface.attach", "vm_interface", Some(interface.id)).details(json!({ "after": interface })),
    )
    .await?;
    let resp = idempotency::created(&mut tx, claimed, interface.clone()).await?;
    tx.commit().await?;
    // The row is in place; now the host (the request's transaction is gone
    // first: one pooled connection at a time). A refusal undoes the row.
    if let Err(e) = on_host(&req, vm.id, nic(&interface.mac), true).await {
        let mut tx = req.begin(true).await?;
        sqlx::query("DELETE FROM vm_interfaces WHERE id = $1").bind(interface.id).execute(&mut *tx).await?;
        idempotency::forget_object(&mut tx, interface.id).await?;
        tx.commit().await?;
        return Err(e);
    }
    Ok(resp)
}

/// Detach an interface from its VM: the NIC leaves the domain, the address is free.
#[utoipa::path(delete, operation_id = "vm_interfaces_detach", path = "/v1/vms/{id}/interfaces/{interface_id}", tag = "compute", params(("id" = Uuid, Path), ("interface_id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn detach(req: Req, PathIds(vm, id): PathIds) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let vm = vms::lock_for(&req, &mut tx, vm, Permission::VmInterfaceDetach).await?;
    let row: Option<InterfaceRow> =
        sqlx::query_as(&format!("SELECT {INTERFACE_COLUMNS} FROM vm_interfaces WHERE id = $1 AND vm_id = $2"))
            .bind(id)
            .bind(vm.id)
            .fetch_optional(&mut *tx)
            .await?;
    let interface = VmInterface::from(row.ok_or(ApiError::NotFound { kind: "interface" })?);
    tx.commit().await?;
    // The host first, then the row: a NIC the domain still has stays listed.
    on_host(&req, vm.id, nic(&interface.mac), false).await?;
    let tx = req.begin(true).await?;
    crud::deleted(tx, &req, "vm_interfaces", "vm_interface.detach", "vm_interface", id, &interface).await
}

/// Adds (`attach`) or removes `device` on the domain of VM `vm`, on its host.
pub async fn on_host(req: &Req, vm: Uuid, device: Device, attach: bool) -> ApiResult<()> {
    let host = placement::host_of(&req.state.db, vm).await?;
    let uri = host.uri;
    req.state
        .compute
        .call(move |hv| if attach { hv.attach_device(&uri, vm, &device) } else { hv.detach_device(&uri, vm, &device) })
        .await?;
    Ok(())
}

/// 422 `cluster_mismatch`: the referenced object is on another cluster.
pub fn cluster_mismatch(field: &str, message: &str) -> ApiError {
    ApiError::Unprocessable { code: "cluster_mismatch", message: message.into(), details: json!({ "field": field }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked() {
        let c = Cidr::parse("cidr", "10.1.0.0/24").unwrap();
        assert_eq!((c.network, c.prefix), (Ipv4Addr::new(10, 1, 0, 0), 24));
        for bad in
            ["10.1.0.0", "10.1.0.0/15", "10.1.0.0/30", "10.1.0.1/24", "10.1.0.0/024", "::/64", "10.1.0/24", "x/24"]
        {
            let e = Cidr::parse("cidr", bad).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(Cidr::parse("cidr", "10.1.0.1/24").unwrap_err().to_string().contains("10.1.0.0/24"));
    }

    #[test]
    fn host_addresses_skip_network_gateway_and_broadcast() {
        let c = Cidr::parse("cidr", "192.168.4.0/29").unwrap();
        let hosts: Vec<u8> = (0..=255u8).filter(|i| c.is_host(Ipv4Addr::new(192, 168, 4, *i))).collect();
        assert_eq!(hosts, [2, 3, 4, 5, 6]);
        assert!(!c.is_host(Ipv4Addr::new(192, 168, 5, 2)));
    }
}
