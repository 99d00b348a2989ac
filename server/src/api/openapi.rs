//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! wire types. `docs/openapi.json` is the committed copy; a test fails when it is
//! stale (regenerate with `basalt-server openapi > docs/openapi.json`).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use basalt_client::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "Basalt API", version = "1", description = "Multi-tenant VM control plane for managed service providers."),
    paths(
        super::health::healthz, super::health::readyz, super::health::metrics,
        super::auth::login, super::auth::switch_tenant, super::auth::me,
        super::permissions::list,
        super::tenants::list, super::tenants::create, super::tenants::get, super::tenants::update,
        super::tenants::delete, super::tenants::suspend, super::tenants::resume,
        super::federation::list, super::federation::grant, super::federation::revoke,
        super::federation::register, super::federation::resolve, super::federation::sync, super::federation::object,
        super::users::list, super::users::create, super::users::get, super::users::update, super::users::delete,
        super::users::disable, super::users::enable,
        super::tokens::list, super::tokens::create, super::tokens::get, super::tokens::revoke,
        super::tokens::list_of_user, super::tokens::revoke_of_user,
        super::audit_events::list, document,
        super::roles::list, super::roles::create, super::roles::get, super::roles::update, super::roles::delete,
        super::groups::list, super::groups::create, super::groups::get, super::groups::update, super::groups::delete,
        super::groups::members, super::groups::add_member, super::groups::remove_member,
        super::role_bindings::list, super::role_bindings::create, super::role_bindings::get,
        super::role_bindings::delete, super::role_bindings::check,
        super::regions::list, super::regions::create, super::regions::get, super::regions::update, super::regions::delete,
        super::regions::check,
        super::clusters::list, super::clusters::create, super::clusters::get, super::clusters::update,
        super::clusters::delete, super::hosts::list, super::hosts::get, super::hosts::drain, super::hosts::undrain,
        super::quotas::list, super::quotas::create, super::quotas::get, super::quotas::update, super::quotas::delete,
        super::templates::list, super::templates::create, super::templates::get, super::templates::update,
        super::templates::delete, super::templates::from_vm,
        super::vms::list, super::vms::create, super::vms::get, super::vms::delete, super::vms::start, super::vms::stop,
        super::vms::reboot, super::vms::suspend, super::vms::resume, super::vms::resize, super::vms::migrate,
        super::snapshots::list, super::snapshots::create, super::snapshots::get, super::snapshots::revert,
        super::snapshots::delete,
        super::operations::list, super::operations::get, super::console::ticket, super::console::websocket,
        super::audit_events::export, super::users::unlock, super::users::permissions,
        super::invitations::list, super::invitations::create, super::invitations::get, super::invitations::revoke,
        super::invitations::accept, super::tenant_policy::get, super::tenant_policy::update,
        super::service_accounts::list, super::service_accounts::create, super::service_accounts::get,
        super::service_accounts::update, super::service_accounts::delete, super::service_accounts::list_tokens,
        super::service_accounts::create_token, super::service_accounts::revoke_token,
        super::vms::update, super::vms::protect, super::vms::unprotect, super::vms::metrics, super::vms::rebuild,
        super::vms::clone, super::vms::reset, super::snapshots::update,
        super::placement_groups::list, super::placement_groups::create, super::placement_groups::get,
        super::placement_groups::update, super::placement_groups::delete,
        super::quota_requests::list, super::quota_requests::create, super::quota_requests::get,
        super::quota_requests::cancel, super::quota_requests::approve, super::quota_requests::reject,
        super::templates::publish, super::templates::unpublish, super::hosts::evacuate, super::hosts::capacity,
        super::operations::cancel, super::console::sessions, super::console::revoke,
        super::notices::list, super::notices::create, super::notices::get, super::notices::update, super::notices::delete,
        super::networks::list, super::networks::create, super::networks::get, super::networks::update,
        super::networks::delete, super::networks::list_interfaces, super::networks::attach, super::networks::detach,
        super::volumes::list, super::volumes::create, super::volumes::get, super::volumes::update,
        super::volumes::delete, super::volumes::attach, super::volumes::detach,
        // Public IP pools and floating IPs (perm-g).
        super::ip_pools::list, super::ip_pools::create, super::ip_pools::get, super::ip_pools::update,
        super::ip_pools::delete, super::floating_ips::list, super::floating_ips::create, super::floating_ips::get,
        super::floating_ips::update, super::floating_ips::delete, super::floating_ips::attach,
        super::floating_ips::detach,
        // Snapshot schedules and maintenance windows (perm-e).
        super::snapshot_schedules::list, super::snapshot_schedules::create, super::snapshot_schedules::get,
        super::snapshot_schedules::update, super::snapshot_schedules::delete, super::snapshot_schedules::run,
        super::maintenance_windows::list, super::maintenance_windows::create, super::maintenance_windows::get,
        super::maintenance_windows::update, super::maintenance_windows::delete,
        // Security groups (perm-f).
        super::security_groups::list, super::security_groups::create, super::security_groups::get,
        super::security_groups::update, super::security_groups::delete, super::security_groups::list_rules,
        super::security_groups::create_rule, super::security_groups::delete_rule,
        super::security_groups::list_attached, super::security_groups::attach, super::security_groups::detach,
        // webhooks (perm-h)
        super::webhooks::list, super::webhooks::create, super::webhooks::get, super::webhooks::update,
        super::webhooks::delete, super::webhooks::rotate_secret, super::webhooks::test,
        super::webhooks::deliveries, super::webhooks::redeliver,
    ),
    components(schemas(ErrorBody, ErrorDetail, Tenant, TenantState, SuspendAction, CreateTenant, UpdateTenant,
        User, CreateUser, UpdateUser, LoginRequest, SwitchTenantRequest, TokenResponse, Scope, Me,
        ApiToken, CreateApiToken, CreatedApiToken, AuditEvent, Permission,
        Role, CreateRole, UpdateRole, Group, CreateGroup, UpdateGroup, GroupMember, RoleBinding, CreateRoleBinding, AuthzCheck, AuthzDecision,
        Region, CreateRegion, UpdateRegion, Cluster, CreateCluster, UpdateCluster, Host, Quota, CreateQuota,
        UpdateQuota, Template, CreateTemplate, CreateTemplateFromVm, UpdateTemplate, Vm, VmState, PowerState, CreateVm, StopVm, ResizeVm,
        MigrateVm, Snapshot, CreateSnapshot, Operation, OperationStatus, ConsoleTicket,
        QuotaRequest, QuotaRequestState, CreateQuotaRequest, DecideQuotaRequest, ClusterCapacity, HostCapacityView,
        ConsoleSession, Notice, NoticeSeverity, CreateNotice, UpdateNotice,
        crate::federation::sync::Registration, crate::federation::sync::Registered, super::federation::ResolveRequest,
        crate::federation::identity::ForwardedPrincipal, crate::authz::GrantRow, crate::federation::sync::SyncPayload,
        crate::federation::sync::PushedTenant, crate::federation::sync::SyncAnswer,
        UserKind, Invitation, CreateInvitation, CreatedInvitation, AcceptInvitation, TenantPolicy, UpdateTenantPolicy,
        ServiceAccount, CreateServiceAccount, UpdateServiceAccount, CreateServiceAccountToken, HeldPermission,
        UserPermissions,
        CreateVmRequest, UpdateVm, RebuildVm, CloneVm, VmMetrics, UpdateSnapshot,
        PlacementGroup, PlacementPolicy, CreatePlacementGroup, UpdatePlacementGroup,
        Network, CreateNetwork, UpdateNetwork, VmInterface, AttachInterface, Volume, CreateVolume, UpdateVolume,
        VolumeAttachment,
        // Public IP pools and floating IPs (perm-g).
        IpPool, CreateIpPool, UpdateIpPool, FloatingIp, CreateFloatingIp, UpdateFloatingIp,
        // Snapshot schedules and maintenance windows (perm-e).
        SnapshotSchedule, CreateSnapshotSchedule, UpdateSnapshotSchedule, MaintenanceWindow, MaintenanceState,
        CreateMaintenanceWindow, UpdateMaintenanceWindow,
        // Security groups (perm-f).
        SecurityGroup, CreateSecurityGroup, UpdateSecurityGroup, RuleDirection, RuleProtocol, SecurityGroupRule,
        CreateSecurityGroupRule, VmSecurityGroup, AttachSecurityGroup,
        // webhooks (perm-h)
        Webhook, CreateWebhook, UpdateWebhook, CreatedWebhook, WebhookDelivery, WebhookTestResult)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON (what `docs/openapi.json` holds).
pub fn document_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// Serve the OpenAPI document.
#[utoipa::path(get, operation_id = "openapi_document", path = "/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
