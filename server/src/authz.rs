//! Authorization: the permission catalog and the one place a permission is checked.
//!
//! Every route of the API is registered with an [`Access`] (see `api::routes`), and
//! the router runs [`authorize`] before the handler: no handler decides on its own
//! whether the caller may run it. Permissions are `resource:action` strings, each
//! grantable at some of the scopes `system`, `tenant`, `cluster`.
//!
//! Effective permissions come from role bindings: `basalt_enter` answers the
//! caller's bindings that reach its context, and [`Grants`] decides from them. The
//! built-in roles ([`BUILTIN_ROLES`]) derive their permission sets from the
//! catalog by rule. RLS stays underneath whatever this decides.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::auth::Context;
use crate::error::ApiError;

/// Where a permission can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeKind {
    System,
    Tenant,
    Cluster,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::System => "system",
            ScopeKind::Tenant => "tenant",
            ScopeKind::Cluster => "cluster",
        }
    }
}

macro_rules! permissions {
    ($( $variant:ident = $name:literal, [$($scope:ident),+], $desc:literal; )+) => {
        /// A catalog permission. `Permission::ALL` is the catalog.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Permission { $($variant),+ }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];

            /// The `resource:action` string.
            pub fn name(self) -> &'static str {
                match self { $(Permission::$variant => $name),+ }
            }

            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $desc),+ }
            }

            /// The scopes this permission may be granted at.
            pub fn scopes(self) -> &'static [ScopeKind] {
                match self { $(Permission::$variant => &[$(ScopeKind::$scope),+]),+ }
            }

            /// Can this permission be granted at `scope` or a scope inside it
            /// (system ⊃ tenant ⊃ cluster)? What a role bound at `scope` may hold.
            pub fn grantable_within(self, scope: ScopeKind) -> bool {
                self.scopes().iter().any(|s| *s >= scope)
            }

            pub fn from_name(name: &str) -> Option<Permission> {
                match name { $($name => Some(Permission::$variant),)+ _ => None }
            }
        }
    };
}

