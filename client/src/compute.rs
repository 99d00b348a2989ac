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
    /// GiB of volumes the tenant may hold on the cluster (0–1073741824); absent
    /// or null: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gib: Option<i64>,
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
    /// GiB of volumes: absent leaves the limit as it is, null lifts it.
    #[serde(default, deserialize_with = "crate::types::present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub disk_gib: Option<Option<i64>>,
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
    /// Public templates only: false once withdrawn from tenants
    /// (`POST /v1/templates/{id}/unpublish`); tenants never see it then.
    #[serde(default = "yes")]
    pub published: bool,
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
    /// Free text, at most 1024 characters.
    #[serde(default)]
    pub description: String,
    /// Up to 32 `key: value` labels (see [`UpdateVm`]).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Deletion protection: `DELETE` and `rebuild` answer 409 `vm_protected` until unprotected.
    #[serde(default)]
    pub protected: bool,
    /// The placement group the VM belongs to, if any.
    #[serde(default)]
    pub placement_group_id: Option<Uuid>,
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
    /// Free text, at most 1024 characters.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub version: i64,
    /// The snapshot schedule that took it (absent: taken by hand). Only a
    /// schedule's own snapshots are pruned by it.
    #[serde(default)]
    pub schedule_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    /// 1–63 characters: letters, digits, `-` and `_`.
    pub name: String,
}

fn yes() -> bool {
    true
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
    /// `vm.resize`, `vm.migrate`, `vm.delete`, `snapshot.revert`, `vm.rebuild`,
    /// `vm.clone`, `vm.reset`.
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

/// The body of `POST /v1/vms`: the fields of [`CreateVm`] and the options added
/// since (kept apart so that code building a `CreateVm` literal keeps compiling).
/// Every `CreateVm` is a valid `CreateVmRequest` (`From`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVmRequest {
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
    /// A placement group of the tenant on the same cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_group_id: Option<Uuid>,
}

impl From<CreateVm> for CreateVmRequest {
    fn from(v: CreateVm) -> Self {
        CreateVmRequest {
            tenant_id: v.tenant_id,
            name: v.name,
            cluster_id: v.cluster_id,
            template_id: v.template_id,
            vcpus: v.vcpus,
            memory_mib: v.memory_mib,
            power_state: v.power_state,
            placement_group_id: None,
        }
    }
}

/// `PATCH /v1/vms/{id}`: a partial update. `labels` replaces the whole map: at
/// most 32, keys `[a-z0-9][a-z0-9._-]{0,62}`, values at most 256 characters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVm {
    /// 1–63 characters: letters, digits and `-`, starting with a letter (the
    /// domain on the host is named after the VM's id, so a rename is safe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

/// `POST /v1/vms/{id}/rebuild`: reinstall the VM's disk from its template, or
/// from another one no larger than the VM.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RebuildVm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<Uuid>,
}

/// `POST /v1/vms/{id}/clone`: a new VM with a copy of this one's disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneVm {
    /// The new VM's name (rules of [`CreateVm::name`]).
    pub name: String,
    /// `running` (default) or `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
}

/// Live figures of a VM as its hypervisor reports them (`GET /v1/vms/{id}/metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VmMetrics {
    pub vm_id: Uuid,
    /// `running`, `paused` or `off`, as the host sees the domain now.
    pub state: String,
    pub vcpus: u32,
    /// The most memory the domain may use.
    pub max_memory_mib: u64,
    /// The memory the domain has now.
    pub memory_mib: u64,
    /// CPU time the domain has used, in nanoseconds.
    pub cpu_time_ns: u64,
    /// The guest's memory statistics where the hypervisor has them
    /// (`rss`, `available`, `unused`, ... in KiB; counters as counted); may be empty.
    #[serde(default)]
    pub memory_stats: std::collections::BTreeMap<String, u64>,
    pub sampled_at: DateTime<Utc>,
}

/// `PATCH /v1/vms/{id}/snapshots/{snapshot_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSnapshot {
    /// At most 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// How a placement group places its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlacementPolicy {
    /// Every member on a different host of the cluster.
    #[default]
    Spread,
}

impl PlacementPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementPolicy::Spread => "spread",
        }
    }

    pub fn parse(s: &str) -> Option<PlacementPolicy> {
        (s == "spread").then_some(PlacementPolicy::Spread)
    }
}

/// A tenant's placement group on one cluster: VMs created in it are placed by
/// its policy (`spread`: each on a distinct host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlacementGroup {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub cluster_id: Uuid,
    pub name: String,
    pub policy: PlacementPolicy,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlacementGroup {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// A cluster the tenant holds a quota on.
    pub cluster_id: Uuid,
    /// 1–63 characters of `a-z 0-9 -`, starting with a letter.
    pub name: String,
    /// `spread` (the default and, for now, the only policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PlacementPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlacementGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Where a [`QuotaRequest`] is: `pending` until provider staff approve or reject
/// it, or its requester cancels it. A decided request does not change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaRequestState {
    Pending,
    Approved,
    Rejected,
    Cancelled,
}

