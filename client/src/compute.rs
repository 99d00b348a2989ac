//! Wire types of the compute API: regions, clusters, hosts, quotas, templates,
//! VMs, snapshots and the operations that carry long work.
//!
//! Tenant-facing answers never name a host or a libvirt URI (white-label): a
//! tenant sees a cluster by its alias, and a VM without its host.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A failure domain with its own gateway (federation); a standalone install is
/// one region, `local`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    pub id: Uuid,
    pub name: String,
    /// The region gateway's public URL (provider staff only; empty for tenants).
    pub endpoint: String,
    /// `healthy`, `degraded`, `unreachable` or `unknown` (not yet checked).
    pub health: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the global controller last heard from the region (federated installs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Why the last health check failed (provider staff only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegion {
    /// 1–63 characters: lower-case letters, digits and `-`, starting with a letter.
    pub name: String,
    /// `http://` or `https://` URL of the region's gateway.
    pub endpoint: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRegion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A set of hosts in one region. Tenants see it under its `alias`, with no hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cluster {
    pub id: Uuid,
    /// The provider's name; for tenants, the alias.
    pub name: String,
    /// The tenant-facing name.
    pub alias: String,
    /// The region's name.
    pub region: String,
    /// libvirt URIs of the hosts, in order (provider staff only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    /// 1–63 characters: lower-case letters, digits and `-`, starting with a letter.
    pub name: String,
    /// Region name or id; may be left out while there is exactly one region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// libvirt URIs (`test:///default`, `qemu:///system`, `qemu+ssh://host/system`); at least one.
    pub hosts: Vec<String>,
    /// Tenant-facing name; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// A partial update. `hosts` replaces the list: new URIs join, missing ones leave
/// (refused while a VM lives on them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCluster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
}

/// A hypervisor host of a cluster (provider staff only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Host {
    pub id: Uuid,
    pub cluster_id: Uuid,
    pub uri: String,
    /// `up`, `unreachable` or `draining`.
    pub state: String,
    /// Schedulable capacity, read from the host at registration.
    pub vcpus: i32,
    pub memory_mib: i64,
    pub vcpus_allocated: i32,
    pub memory_allocated_mib: i64,
    /// VMs placed on the host (what a drain waits for).
    #[serde(default)]
    pub vms: i32,
    pub last_error: Option<String>,
}

/// A tenant's capacity on one cluster and what it uses of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Quota {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub cluster_id: Uuid,
    pub vcpus: i32,
    pub memory_mib: i64,
    pub max_vms: i32,
    pub vcpus_used: i32,
    pub memory_used_mib: i64,
    pub vms_used: i32,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// GiB of volumes the tenant may hold on the cluster; null: no limit.
    #[serde(default)]
    pub disk_gib: Option<i64>,
    /// GiB of volumes it holds there.
    #[serde(default)]
    pub disk_used_gib: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQuota {
    pub tenant_id: Uuid,
    pub cluster_id: Uuid,
    /// 0–100000.
    pub vcpus: i32,
    /// 0–1 TiB × 1024.
    pub memory_mib: i64,
    /// 0–10000.
    pub max_vms: i32,
}

/// A partial update; a limit below what is in use is refused (409 `quota_in_use`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateQuota {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vms: Option<i32>,
}

/// A base disk image plus defaults. Public templates (no tenant) are the provider's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    pub id: Uuid,
    /// Null: public.
    pub tenant_id: Option<Uuid>,
    pub name: String,
    pub vcpus: i32,
    pub memory_mib: i64,
    pub disk_gib: i32,
    /// Absolute path of the base qcow2 image on the hosts; empty: diskless.
    pub image: String,
    /// Direct kernel boot (provider templates): kernel and initrd paths on the
    /// hosts and the kernel command line; empty: boot from the disk.
    #[serde(default)]
    pub kernel: String,
    #[serde(default)]
    pub initrd: String,
    #[serde(default)]
    pub cmdline: String,
    /// The VM this template was made from, if any.
    #[serde(default)]
    pub source_vm_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    /// Must match the caller's tenant context; left out at system scope: public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    pub name: String,
    /// The region (name or id) whose hosts the template is for; required when the
    /// caller can see several regions (a federated install), else that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// 1–256.
    pub vcpus: i32,
    /// 64–1048576.
    pub memory_mib: i64,
    /// 1–65536; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gib: Option<i32>,
    /// Absolute path of a qcow2 base image; default: diskless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Direct kernel boot: absolute paths of a kernel and an initrd (both or neither).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<String>,
    /// Kernel command line (with `kernel`), at most 1024 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
}

/// `POST /v1/vms/{id}/template`: a private template from a stopped VM (its disk
/// is copied, flattened, into a new base image).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplateFromVm {
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
}

/// Where a VM is in its life. Transitional states (`creating`, `starting`,
/// `stopping`, `migrating`, `deleting`) last while an operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    Creating,
    Stopped,
    Starting,
    Running,
    Stopping,
    Suspended,
    Migrating,
    Failed,
    Deleting,
}

impl VmState {
    pub const ALL: &'static [VmState] = &[
        VmState::Creating,
        VmState::Stopped,
        VmState::Starting,
        VmState::Running,
        VmState::Stopping,
        VmState::Suspended,
        VmState::Migrating,
        VmState::Failed,
        VmState::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Creating => "creating",
            VmState::Stopped => "stopped",
            VmState::Starting => "starting",
            VmState::Running => "running",
            VmState::Stopping => "stopping",
            VmState::Suspended => "suspended",
            VmState::Migrating => "migrating",
            VmState::Failed => "failed",
            VmState::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<VmState> {
        VmState::ALL.iter().copied().find(|v| v.as_str() == s)
    }