permissions! {
    TenantCreate = "tenant:create", [System], "Create tenants.";
    TenantList = "tenant:list", [System], "List every tenant of the estate.";
    TenantRead = "tenant:read", [System, Tenant], "Read a tenant's record.";
    TenantUpdate = "tenant:update", [System], "Change a tenant's display name and suspension policy.";
    TenantSuspend = "tenant:suspend", [System], "Suspend a tenant: reads stay, changes are refused.";
    TenantResume = "tenant:resume", [System], "Resume a suspended tenant.";
    TenantDelete = "tenant:delete", [System], "Delete a tenant (soft; purged after retention).";
    TenantSwitch = "tenant:switch", [System, Tenant], "Exchange the credential for one acting inside another tenant.";
    UserCreate = "user:create", [System, Tenant], "Create users in the current context.";
    UserList = "user:list", [System, Tenant], "List users of the current context.";
    UserRead = "user:read", [System, Tenant], "Read a user.";
    UserUpdate = "user:update", [System, Tenant], "Change a user's email, password or disabled flag.";
    UserDelete = "user:delete", [System, Tenant], "Delete a user.";
    UserDisable = "user:disable", [System, Tenant], "Disable a user: its credentials stop working at once (never the last administrator).";
    UserEnable = "user:enable", [System, Tenant], "Enable a disabled user again.";
    TokenCreate = "token:create", [System, Tenant, Cluster], "Create API tokens for oneself.";
    TokenList = "token:list", [System, Tenant, Cluster], "List one's own API tokens.";
    TokenRead = "token:read", [System, Tenant, Cluster], "Read one of one's own API tokens.";
    TokenRevoke = "token:revoke", [System, Tenant, Cluster], "Revoke one's own API tokens.";
    UserTokenList = "user_token:list", [System, Tenant], "List the API tokens of a user of the context (never their secrets).";
    UserTokenRevoke = "user_token:revoke", [System, Tenant], "Revoke an API token of a user of the context (offboarding, a leaked secret).";
    AuditRead = "audit:read", [System, Tenant], "Read the audit trail of the current context.";
    PermissionList = "permission:list", [System, Tenant, Cluster], "Read the permission catalog.";
    RoleCreate = "role:create", [System, Tenant], "Create custom roles in the current context.";
    RoleList = "role:list", [System, Tenant], "List the roles of the current context and the built-in roles.";
    RoleRead = "role:read", [System, Tenant], "Read a role.";
    RoleUpdate = "role:update", [System, Tenant], "Change a custom role's description or permissions.";
    RoleDelete = "role:delete", [System, Tenant], "Delete a custom role that nobody is bound to.";
    GroupCreate = "group:create", [Tenant], "Create groups (teams) in the tenant.";
    GroupList = "group:list", [Tenant], "List the tenant's groups.";
    GroupRead = "group:read", [Tenant], "Read a group.";
    GroupUpdate = "group:update", [Tenant], "Change a group's description.";
    GroupDelete = "group:delete", [Tenant], "Delete a group, its memberships and the bindings made to it.";
    GroupMemberList = "group_member:list", [Tenant], "List a group's members.";
    GroupMemberAdd = "group_member:add", [Tenant], "Add a user to a group (only with every permission the group's roles hold).";
    GroupMemberRemove = "group_member:remove", [Tenant], "Remove a user from a group.";
    RoleBindingCreate = "role_binding:create", [System, Tenant], "Grant a role to a user (never more than one holds).";
    RoleBindingList = "role_binding:list", [System, Tenant], "List the role bindings of the current context.";
    RoleBindingRead = "role_binding:read", [System, Tenant], "Read a role binding.";
    RoleBindingDelete = "role_binding:delete", [System, Tenant], "Remove a role binding (never the last admin's).";
    UserUnlock = "user:unlock", [System, Tenant], "Clear the failed-login throttle of a user of the context.";
    UserPermissionList = "user_permission:list", [System, Tenant], "List the effective permissions of a user of the context, with the binding (or group) granting each.";
    InvitationCreate = "invitation:create", [System, Tenant], "Invite someone to create their own user in the context (with a role one may grant).";
    InvitationList = "invitation:list", [System, Tenant], "List the invitations of the context (never their secrets).";
    InvitationRead = "invitation:read", [System, Tenant], "Read an invitation.";
    InvitationRevoke = "invitation:revoke", [System, Tenant], "Revoke a pending invitation.";
    TenantPolicyRead = "tenant_policy:read", [Tenant], "Read the tenant's password and token policy.";
    TenantPolicyUpdate = "tenant_policy:update", [Tenant], "Change the tenant's password and token policy.";
    ServiceAccountCreate = "service_account:create", [System, Tenant], "Create service accounts (users without a password, for pipelines).";
    ServiceAccountList = "service_account:list", [System, Tenant], "List the service accounts of the context.";
    ServiceAccountRead = "service_account:read", [System, Tenant], "Read a service account.";
    ServiceAccountUpdate = "service_account:update", [System, Tenant], "Change a service account's description or disabled flag.";
    ServiceAccountDelete = "service_account:delete", [System, Tenant], "Delete a service account, its tokens and its bindings.";
    ServiceAccountTokenCreate = "service_account_token:create", [System, Tenant], "Issue an API token for a service account (only with every permission it holds).";
    ServiceAccountTokenList = "service_account_token:list", [System, Tenant], "List a service account's API tokens (never their secrets).";
    ServiceAccountTokenRevoke = "service_account_token:revoke", [System, Tenant], "Revoke a service account's API token.";
    AuditExport = "audit:export", [System, Tenant], "Export the audit trail of the context as NDJSON.";
    RegionRegister = "region:register", [System], "Register a region (its gateway endpoint) with the controller.";
    RegionList = "region:list", [System, Tenant], "List regions (tenants see names and availability only).";
    RegionRead = "region:read", [System, Tenant], "Read a region.";
    RegionUpdate = "region:update", [System], "Change a region's endpoint.";
    RegionCheck = "region:check", [System], "Check a region's health now (a signed push from the global controller).";
    RegionDeregister = "region:deregister", [System], "Remove a region that has no clusters (federated: no live VMs, unless forced).";
    EntitlementList = "entitlement:list", [System], "List the regions a tenant is entitled to.";
    EntitlementGrant = "entitlement:grant", [System], "Entitle a tenant to a region.";
    EntitlementRevoke = "entitlement:revoke", [System], "Withdraw a tenant's entitlement to a region.";
    NoticeCreate = "notice:create", [System], "Publish a provider notice (a maintenance window, an incident) to every tenant.";
    NoticeList = "notice:list", [System, Tenant, Cluster], "List the provider's notices.";
    NoticeRead = "notice:read", [System, Tenant, Cluster], "Read a provider notice.";
    NoticeUpdate = "notice:update", [System], "Change a provider notice.";
    NoticeDelete = "notice:delete", [System], "Withdraw a provider notice.";
    ClusterCreate = "cluster:create", [System], "Create a cluster from libvirt hosts in a region.";
    ClusterList = "cluster:list", [System, Tenant, Cluster], "List clusters (tenants: those they hold a quota on, by alias).";
    ClusterRead = "cluster:read", [System, Tenant, Cluster], "Read a cluster.";
    ClusterUpdate = "cluster:update", [System], "Change a cluster's alias or its hosts.";
    ClusterDelete = "cluster:delete", [System], "Delete a cluster with no quotas and no VMs.";
    ClusterCapacityRead = "cluster_capacity:read", [System], "Read a cluster's capacity per host: total, allocated, free, and the quotas handed out on it.";
    HostList = "host:list", [System], "List a cluster's hosts with their capacity and allocation.";
    HostRead = "host:read", [System], "Read one host: capacity, allocation, VMs placed on it.";
    HostDrain = "host:drain", [System], "Drain a host: no new VM is placed on it.";
    HostUndrain = "host:undrain", [System], "Put a drained host back into service.";
    HostEvacuate = "host:evacuate", [System], "Evacuate a host: drain it and live-migrate every VM off it (an operation).";
    QuotaCreate = "quota:create", [System], "Assign a tenant capacity on a cluster.";
    QuotaList = "quota:list", [System, Tenant, Cluster], "List quotas and their usage.";
    QuotaRead = "quota:read", [System, Tenant, Cluster], "Read a quota and its usage.";
    QuotaUpdate = "quota:update", [System], "Change a tenant's capacity on a cluster.";
    QuotaDelete = "quota:delete", [System], "Withdraw a tenant's capacity on a cluster (refused while in use).";
    QuotaRequestCreate = "quota_request:create", [Tenant, Cluster], "Ask the provider for capacity on a cluster.";
    QuotaRequestList = "quota_request:list", [System, Tenant, Cluster], "List quota requests (provider staff: every tenant's).";
    QuotaRequestRead = "quota_request:read", [System, Tenant, Cluster], "Read a quota request.";
    QuotaRequestCancel = "quota_request:cancel", [Tenant, Cluster], "Withdraw one's pending quota request.";
    QuotaRequestApprove = "quota_request:approve", [System], "Approve a quota request: the tenant's quota on the cluster becomes the requested figures.";
    QuotaRequestReject = "quota_request:reject", [System], "Reject a quota request, with a reason.";
    TemplateCreate = "template:create", [System, Tenant], "Create templates (public at system scope, private in a tenant).";
    TemplateList = "template:list", [System, Tenant, Cluster], "List the templates of the context and the public ones.";
    TemplateRead = "template:read", [System, Tenant, Cluster], "Read a template.";
    TemplateUpdate = "template:update", [System, Tenant], "Change a template's default size.";
    TemplateDelete = "template:delete", [System, Tenant], "Delete a template.";
    TemplatePublish = "template:publish", [System], "Make a withdrawn public template visible to tenants again.";
    TemplateUnpublish = "template:unpublish", [System], "Withdraw a public template from tenants (existing VMs keep running).";
    VmCreate = "vm:create", [Tenant, Cluster], "Create VMs from templates within the quota.";
    VmList = "vm:list", [Tenant, Cluster], "List VMs.";
    VmRead = "vm:read", [Tenant, Cluster], "Read a VM.";
    VmPower = "vm:power", [Tenant, Cluster], "Start, stop, reboot, suspend and resume VMs.";
    VmResize = "vm:resize", [Tenant, Cluster], "Change a VM's vCPUs and memory.";
    VmMigrate = "vm:migrate", [Tenant, Cluster], "Move a VM to another host of its cluster.";
    VmDelete = "vm:delete", [Tenant, Cluster], "Delete VMs and their disks.";
    VmConsole = "vm:console", [Tenant, Cluster], "Open a VM's serial console (a single-use ticket for the websocket).";
    ConsoleSessionList = "console_session:list", [Tenant, Cluster], "List a VM's outstanding console tickets and open sessions (never a secret).";
    ConsoleSessionRevoke = "console_session:revoke", [Tenant, Cluster], "Revoke a console ticket, or close the session it opened.";
    SnapshotCreate = "snapshot:create", [Tenant, Cluster], "Take snapshots of VMs.";
    SnapshotList = "snapshot:list", [Tenant, Cluster], "List a VM's snapshots.";
    SnapshotRead = "snapshot:read", [Tenant, Cluster], "Read a snapshot.";
    SnapshotRevert = "snapshot:revert", [Tenant, Cluster], "Roll a VM back to a snapshot.";
    SnapshotDelete = "snapshot:delete", [Tenant, Cluster], "Delete snapshots.";
    SnapshotUpdate = "snapshot:update", [Tenant, Cluster], "Change a snapshot's description.";
    VmUpdate = "vm:update", [Tenant, Cluster], "Change a VM's name, description and labels.";
    VmProtect = "vm:protect", [Tenant, Cluster], "Protect a VM from deletion and rebuild.";
    VmUnprotect = "vm:unprotect", [Tenant, Cluster], "Lift a VM's deletion protection.";
    VmMetricsRead = "vm_metrics:read", [Tenant, Cluster], "Read a VM's live figures from its hypervisor (state, vCPUs, memory, CPU time).";
    VmRebuild = "vm:rebuild", [Tenant, Cluster], "Reinstall a VM's disk from its template (or another that fits its size).";
    VmClone = "vm:clone", [Tenant, Cluster], "Create a VM with a copy of another's disk, within the quota.";
    VmReset = "vm:reset", [Tenant, Cluster], "Hard-reset a running VM (the reset button: no guest shutdown).";
    PlacementGroupCreate = "placement_group:create", [Tenant, Cluster], "Create placement groups (spread VMs over distinct hosts of a cluster).";
    PlacementGroupList = "placement_group:list", [Tenant, Cluster], "List placement groups.";
    PlacementGroupRead = "placement_group:read", [Tenant, Cluster], "Read a placement group.";
    PlacementGroupUpdate = "placement_group:update", [Tenant, Cluster], "Change a placement group's name and description.";
    PlacementGroupDelete = "placement_group:delete", [Tenant, Cluster], "Delete a placement group with no members.";
    NetworkCreate = "network:create", [Tenant, Cluster], "Create private networks (an IPv4 CIDR) on a cluster.";
    NetworkList = "network:list", [Tenant, Cluster], "List networks.";
    NetworkRead = "network:read", [Tenant, Cluster], "Read a network.";
    NetworkUpdate = "network:update", [Tenant, Cluster], "Rename a network or change its description.";
    NetworkDelete = "network:delete", [Tenant, Cluster], "Delete a network that no interface uses.";
    VmInterfaceList = "vm_interface:list", [Tenant, Cluster], "List a VM's network interfaces and their addresses.";
    VmInterfaceAttach = "vm_interface:attach", [Tenant, Cluster], "Attach a VM to a network (an address from its range).";
    VmInterfaceDetach = "vm_interface:detach", [Tenant, Cluster], "Detach a network interface from a VM (its address is freed).";
    VolumeCreate = "volume:create", [Tenant, Cluster], "Create data volumes on a cluster within the disk quota.";
    VolumeList = "volume:list", [Tenant, Cluster], "List volumes.";
    VolumeRead = "volume:read", [Tenant, Cluster], "Read a volume.";
    VolumeUpdate = "volume:update", [Tenant, Cluster], "Grow a volume or change its description.";
    VolumeDelete = "volume:delete", [Tenant, Cluster], "Delete a detached volume and its data.";
    VolumeAttach = "volume:attach", [Tenant, Cluster], "Attach a volume to a VM of its cluster.";
    VolumeDetach = "volume:detach", [Tenant, Cluster], "Detach a volume from its VM.";
    OperationList = "operation:list", [System, Tenant, Cluster], "List operations (long work) of the context.";
    OperationRead = "operation:read", [System, Tenant, Cluster], "Poll an operation.";
    OperationCancel = "operation:cancel", [System], "Cancel an operation that has not started, or stop one that can stop safely (a host evacuation).";
    // Public IP pools and floating IPs (perm-g).
    IpPoolCreate = "ip_pool:create", [System], "Create a pool of public IPv4 addresses on a cluster.";
    IpPoolList = "ip_pool:list", [System], "List the public IP pools.";
    IpPoolRead = "ip_pool:read", [System], "Read a public IP pool.";
    IpPoolUpdate = "ip_pool:update", [System], "Rename a public IP pool or change its description.";
    IpPoolDelete = "ip_pool:delete", [System], "Delete a public IP pool with no allocations.";
    FloatingIpCreate = "floating_ip:create", [Tenant, Cluster], "Allocate a floating IP from a public pool of a cluster the tenant holds a quota on.";
    FloatingIpList = "floating_ip:list", [Tenant, Cluster], "List floating IPs.";
    FloatingIpRead = "floating_ip:read", [Tenant, Cluster], "Read a floating IP.";
    FloatingIpUpdate = "floating_ip:update", [Tenant, Cluster], "Change a floating IP's description.";
    FloatingIpDelete = "floating_ip:delete", [Tenant, Cluster], "Release a detached floating IP (its address goes back to the pool).";
    FloatingIpAttach = "floating_ip:attach", [Tenant, Cluster], "Attach a floating IP to a VM of its cluster.";
    FloatingIpDetach = "floating_ip:detach", [Tenant, Cluster], "Detach a floating IP from its VM.";
    // Snapshot schedules and maintenance windows (perm-e).
    SnapshotScheduleCreate = "snapshot_schedule:create", [Tenant, Cluster], "Create snapshot schedules of VMs (also needs snapshot:create and snapshot:delete: a schedule prunes its own snapshots).";
    SnapshotScheduleList = "snapshot_schedule:list", [Tenant, Cluster], "List snapshot schedules.";
    SnapshotScheduleRead = "snapshot_schedule:read", [Tenant, Cluster], "Read a snapshot schedule.";
    SnapshotScheduleUpdate = "snapshot_schedule:update", [Tenant, Cluster], "Change a snapshot schedule's interval, retention, name or description, or pause it (a new retention also needs snapshot:delete).";
    SnapshotScheduleDelete = "snapshot_schedule:delete", [Tenant, Cluster], "Delete a snapshot schedule (its snapshots stay).";
    SnapshotScheduleRun = "snapshot_schedule:run", [Tenant, Cluster], "Run a snapshot schedule now (also needs snapshot:create).";
    MaintenanceWindowCreate = "maintenance_window:create", [System], "Announce a maintenance window on a cluster.";
    MaintenanceWindowList = "maintenance_window:list", [System, Tenant, Cluster], "List maintenance windows (a tenant: of the clusters it holds a quota on).";
    MaintenanceWindowRead = "maintenance_window:read", [System, Tenant, Cluster], "Read a maintenance window.";
    MaintenanceWindowUpdate = "maintenance_window:update", [System], "Change or cancel a maintenance window.";
    MaintenanceWindowDelete = "maintenance_window:delete", [System], "Delete a maintenance window.";
    // Security groups (perm-f).
    SecurityGroupCreate = "security_group:create", [Tenant, Cluster], "Create security groups (named sets of allow rules) on a cluster.";
    SecurityGroupList = "security_group:list", [Tenant, Cluster], "List security groups.";
    SecurityGroupRead = "security_group:read", [Tenant, Cluster], "Read a security group.";
    SecurityGroupUpdate = "security_group:update", [Tenant, Cluster], "Rename a security group or change its description.";
    SecurityGroupDelete = "security_group:delete", [Tenant, Cluster], "Delete a security group no VM is attached to (with its rules).";
    SecurityGroupRuleCreate = "security_group_rule:create", [Tenant, Cluster], "Add an allow rule (direction, protocol, ports, remote CIDR) to a security group.";
    SecurityGroupRuleList = "security_group_rule:list", [Tenant, Cluster], "List a security group's rules.";
    SecurityGroupRuleDelete = "security_group_rule:delete", [Tenant, Cluster], "Remove a rule from a security group.";
    VmSecurityGroupAttach = "vm_security_group:attach", [Tenant, Cluster], "Attach a security group of its cluster to a VM.";
    VmSecurityGroupDetach = "vm_security_group:detach", [Tenant, Cluster], "Detach a security group from a VM.";
    VmSecurityGroupList = "vm_security_group:list", [Tenant, Cluster], "List the security groups a VM is attached to.";
    // webhooks (perm-h)
    WebhookCreate = "webhook:create", [Tenant], "Create webhooks: the tenant's audit events, POSTed signed to a public URL (the secret is shown once).";
    WebhookList = "webhook:list", [Tenant], "List the tenant's webhooks (never their secrets).";
    WebhookRead = "webhook:read", [Tenant], "Read a webhook (never its secret).";
    WebhookUpdate = "webhook:update", [Tenant], "Change a webhook's URL, event patterns, description or enabled flag.";
    WebhookDelete = "webhook:delete", [Tenant], "Delete a webhook and its deliveries.";
    WebhookRotateSecret = "webhook:rotate_secret", [Tenant], "Replace a webhook's signing secret (the new one is shown once).";
    WebhookTest = "webhook:test", [Tenant], "Send a ping to a webhook now and see the answer.";
    WebhookDeliveryList = "webhook_delivery:list", [Tenant], "List a webhook's deliveries and their outcomes (not their bodies).";
    WebhookDeliveryRedeliver = "webhook_delivery:redeliver", [Tenant], "Send a delivery of a webhook again.";
}