impl QuotaRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaRequestState::Pending => "pending",
            QuotaRequestState::Approved => "approved",
            QuotaRequestState::Rejected => "rejected",
            QuotaRequestState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<QuotaRequestState> {
        match s {
            "pending" => Some(QuotaRequestState::Pending),
            "approved" => Some(QuotaRequestState::Approved),
            "rejected" => Some(QuotaRequestState::Rejected),
            "cancelled" => Some(QuotaRequestState::Cancelled),
            _ => None,
        }
    }
}

/// A tenant's request for capacity on a cluster: the quota it asks to have
/// (the figures replace the current limits when approved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuotaRequest {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub cluster_id: Uuid,
    pub vcpus: i32,
    pub memory_mib: i64,
    pub max_vms: i32,
    pub reason: String,
    pub state: QuotaRequestState,
    pub requested_by: Uuid,
    pub decided_by: Option<Uuid>,
    /// Why it was rejected (or a note on the approval).
    pub decision_reason: String,
    pub decided_at: Option<DateTime<Utc>>,
    /// The quota an approval set.
    pub quota_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQuotaRequest {
    /// A cluster the tenant can see (it holds a quota there).
    pub cluster_id: Uuid,
    /// The limits asked for, as on a quota: 0–100000.
    pub vcpus: i32,
    /// 0–1073741824.
    pub memory_mib: i64,
    /// 0–10000.
    pub max_vms: i32,
    /// Why (up to 1000 characters).
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/quota-requests/{id}/approve|reject`: a note for the tenant
/// (required to reject).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideQuotaRequest {
    #[serde(default)]
    pub reason: String,
}

/// One host's capacity in [`ClusterCapacity`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostCapacityView {
    pub host_id: Uuid,
    pub uri: String,
    pub state: String,
    /// Draining: placement puts nothing new here.
    pub drained: bool,
    /// Schedulable vCPUs (CPUs × the CPU overcommit).
    pub vcpus_total: i64,
    pub vcpus_allocated: i64,
    pub vcpus_free: i64,
    pub memory_mib_total: i64,
    pub memory_mib_allocated: i64,
    pub memory_mib_free: i64,
    pub vms: i64,
}

/// `GET /v1/clusters/{id}/capacity`: what the hosts hold, what is placed, and
/// what the quotas promise (the overcommit of promises over capacity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterCapacity {
    pub cluster_id: Uuid,
    pub hosts: Vec<HostCapacityView>,
    /// Totals over every host (drained ones included).
    pub vcpus_total: i64,
    pub vcpus_allocated: i64,
    pub vcpus_free: i64,
    pub memory_mib_total: i64,
    pub memory_mib_allocated: i64,
    pub memory_mib_free: i64,
    /// Totals over hosts that take new VMs (`up`).
    pub vcpus_schedulable_free: i64,
    pub memory_mib_schedulable_free: i64,
    /// Quotas on the cluster: how many, the sum of their limits, and their usage.
    pub quotas: i64,
    pub quota_vcpus: i64,
    pub quota_memory_mib: i64,
    pub quota_max_vms: i64,
    pub quota_vcpus_used: i64,
    pub quota_memory_mib_used: i64,
    /// Quota vCPUs handed out ÷ schedulable vCPUs (null without capacity).
    pub vcpu_overcommit: Option<f64>,
    /// Quota memory handed out ÷ memory (null without capacity).
    pub memory_overcommit: Option<f64>,
}

/// A console ticket of a VM and the session it opened, as `GET
/// /v1/vms/{id}/console-sessions` lists them (never the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsoleSession {
    /// The ticket's id (what `DELETE .../console-sessions/{session_id}` names).
    pub id: Uuid,
    pub vm_id: Uuid,
    /// Who asked for the ticket.
    pub user_id: Uuid,
    /// `ticket` (issued, not used yet) or `open` (a websocket is attached).
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When the websocket opened.
    pub opened_at: Option<DateTime<Utc>>,
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

// --- Public IP pools and floating IPs (perm-g) ---------------------------------

/// A provider's pool of public IPv4 addresses on one cluster (system scope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IpPool {
    pub id: Uuid,
    pub cluster_id: Uuid,
    pub name: String,
    /// IPv4 network in CIDR notation, prefix /20 to /30.
    pub cidr: String,
    /// Never handed out as a floating IP.
    pub gateway: Option<String>,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIpPool {
    pub cluster_id: Uuid,
    /// 1–63 characters: lower-case letters, digits and `-`, starting with a letter.
    pub name: String,
    /// IPv4 network in CIDR notation, prefix /20 to /30, host bits zero; must not
    /// overlap another pool of the cluster.
    pub cidr: String,
    /// A host address inside `cidr` (not its network or broadcast address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Name and description only: the cluster, range and gateway are fixed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIpPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A tenant's public address from a pool of a cluster, optionally mapped to
/// one of its VMs there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FloatingIp {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub cluster_id: Uuid,
    pub ip_pool_id: Uuid,
    /// The IPv4 address.
    pub address: String,
    /// The VM it is attached to.
    pub vm_id: Option<Uuid>,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFloatingIp {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// A cluster the tenant holds a quota on.
    pub cluster_id: Uuid,
    /// A pool of that cluster; default: the first with a free address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_pool_id: Option<Uuid>,
    /// A free host address of the pool; default: the lowest free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The description only: the address is fixed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFloatingIp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

// --- Snapshot schedules and maintenance windows (perm-e) ---------------------

/// A tenant's schedule of snapshots of one VM: every `interval_minutes` the
/// schedule job takes a snapshot and keeps the newest `keep` of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotSchedule {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub vm_id: Uuid,
    pub name: String,
    pub description: String,
    /// 15–10080 (a week).
    pub interval_minutes: i32,
    /// 1–100: how many of the schedule's own snapshots are kept.
    pub keep: i32,
    pub enabled: bool,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// Why the last run failed; absent after a success.
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshotSchedule {
    /// A VM of the caller's tenant.
    pub vm_id: Uuid,
    /// 1–63 characters of `a-z 0-9 -`, starting with a letter.
    pub name: String,
    /// 15–10080 minutes.
    pub interval_minutes: i32,
    /// 1–100.
    pub keep: i32,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Any of the fields; a new interval counts from now.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSnapshotSchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_minutes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Whether a [`MaintenanceWindow`] still holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceState {
    #[default]
    Scheduled,
    Cancelled,
}

impl MaintenanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            MaintenanceState::Scheduled => "scheduled",
            MaintenanceState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<MaintenanceState> {
        match s {
            "scheduled" => Some(MaintenanceState::Scheduled),
            "cancelled" => Some(MaintenanceState::Cancelled),
            _ => None,
        }
    }
}

/// The provider's announced maintenance of one cluster. Tenants read the
/// windows of the clusters they hold a quota on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceWindow {
    pub id: Uuid,
    pub cluster_id: Uuid,
    pub title: String,
    pub description: String,
    pub starts_at: DateTime<Utc>,
    /// After `starts_at`, at most 7 days later.
    pub ends_at: DateTime<Utc>,
    pub state: MaintenanceState,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMaintenanceWindow {
    pub cluster_id: Uuid,
    /// 1–200 characters.
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Any of the fields; `state: cancelled` calls the window off.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMaintenanceWindow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<MaintenanceState>,
}

// --- Security groups ----------------------------------------------------------

/// A tenant's security group on one cluster: a named set of allow rules that
/// applies to the VMs of that cluster attached to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecurityGroup {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub cluster_id: Uuid,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecurityGroup {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    pub cluster_id: Uuid,
    /// 1–63 characters: lower-case letters, digits and `-`, starting with a letter.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Name and description only: the cluster is fixed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSecurityGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Which traffic a rule allows: towards the VM or from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleDirection {
    #[default]
    Ingress,
    Egress,
}

impl RuleDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleDirection::Ingress => "ingress",
            RuleDirection::Egress => "egress",
        }
    }

    pub fn parse(s: &str) -> Option<RuleDirection> {
        [RuleDirection::Ingress, RuleDirection::Egress].into_iter().find(|d| d.as_str() == s)
    }
}