    /// An operation is under way: another one must wait.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            VmState::Creating | VmState::Starting | VmState::Stopping | VmState::Migrating | VmState::Deleting
        )
    }
}

/// The power state a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    Running,
    Stopped,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::Running => "running",
            PowerState::Stopped => "stopped",
        }
    }
}

/// A virtual machine of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Vm {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub cluster_id: Uuid,
    pub template_id: Uuid,
    pub vcpus: i32,
    pub memory_mib: i64,
    pub state: VmState,
    /// What the user asked for; the reconciler keeps `state` to it.
    pub power_state: PowerState,
    /// The operation running on it, if any.
    pub operation_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVm {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// 1–63 characters: letters, digits and `-`, starting with a letter.
    pub name: String,
    pub cluster_id: Uuid,
    pub template_id: Uuid,
    /// Defaults to the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
    /// `running` (default) or `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
}

/// `POST /v1/vms/{id}/stop`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopVm {
    /// Power off at once instead of asking the guest.
    #[serde(default)]
    pub force: bool,
    /// How long the guest gets to shut down before it is powered off (default 60, 1–3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

/// `POST /v1/vms/{id}/resize`: at least one of `vcpus`, `memory_mib`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeVm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
    /// A running VM is stopped, resized and started again (otherwise a running VM
    /// is resized live where the hypervisor allows, and refused where it does not).
    #[serde(default)]
    pub restart: bool,
}

/// `POST /v1/vms/{id}/migrate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateVm {
    /// Destination host (provider staff); left out: placement chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<Uuid>,
}

/// A point-in-time snapshot of a VM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub vm_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    /// 1–63 characters: letters, digits, `-` and `_`.
    pub name: String,
}

/// A single-use, short-lived ticket for a VM's serial console websocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsoleTicket {
    /// Pass as `?ticket=` to the websocket; valid once, until `expires_at`.
    pub ticket: String,
    pub expires_at: DateTime<Utc>,
    /// The websocket path with the ticket (relative to the API endpoint).
    pub url: String,
}

/// Status of an [`Operation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl OperationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Pending => "pending",
            OperationStatus::Running => "running",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<OperationStatus> {
        match s {
            "pending" => Some(OperationStatus::Pending),
            "running" => Some(OperationStatus::Running),
            "succeeded" => Some(OperationStatus::Succeeded),
            "failed" => Some(OperationStatus::Failed),
            _ => None,
        }
    }

    pub fn is_done(self) -> bool {
        matches!(self, OperationStatus::Succeeded | OperationStatus::Failed)
    }
}

/// Long work (202 Accepted): poll `GET /v1/operations/{id}` until `status` is
/// `succeeded` or `failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Operation {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    /// `vm.create`, `vm.start`, `vm.stop`, `vm.reboot`, `vm.suspend`, `vm.resume`,
    /// `vm.resize`, `vm.migrate`, `vm.delete`, `snapshot.revert`.
    pub kind: String,
    pub target_type: String,
    pub target_id: Uuid,
    pub status: OperationStatus,
    /// 0–100.
    pub progress: i32,
    /// Set when `failed`: `{"code", "message"}`.
    pub error: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A tenant's private IPv4 network on one cluster. Addresses of its VMs'
/// interfaces are handed out from `cidr` (the first host address, `.1`, is the
/// gateway's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Network {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub cluster_id: Uuid,
    pub name: String,
    /// IPv4 CIDR, prefix /16 to /29 (e.g. `10.0.0.0/24`).
    pub cidr: String,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNetwork {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    pub cluster_id: Uuid,
    /// 1–63 characters: lower-case letters, digits and `-`, starting with a letter.
    pub name: String,
    /// IPv4 network in CIDR notation, prefix /16 to /29, host bits zero; must not
    /// overlap another network of the tenant on the cluster.
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Name and description only: the CIDR and cluster are fixed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNetwork {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A VM's network interface: its address on one network and its MAC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VmInterface {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub vm_id: Uuid,
    pub network_id: Uuid,
    /// The IPv4 address IPAM gave it.
    pub ip: String,
    /// `52:54:00:xx:xx:xx`.
    pub mac: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachInterface {
    /// A network of the tenant on the VM's cluster.
    pub network_id: Uuid,
    /// A free host address inside the network; default: the lowest free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// A tenant's data disk on one cluster, attached to at most one VM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Volume {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub cluster_id: Uuid,
    pub name: String,
    pub size_gib: i32,
    pub description: String,
    /// The VM it is attached to.
    pub vm_id: Option<Uuid>,
    /// The guest device while attached (`vdb`, `vdc`, ...).
    pub device: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVolume {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    pub cluster_id: Uuid,
    /// 1–63 characters: lower-case letters, digits and `-`, starting with a letter.
    pub name: String,
    /// 1–65536; counted against the quota's `disk_gib` on the cluster.
    pub size_gib: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A larger size (never smaller) and the description.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVolume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /v1/volumes/{id}/attach` and `.../detach`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeAttachment {
    pub vm_id: Uuid,
}