/// Which clusters a caller may act on with one permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterFilter {
    All,
    Only(Vec<Uuid>),
}

impl ClusterFilter {
    /// As a SQL parameter: NULL for all, else the array of cluster ids.
    pub fn as_param(&self) -> Option<Vec<Uuid>> {
        match self {
            ClusterFilter::All => None,
            ClusterFilter::Only(ids) => Some(ids.clone()),
        }
    }

    pub fn allows(&self, cluster: Uuid) -> bool {
        match self {
            ClusterFilter::All => true,
            ClusterFilter::Only(ids) => ids.contains(&cluster),
        }
    }
}

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential at all (health, login, the OpenAPI document).
    Public,
    /// Any valid credential (the caller's own identity: `/v1/me`).
    Authenticated,
    /// A valid credential holding this permission in its context.
    Permission(Permission),
    /// A single-use console ticket in the query string (a browser cannot set a
    /// bearer header on a websocket upgrade); tickets are issued under
    /// `vm:console` and checked by the handler against the database.
    ConsoleTicket,
    /// A signed service call between the global controller and a region, made
    /// by the given side (no user credential is accepted).
    Service(crate::federation::signing::Caller),
}

/// One role binding that reaches the current context, as `basalt_enter` answers it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct GrantRow {
    pub binding_id: Uuid,
    pub role_id: Uuid,
    pub role_name: String,
    /// Set for a cluster-scoped binding.
    pub cluster_id: Option<Uuid>,
    /// A provider-staff binding at system scope.
    pub system_binding: bool,
    pub permissions: Vec<String>,
}