/// The IP protocol a rule allows; only `tcp` and `udp` have ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleProtocol {
    #[default]
    Tcp,
    Udp,
    Icmp,
    Any,
}

impl RuleProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleProtocol::Tcp => "tcp",
            RuleProtocol::Udp => "udp",
            RuleProtocol::Icmp => "icmp",
            RuleProtocol::Any => "any",
        }
    }

    pub fn parse(s: &str) -> Option<RuleProtocol> {
        [RuleProtocol::Tcp, RuleProtocol::Udp, RuleProtocol::Icmp, RuleProtocol::Any]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    /// Whether rules of this protocol have a port range.
    pub fn has_ports(self) -> bool {
        matches!(self, RuleProtocol::Tcp | RuleProtocol::Udp)
    }
}

/// One allow rule of a security group, as stored (normalised: a tcp/udp rule
/// always has both ports, an icmp/any rule none; the CIDR in canonical form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecurityGroupRule {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub security_group_id: Uuid,
    pub direction: RuleDirection,
    pub protocol: RuleProtocol,
    pub port_from: Option<i32>,
    pub port_to: Option<i32>,
    /// IPv4 or IPv6 network in CIDR notation (`0.0.0.0/0`, `2001:db8::/32`).
    pub remote_cidr: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecurityGroupRule {
    pub direction: RuleDirection,
    pub protocol: RuleProtocol,
    /// tcp/udp only: 1–65535. Without `port_to`, the single port `port_from`;
    /// without both, every port (1–65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_from: Option<i32>,
    /// tcp/udp only: `port_from`–65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_to: Option<i32>,
    /// IPv4 or IPv6 network in CIDR notation, host bits zero; a bare address
    /// means that one host (`/32`, `/128`).
    pub remote_cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A VM's membership in a security group of its tenant and cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VmSecurityGroup {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub vm_id: Uuid,
    pub security_group_id: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachSecurityGroup {
    /// A security group of the VM's tenant on the VM's cluster.
    pub security_group_id: Uuid,
}