/// What the caller may do in its current context, resolved once per request from
/// its bindings.
///
/// * At system scope: system bindings, for permissions grantable at system scope.
/// * Inside a tenant: the tenant's bindings, and provider staff's system bindings,
///   for permissions grantable at tenant scope (staff switch in "like anyone
///   else" and keep their authority there).
/// * Cluster bindings count only for permissions grantable at cluster scope, and
///   only on their cluster ([`Grants::granting_on_cluster`]).
#[derive(Debug, Clone)]
pub struct Grants {
    level: ScopeKind,
    rows: Vec<GrantRow>,
}

impl Grants {
    /// The bindings these grants come from (forwarded to regions as they are).
    pub fn rows(&self) -> &[GrantRow] {
        &self.rows
    }

    pub fn new(context: Context, rows: Vec<GrantRow>) -> Grants {
        let level = match context {
            Context::System => ScopeKind::System,
            Context::Tenant(_) => ScopeKind::Tenant,
        };
        Grants { level, rows }
    }

    /// The binding that grants `permission` at the context's own level, if any.
    pub fn granting(&self, permission: Permission) -> Option<&GrantRow> {
        if !permission.scopes().contains(&self.level) {
            return None;
        }
        self.rows.iter().find(|r| {
            let counts = match self.level {
                ScopeKind::System => r.system_binding && r.cluster_id.is_none(),
                _ => r.cluster_id.is_none(),
            };
            counts && r.permissions.iter().any(|p| p == permission.name())
        })
    }

    /// The binding that grants `permission` on `cluster`: at the tenant level, or
    /// through a binding on that cluster.
    pub fn granting_on_cluster(&self, permission: Permission, cluster: Uuid) -> Option<&GrantRow> {
        self.granting(permission).or_else(|| {
            if !permission.scopes().contains(&ScopeKind::Cluster) {
                return None;
            }
            self.rows
                .iter()
                .find(|r| r.cluster_id == Some(cluster) && r.permissions.iter().any(|p| p == permission.name()))
        })
    }

    /// The clusters on which the caller holds `permission`: all of the context's
    /// (a context-level grant) or only those of its cluster bindings. What a list
    /// of cluster-bound objects is filtered by.
    pub fn clusters_for(&self, permission: Permission) -> ClusterFilter {
        if self.granting(permission).is_some() {
            return ClusterFilter::All;
        }
        let ids = self
            .rows
            .iter()
            .filter(|_| permission.scopes().contains(&ScopeKind::Cluster))
            .filter(|r| r.permissions.iter().any(|p| p == permission.name()))
            .filter_map(|r| r.cluster_id)
            .collect();
        ClusterFilter::Only(ids)
    }

    /// Refuses unless `permission` is held on `cluster` (at the context's level or
    /// through a binding on that cluster).
    pub fn require_on_cluster(&self, permission: Permission, cluster: Uuid) -> Result<(), ApiError> {
        match self.granting_on_cluster(permission, cluster) {
            Some(_) => Ok(()),
            None => Err(ApiError::PermissionDenied { permission: permission.name().to_string() }),
        }
    }

    /// Does the caller hold `permission` anywhere in its context (at its level or
    /// on some cluster)? The route-level check; handlers check the object.
    pub fn holds_somewhere(&self, permission: Permission) -> bool {
        self.granting(permission).is_some()
            || (permission.scopes().contains(&ScopeKind::Cluster)
                && self
                    .rows
                    .iter()
                    .any(|r| r.cluster_id.is_some() && r.permissions.iter().any(|p| p == permission.name())))
    }

    /// May the caller hand `permission` on (in a role it composes or binds)? Only
    /// if one of its context-level bindings holds it: cluster delegates cannot
    /// delegate further, and nobody grants what they do not hold.
    pub fn delegable(&self, permission: Permission) -> bool {
        self.rows.iter().any(|r| {
            let counts = match self.level {
                ScopeKind::System => r.system_binding && r.cluster_id.is_none(),
                _ => r.cluster_id.is_none(),
            };
            counts && r.permissions.iter().any(|p| p == permission.name())
        })
    }

    /// The permissions held at the context's own level, sorted.
    pub fn effective(&self) -> BTreeSet<Permission> {
        Permission::ALL.iter().copied().filter(|p| self.granting(*p).is_some()).collect()
    }

    /// Refuses unless `permission` is held at the context's level.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        match self.granting(permission) {
            Some(_) => Ok(()),
            None => Err(ApiError::PermissionDenied { permission: permission.name().to_string() }),
        }
    }
}

/// The choke point: refuse unless the caller holds `permission` somewhere in its context.
pub fn require(grants: &Grants, permission: Permission) -> Result<(), ApiError> {
    if grants.holds_somewhere(permission) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied { permission: permission.name().to_string() })
    }
}

// --- Built-in roles ---------------------------------------------------------

/// A role that ships with Basalt. Its permission set is derived from the catalog
/// by a rule, so a new permission joins the right built-in roles by itself.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinRole {
    pub id: Uuid,
    pub name: &'static str,
    pub description: &'static str,
    /// Shown to provider staff only.
    pub provider_only: bool,
    /// The scope it is bound at.
    pub scope: ScopeKind,
    rule: fn(Permission) -> bool,
}

impl BuiltinRole {
    pub fn permissions(&self) -> Vec<Permission> {
        Permission::ALL.iter().copied().filter(|p| p.grantable_within(self.scope) && (self.rule)(*p)).collect()
    }
}

fn action(p: Permission) -> &'static str {
    p.name().split_once(':').map_or("", |(_, a)| a)
}

fn resource(p: Permission) -> &'static str {
    p.name().split_once(':').map_or("", |(r, _)| r)
}

/// Reading, listing and exporting (a read of many at once) change nothing.
fn is_read(p: Permission) -> bool {
    matches!(action(p), "read" | "list" | "export")
}

/// Managing who may do what: users, roles, bindings, and what makes or
/// empowers identities (invitations, service accounts and their tokens, the
/// tenant's password and token policy).
fn is_identity_admin(p: Permission) -> bool {
    matches!(
        resource(p),
        "user"
            | "user_token"
            | "role"
            | "role_binding"
            | "group"
            | "group_member"
            | "invitation"
            | "service_account"
            | "service_account_token"
            | "tenant_policy"
    ) && !is_read(p)
}

/// Connecting the tenant to outside systems: a webhook sends the tenant's
/// audit trail (identity changes included) to a URL of the creator's choosing
/// and holds a signing credential, so making, changing or firing one is an
/// administrator's act, like identity administration.
fn is_integration_admin(p: Permission) -> bool {
    matches!(resource(p), "webhook" | "webhook_delivery") && !is_read(p)
}

/// Every user may manage its own API tokens and read the catalog.
fn is_self_service(p: Permission) -> bool {
    resource(p) == "token" || p == Permission::PermissionList
}

const fn builtin_id(n: u128) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0000 | n)
}

pub const BUILTIN_ROLES: &[BuiltinRole] = &[
    BuiltinRole {
        id: builtin_id(1),
        name: "provider-admin",
        description: "Provider staff with every permission, at system scope and inside every tenant.",
        provider_only: true,
        scope: ScopeKind::System,
        rule: |_| true,
    },
    BuiltinRole {
        id: builtin_id(2),
        name: "provider-operator",
        description: "Provider staff who run the estate: read everything, suspend and resume tenants, switch into them; no identity administration, no deletions.",
        provider_only: true,
        scope: ScopeKind::System,
        rule: |p| {
            is_read(p)
                || is_self_service(p)
                || matches!(
                    p,
                    Permission::TenantSuspend
                        | Permission::TenantResume
                        | Permission::TenantSwitch
                        | Permission::AuditRead
                        | Permission::HostDrain
                        | Permission::HostUndrain
                        | Permission::HostEvacuate
                        | Permission::OperationCancel
                        | Permission::NoticeCreate
                        | Permission::NoticeUpdate
                        | Permission::RegionCheck
                        | Permission::MaintenanceWindowCreate
                        | Permission::MaintenanceWindowUpdate
                )
        },
    },
    BuiltinRole {
        id: builtin_id(3),
        name: "provider-auditor",
        description: "Provider staff who read everything, including audit trails, and change nothing.",
        provider_only: true,
        scope: ScopeKind::System,
        rule: |p| is_read(p) || is_self_service(p) || p == Permission::TenantSwitch,
    },
    BuiltinRole {
        id: builtin_id(4),
        name: "tenant-admin",
        description: "Everything inside one tenant, including its users, roles and bindings.",
        provider_only: false,
        scope: ScopeKind::Tenant,
        rule: |_| true,
    },
    BuiltinRole {
        id: builtin_id(5),
        name: "tenant-operator",
        description: "Operates a tenant's resources; cannot manage users, roles, bindings or integrations (webhooks).",
        provider_only: false,
        scope: ScopeKind::Tenant,
        rule: |p| !is_identity_admin(p) && !is_integration_admin(p),
    },
    BuiltinRole {
        id: builtin_id(6),
        name: "tenant-viewer",
        description: "Reads a tenant's resources (not its audit trail).",
        provider_only: false,
        scope: ScopeKind::Tenant,
        rule: |p| (is_read(p) && resource(p) != "audit") || is_self_service(p),
    },
    BuiltinRole {
        id: builtin_id(7),
        name: "auditor",
        description: "Reads a tenant's resources and its audit trail.",
        provider_only: false,
        scope: ScopeKind::Tenant,
        rule: |p| is_read(p) || is_self_service(p),
    },
    BuiltinRole {
        id: builtin_id(8),
        name: "cluster-admin",
        description: "Everything on one cluster of a tenant, and nothing else of the estate.",
        provider_only: false,
        scope: ScopeKind::Cluster,
        rule: |_| true,
    },
    BuiltinRole {
        id: builtin_id(9),
        name: "cluster-operator",
        description: "Operates the resources on one cluster of a tenant; nothing that destroys data (no deletions, no rebuilds, no snapshot schedules: they prune).",
        provider_only: false,
        scope: ScopeKind::Cluster,
        // A schedule's retention deletes snapshots; running one is only what it would do anyway.
        rule: |p| !matches!(action(p), "delete" | "rebuild") && p != Permission::SnapshotScheduleCreate,
    },
];

pub fn builtin_role(id: Uuid) -> Option<&'static BuiltinRole> {
    BUILTIN_ROLES.iter().find(|r| r.id == id)
}

pub fn builtin_role_named(name: &str) -> Option<&'static BuiltinRole> {
    BUILTIN_ROLES.iter().find(|r| r.name == name)
}

/// Makes the built-in roles in the database equal to the catalog (at every start,
/// so a new permission reaches them without a migration).
pub async fn sync_builtin_roles(db: &crate::db::Db) -> Result<(), sqlx::Error> {
    let mut tx = db.begin(crate::db::DbScope::System, None, true).await?;
    for role in BUILTIN_ROLES {
        let permissions: Vec<&str> = role.permissions().iter().map(|p| p.name()).collect();
        sqlx::query(
            "INSERT INTO roles (id, tenant_id, name, description, permissions, builtin, provider_only)
             VALUES ($1, NULL, $2, $3, $4, true, $5)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
                 permissions = EXCLUDED.permissions, provider_only = EXCLUDED.provider_only,
                 version = roles.version + 1, updated_at = now()
             WHERE (roles.name, roles.description, roles.permissions, roles.provider_only)
                 IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description, EXCLUDED.permissions, EXCLUDED.provider_only)",
        )
        .bind(role.id)
        .bind(role.name)
        .bind(role.description)
        .bind(&permissions)
        .bind(role.provider_only)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The catalog and the built-in roles as Markdown tables (the generated part of
/// `docs/rbac.md`; `basalt-server permissions --markdown` prints it).
pub fn catalog_markdown() -> String {
    let mut out = String::from("| permission | scopes | description |\n|---|---|---|\n");
    for p in Permission::ALL {
        let scopes: Vec<&str> = p.scopes().iter().map(|s| s.as_str()).collect();
        out.push_str(&format!("| `{}` | {} | {} |\n", p.name(), scopes.join(", "), p.description()));
    }
    out.push_str("\n| built-in role | bound at | permissions |\n|---|---|---|\n");
    for r in BUILTIN_ROLES {
        let perms: Vec<String> = r.permissions().iter().map(|p| format!("`{}`", p.name())).collect();
        let perms = if perms.is_empty() {
            "(none yet: cluster permissions arrive with compute)".to_string()
        } else {
            perms.join(" ")
        };
        out.push_str(&format!("| `{}` | {} | {} |\n", r.name, r.scope.as_str(), perms));
    }
    out
}

/// The closest catalog name to `unknown`, for "did you mean ...?".
pub fn suggest(unknown: &str) -> Option<&'static str> {
    // A suggestion is at most a third of the word's length of edits away, and
    // the distance is at least the difference in length: a word over twice as
    // long as every name has none. Answering so at once also spares a
    // |word| x |name| edit distance per name for a huge word (a 700 KB one took
    // half a minute).
    let longest = Permission::ALL.iter().map(|p| p.name().chars().count()).max().unwrap_or(0);
    if unknown.chars().count() > 2 * longest {
        return None;
    }
    basalt_client::suggest::closest(unknown, Permission::ALL.iter().map(|p| p.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos() {
        assert_eq!(suggest("tenant:craete"), Some("tenant:create"));
        assert_eq!(suggest("role_bindings:create"), Some("role_binding:create"));
        assert_eq!(suggest("galaxy:explode"), None);
    }

    #[test]
    fn builtin_roles_are_sane() {
        let admin = builtin_role_named("tenant-admin").unwrap().permissions();
        let viewer = builtin_role_named("tenant-viewer").unwrap().permissions();
        assert!(viewer.iter().all(|p| admin.contains(p)));
        assert!(!viewer.contains(&Permission::UserCreate));
        assert!(!admin.contains(&Permission::TenantCreate), "a tenant role holds a system permission");
        assert_eq!(builtin_role_named("provider-admin").unwrap().permissions().len(), Permission::ALL.len());
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for p in Permission::ALL {
            assert!(seen.insert(p.name()), "duplicate {}", p.name());
            let (res, act) = p.name().split_once(':').expect("resource:action");
            assert!(!res.is_empty() && !act.is_empty());
            assert_eq!(Permission::from_name(p.name()), Some(*p));
            assert!(!p.description().is_empty());
        }
    }
}
