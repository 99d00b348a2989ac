//! The HTTP API. Every route is declared once in [`routes`], with the [`Access`]
//! it requires; [`router`] builds axum's router from that table and puts the
//! authorization check in front of every handler, so no route can be reached
//! without its check, and tests can enumerate what each route requires.

mod audit_events;
pub mod auth;
pub mod clusters;
pub mod console;
pub mod crud;
pub mod extract;
pub mod federation;
pub mod floating_ips;
pub mod groups;
pub mod health;
pub mod hosts;
pub mod invitations;
pub mod ip_pools;
pub mod maintenance_windows;
pub mod networks;
pub mod notices;
pub mod openapi;
pub mod operations;
pub mod permissions;
pub mod placement_groups;
pub mod quota_requests;
pub mod quotas;
pub mod regions;
pub mod role_bindings;
pub mod roles;
pub mod security_groups;
pub mod service_accounts;
pub mod snapshot_schedules;
pub mod snapshots;
pub mod templates;
pub mod tenant_policy;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod vms;
pub mod volumes;
pub mod webhooks;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::audit::{self as audit, Event};
use crate::auth::Principal;
use crate::authz::{self, Access, Grants, Permission};
use crate::db::Tx;
use crate::error::ApiError;
use crate::federation::signing::Caller;
use crate::federation::{identity, proxy, Mode};
use extract::Authorized;

/// One route: method, path template, what it requires, and its handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    /// Changes data: refused with 423 in a suspended tenant. Every method but GET,
    /// unless the route says otherwise ([`Route::reads`]).
    pub mutating: bool,
    handler: MethodRouter<AppState>,
}

/// What the choke point needs to know about a route.
#[derive(Debug, Clone, Copy)]
struct RouteAccess {
    access: Access,
    mutating: bool,
}

impl Route {
    /// A POST that changes nothing in the tenant (a token exchange, a question).
    fn reads(mut self) -> Route {
        self.mutating = false;
        self
    }
}

fn route<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Route
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("standard method");
    let mutating = method != Method::GET && method != Method::HEAD;
    Route { method, path, access, mutating, handler: on(filter, handler) }
}

/// Every route of the API, with what it requires. One line per route, so the
/// table reads as the API's authorization policy.
#[rustfmt::skip]
pub fn routes() -> Vec<Route> {
    use Access::{Authenticated, Public, Service};
    use Method as M;
    use Permission as P;
    let p = Access::Permission;
    vec![
        route(M::GET,    "/healthz",                   Public,                  health::healthz),
        route(M::GET,    "/readyz",                    Public,                  health::readyz),
        route(M::GET,    "/metrics",                   Public,                  health::metrics),
        route(M::GET,    "/v1/openapi.json",           Public,                  openapi::document),
        route(M::POST,   "/v1/auth/login",             Public,                  auth::login),
        route(M::POST,   "/v1/auth/switch-tenant",     p(P::TenantSwitch),      auth::switch_tenant).reads(),
        route(M::GET,    "/v1/me",                     Authenticated,           auth::me),
        route(M::GET,    "/v1/permissions",            p(P::PermissionList),    permissions::list),
        route(M::GET,    "/v1/tenants",                p(P::TenantList),        tenants::list),
        route(M::POST,   "/v1/tenants",                p(P::TenantCreate),      tenants::create),
        route(M::GET,    "/v1/tenants/{id}",           p(P::TenantRead),        tenants::get),
        route(M::PATCH,  "/v1/tenants/{id}",           p(P::TenantUpdate),      tenants::update),
        route(M::DELETE, "/v1/tenants/{id}",           p(P::TenantDelete),      tenants::delete),
        route(M::POST,   "/v1/tenants/{id}/suspend",   p(P::TenantSuspend),     tenants::suspend),
        route(M::POST,   "/v1/tenants/{id}/resume",    p(P::TenantResume),      tenants::resume),
        route(M::GET,    "/v1/users",                  p(P::UserList),          users::list),
        route(M::POST,   "/v1/users",                  p(P::UserCreate),        users::create),
        route(M::GET,    "/v1/users/{id}",             p(P::UserRead),          users::get),
        route(M::PATCH,  "/v1/users/{id}",             p(P::UserUpdate),        users::update),
        route(M::DELETE, "/v1/users/{id}",             p(P::UserDelete),        users::delete),
        route(M::POST,   "/v1/users/{id}/disable",     p(P::UserDisable),       users::disable),
        route(M::POST,   "/v1/users/{id}/enable",      p(P::UserEnable),        users::enable),
        route(M::GET,    "/v1/users/{id}/tokens",      p(P::UserTokenList),     tokens::list_of_user),
        route(M::DELETE, "/v1/users/{id}/tokens/{token_id}", p(P::UserTokenRevoke), tokens::revoke_of_user),
        route(M::GET,    "/v1/tokens",                 p(P::TokenList),         tokens::list),
        route(M::POST,   "/v1/tokens",                 p(P::TokenCreate),       tokens::create),
        route(M::GET,    "/v1/tokens/{id}",            p(P::TokenRead),         tokens::get),
        route(M::DELETE, "/v1/tokens/{id}",            p(P::TokenRevoke),       tokens::revoke),
        route(M::GET,    "/v1/audit-events",           p(P::AuditRead),         audit_events::list),
        route(M::GET,    "/v1/audit-events/export",    p(P::AuditExport),       audit_events::export),
        route(M::POST,   "/v1/users/{id}/unlock",      p(P::UserUnlock),        users::unlock),
        route(M::GET,    "/v1/users/{id}/permissions", p(P::UserPermissionList), users::permissions),
        route(M::GET,    "/v1/invitations",            p(P::InvitationList),    invitations::list),
        route(M::POST,   "/v1/invitations",            p(P::InvitationCreate),  invitations::create),
        route(M::GET,    "/v1/invitations/{id}",       p(P::InvitationRead),    invitations::get),
        route(M::POST,   "/v1/invitations/{id}/revoke", p(P::InvitationRevoke), invitations::revoke),
        // The invitation's secret is the credential: no bearer token.
        route(M::POST,   "/v1/invitations/accept",     Public,                  invitations::accept),
        route(M::GET,    "/v1/tenant-policy",          p(P::TenantPolicyRead),  tenant_policy::get),
        route(M::PATCH,  "/v1/tenant-policy",          p(P::TenantPolicyUpdate), tenant_policy::update),
        route(M::GET,    "/v1/service-accounts",       p(P::ServiceAccountList), service_accounts::list),
        route(M::POST,   "/v1/service-accounts",       p(P::ServiceAccountCreate), service_accounts::create),
        route(M::GET,    "/v1/service-accounts/{id}",  p(P::ServiceAccountRead), service_accounts::get),
        route(M::PATCH,  "/v1/service-accounts/{id}",  p(P::ServiceAccountUpdate), service_accounts::update),
        route(M::DELETE, "/v1/service-accounts/{id}",  p(P::ServiceAccountDelete), service_accounts::delete),
        route(M::GET,    "/v1/service-accounts/{id}/tokens", p(P::ServiceAccountTokenList), service_accounts::list_tokens),
        route(M::POST,   "/v1/service-accounts/{id}/tokens", p(P::ServiceAccountTokenCreate), service_accounts::create_token),
        route(M::DELETE, "/v1/service-accounts/{id}/tokens/{token_id}", p(P::ServiceAccountTokenRevoke), service_accounts::revoke_token),
        route(M::GET,    "/v1/roles",                  p(P::RoleList),          roles::list),
        route(M::POST,   "/v1/roles",                  p(P::RoleCreate),        roles::create),
        route(M::GET,    "/v1/roles/{id}",             p(P::RoleRead),          roles::get),
        route(M::PATCH,  "/v1/roles/{id}",             p(P::RoleUpdate),        roles::update),
        route(M::DELETE, "/v1/roles/{id}",             p(P::RoleDelete),        roles::delete),
        route(M::GET,    "/v1/groups",                 p(P::GroupList),         groups::list),
        route(M::POST,   "/v1/groups",                 p(P::GroupCreate),       groups::create),
        route(M::GET,    "/v1/groups/{id}",            p(P::GroupRead),         groups::get),
        route(M::PATCH,  "/v1/groups/{id}",            p(P::GroupUpdate),       groups::update),
        route(M::DELETE, "/v1/groups/{id}",            p(P::GroupDelete),       groups::delete),
        route(M::GET,    "/v1/groups/{id}/members",    p(P::GroupMemberList),   groups::members),
        route(M::PUT,    "/v1/groups/{id}/members/{user_id}", p(P::GroupMemberAdd), groups::add_member),
        route(M::DELETE, "/v1/groups/{id}/members/{user_id}", p(P::GroupMemberRemove), groups::remove_member),
        route(M::GET,    "/v1/role-bindings",          p(P::RoleBindingList),   role_bindings::list),
        route(M::POST,   "/v1/role-bindings",          p(P::RoleBindingCreate), role_bindings::create),
        route(M::GET,    "/v1/role-bindings/{id}",     p(P::RoleBindingRead),   role_bindings::get),
        route(M::DELETE, "/v1/role-bindings/{id}",     p(P::RoleBindingDelete), role_bindings::delete),
        route(M::POST,   "/v1/authz/check",            Authenticated,           role_bindings::check).reads(),
        route(M::GET,    "/v1/tenants/{id}/regions",   p(P::EntitlementList),   federation::list),
        route(M::PUT,    "/v1/tenants/{id}/regions/{region_id}", p(P::EntitlementGrant), federation::grant),
        route(M::DELETE, "/v1/tenants/{id}/regions/{region_id}", p(P::EntitlementRevoke), federation::revoke),
        route(M::GET,    "/v1/notices",                p(P::NoticeList),        notices::list),
        route(M::POST,   "/v1/notices",                p(P::NoticeCreate),      notices::create),
        route(M::GET,    "/v1/notices/{id}",           p(P::NoticeRead),        notices::get),
        route(M::PATCH,  "/v1/notices/{id}",           p(P::NoticeUpdate),      notices::update),
        route(M::DELETE, "/v1/notices/{id}",           p(P::NoticeDelete),      notices::delete),
        route(M::POST,   "/v1/federation/register",    Service(Caller::Region), federation::register),
        route(M::POST,   "/v1/federation/resolve",     Service(Caller::Region), federation::resolve).reads(),
        route(M::POST,   "/v1/federation/sync",        Service(Caller::Global), federation::sync),
        route(M::GET,    "/v1/federation/objects/{id}", Service(Caller::Global), federation::object),
        route(M::GET,    "/v1/regions",                p(P::RegionList),        regions::list),
        route(M::POST,   "/v1/regions",                p(P::RegionRegister),    regions::create),
        route(M::GET,    "/v1/regions/{id}",           p(P::RegionRead),        regions::get),
        route(M::PATCH,  "/v1/regions/{id}",           p(P::RegionUpdate),      regions::update),
        route(M::POST,   "/v1/regions/{id}/check",     p(P::RegionCheck),       regions::check).reads(),
        route(M::DELETE, "/v1/regions/{id}",           p(P::RegionDeregister),  regions::delete),
        route(M::GET,    "/v1/clusters",               p(P::ClusterList),       clusters::list),
        route(M::POST,   "/v1/clusters",               p(P::ClusterCreate),     clusters::create),
        route(M::GET,    "/v1/clusters/{id}",          p(P::ClusterRead),       clusters::get),
        route(M::PATCH,  "/v1/clusters/{id}",          p(P::ClusterUpdate),     clusters::update),
        route(M::DELETE, "/v1/clusters/{id}",          p(P::ClusterDelete),     clusters::delete),
        route(M::GET,    "/v1/clusters/{id}/capacity", p(P::ClusterCapacityRead), hosts::capacity),
        route(M::GET,    "/v1/clusters/{id}/hosts",    p(P::HostList),          hosts::list),
        route(M::GET,    "/v1/clusters/{id}/hosts/{host_id}", p(P::HostRead),   hosts::get),
        route(M::POST,   "/v1/clusters/{id}/hosts/{host_id}/drain", p(P::HostDrain), hosts::drain),
        route(M::POST,   "/v1/clusters/{id}/hosts/{host_id}/undrain", p(P::HostUndrain), hosts::undrain),
        route(M::POST,   "/v1/clusters/{id}/hosts/{host_id}/evacuate", p(P::HostEvacuate), hosts::evacuate),
        route(M::GET,    "/v1/quotas",                 p(P::QuotaList),         quotas::list),
        route(M::POST,   "/v1/quotas",                 p(P::QuotaCreate),       quotas::create),
        route(M::GET,    "/v1/quotas/{id}",            p(P::QuotaRead),         quotas::get),
        route(M::PATCH,  "/v1/quotas/{id}",            p(P::QuotaUpdate),       quotas::update),
        route(M::DELETE, "/v1/quotas/{id}",            p(P::QuotaDelete),       quotas::delete),
        route(M::GET,    "/v1/quota-requests",         p(P::QuotaRequestList),  quota_requests::list),
        route(M::POST,   "/v1/quota-requests",         p(P::QuotaRequestCreate), quota_requests::create),
        route(M::GET,    "/v1/quota-requests/{id}",    p(P::QuotaRequestRead),  quota_requests::get),
        route(M::POST,   "/v1/quota-requests/{id}/cancel", p(P::QuotaRequestCancel), quota_requests::cancel),
        route(M::POST,   "/v1/quota-requests/{id}/approve", p(P::QuotaRequestApprove), quota_requests::approve),
        route(M::POST,   "/v1/quota-requests/{id}/reject", p(P::QuotaRequestReject), quota_requests::reject),
        route(M::GET,    "/v1/templates",              p(P::TemplateList),      templates::list),
        route(M::POST,   "/v1/templates",              p(P::TemplateCreate),    templates::create),
        route(M::GET,    "/v1/templates/{id}",         p(P::TemplateRead),      templates::get),
        route(M::PATCH,  "/v1/templates/{id}",         p(P::TemplateUpdate),    templates::update),
        route(M::DELETE, "/v1/templates/{id}",         p(P::TemplateDelete),    templates::delete),
        route(M::POST,   "/v1/templates/{id}/publish", p(P::TemplatePublish),   templates::publish),
        route(M::POST,   "/v1/templates/{id}/unpublish", p(P::TemplateUnpublish), templates::unpublish),
        route(M::GET,    "/v1/vms",                    p(P::VmList),            vms::list),
        route(M::POST,   "/v1/vms",                    p(P::VmCreate),          vms::create),
        route(M::GET,    "/v1/vms/{id}",               p(P::VmRead),            vms::get),
        route(M::DELETE, "/v1/vms/{id}",               p(P::VmDelete),          vms::delete),
        route(M::POST,   "/v1/vms/{id}/start",         p(P::VmPower),           vms::start),
        route(M::POST,   "/v1/vms/{id}/stop",          p(P::VmPower),           vms::stop),
        route(M::POST,   "/v1/vms/{id}/reboot",        p(P::VmPower),           vms::reboot),
        route(M::POST,   "/v1/vms/{id}/suspend",       p(P::VmPower),           vms::suspend),
        route(M::POST,   "/v1/vms/{id}/resume",        p(P::VmPower),           vms::resume),
        route(M::POST,   "/v1/vms/{id}/resize",        p(P::VmResize),          vms::resize),
        route(M::POST,   "/v1/vms/{id}/migrate",       p(P::VmMigrate),         vms::migrate),
        route(M::POST,   "/v1/vms/{id}/template",      p(P::TemplateCreate),    templates::from_vm),
        route(M::POST,   "/v1/vms/{id}/console",       p(P::VmConsole),         console::ticket),
        route(M::GET,    "/v1/vms/{id}/console/ws",    Access::ConsoleTicket,   console::websocket),
        route(M::GET,    "/v1/vms/{id}/console-sessions", p(P::ConsoleSessionList), console::sessions),
        route(M::DELETE, "/v1/vms/{id}/console-sessions/{session_id}", p(P::ConsoleSessionRevoke), console::revoke),
        route(M::GET,    "/v1/vms/{id}/snapshots",     p(P::SnapshotList),      snapshots::list),
        route(M::POST,   "/v1/vms/{id}/snapshots",     p(P::SnapshotCreate),    snapshots::create),
        route(M::GET,    "/v1/vms/{id}/snapshots/{snapshot_id}", p(P::SnapshotRead), snapshots::get),
        route(M::DELETE, "/v1/vms/{id}/snapshots/{snapshot_id}", p(P::SnapshotDelete), snapshots::delete),
        route(M::POST,   "/v1/vms/{id}/snapshots/{snapshot_id}/revert", p(P::SnapshotRevert), snapshots::revert),
        route(M::PATCH,  "/v1/vms/{id}",               p(P::VmUpdate),          vms::update),
        route(M::POST,   "/v1/vms/{id}/protect",       p(P::VmProtect),         vms::protect),
        route(M::POST,   "/v1/vms/{id}/unprotect",     p(P::VmUnprotect),       vms::unprotect),
        route(M::GET,    "/v1/vms/{id}/metrics",       p(P::VmMetricsRead),     vms::metrics),
        route(M::POST,   "/v1/vms/{id}/rebuild",       p(P::VmRebuild),         vms::rebuild),
        route(M::POST,   "/v1/vms/{id}/clone",         p(P::VmClone),           vms::clone),
        route(M::POST,   "/v1/vms/{id}/reset",         p(P::VmReset),           vms::reset),
        route(M::PATCH,  "/v1/vms/{id}/snapshots/{snapshot_id}", p(P::SnapshotUpdate), snapshots::update),
        route(M::GET,    "/v1/placement-groups",       p(P::PlacementGroupList), placement_groups::list),
        route(M::POST,   "/v1/placement-groups",       p(P::PlacementGroupCreate), placement_groups::create),
        route(M::GET,    "/v1/placement-groups/{id}",  p(P::PlacementGroupRead), placement_groups::get),
        route(M::PATCH,  "/v1/placement-groups/{id}",  p(P::PlacementGroupUpdate), placement_groups::update),
        route(M::DELETE, "/v1/placement-groups/{id}",  p(P::PlacementGroupDelete), placement_groups::delete),
        route(M::GET,    "/v1/operations",             p(P::OperationList),     operations::list),
        route(M::GET,    "/v1/operations/{id}",        p(P::OperationRead),     operations::get),
        route(M::POST,   "/v1/operations/{id}/cancel", p(P::OperationCancel),   operations::cancel),
        route(M::GET,    "/v1/networks",               p(P::NetworkList),       networks::list),
        route(M::POST,   "/v1/networks",               p(P::NetworkCreate),     networks::create),
        route(M::GET,    "/v1/networks/{id}",          p(P::NetworkRead),       networks::get),
        route(M::PATCH,  "/v1/networks/{id}",          p(P::NetworkUpdate),     networks::update),
        route(M::DELETE, "/v1/networks/{id}",          p(P::NetworkDelete),     networks::delete),
        route(M::GET,    "/v1/vms/{id}/interfaces",    p(P::VmInterfaceList),   networks::list_interfaces),
        route(M::POST,   "/v1/vms/{id}/interfaces",    p(P::VmInterfaceAttach), networks::attach),
        route(M::DELETE, "/v1/vms/{id}/interfaces/{interface_id}", p(P::VmInterfaceDetach), networks::detach),
        route(M::GET,    "/v1/volumes",                p(P::VolumeList),        volumes::list),
        route(M::POST,   "/v1/volumes",                p(P::VolumeCreate),      volumes::create),
        route(M::GET,    "/v1/volumes/{id}",           p(P::VolumeRead),        volumes::get),
        route(M::PATCH,  "/v1/volumes/{id}",           p(P::VolumeUpdate),      volumes::update),
        route(M::DELETE, "/v1/volumes/{id}",           p(P::VolumeDelete),      volumes::delete),
        route(M::POST,   "/v1/volumes/{id}/attach",    p(P::VolumeAttach),      volumes::attach),
        route(M::POST,   "/v1/volumes/{id}/detach",    p(P::VolumeDetach),      volumes::detach),
        // Public IP pools and floating IPs (perm-g).
        route(M::GET,    "/v1/ip-pools",               p(P::IpPoolList),        ip_pools::list),
        route(M::POST,   "/v1/ip-pools",               p(P::IpPoolCreate),      ip_pools::create),
        route(M::GET,    "/v1/ip-pools/{id}",          p(P::IpPoolRead),        ip_pools::get),
        route(M::PATCH,  "/v1/ip-pools/{id}",          p(P::IpPoolUpdate),      ip_pools::update),
        route(M::DELETE, "/v1/ip-pools/{id}",          p(P::IpPoolDelete),      ip_pools::delete),
        route(M::GET,    "/v1/floating-ips",           p(P::FloatingIpList),    floating_ips::list),
        route(M::POST,   "/v1/floating-ips",           p(P::FloatingIpCreate),  floating_ips::create),
        route(M::GET,    "/v1/floating-ips/{id}",      p(P::FloatingIpRead),    floating_ips::get),
        route(M::PATCH,  "/v1/floating-ips/{id}",      p(P::FloatingIpUpdate),  floating_ips::update),
        route(M::DELETE, "/v1/floating-ips/{id}",      p(P::FloatingIpDelete),  floating_ips::delete),
        route(M::POST,   "/v1/floating-ips/{id}/attach", p(P::FloatingIpAttach), floating_ips::attach),
        route(M::POST,   "/v1/floating-ips/{id}/detach", p(P::FloatingIpDetach), floating_ips::detach),
        // Snapshot schedules and maintenance windows (perm-e).
        route(M::GET,    "/v1/snapshot-schedules",     p(P::SnapshotScheduleList), snapshot_schedules::list),
        route(M::POST,   "/v1/snapshot-schedules",     p(P::SnapshotScheduleCreate), snapshot_schedules::create),
        route(M::GET,    "/v1/snapshot-schedules/{id}", p(P::SnapshotScheduleRead), snapshot_schedules::get),
        route(M::PATCH,  "/v1/snapshot-schedules/{id}", p(P::SnapshotScheduleUpdate), snapshot_schedules::update),
        route(M::DELETE, "/v1/snapshot-schedules/{id}", p(P::SnapshotScheduleDelete), snapshot_schedules::delete),
        route(M::POST,   "/v1/snapshot-schedules/{id}/run", p(P::SnapshotScheduleRun), snapshot_schedules::run),
        route(M::GET,    "/v1/maintenance-windows",    p(P::MaintenanceWindowList), maintenance_windows::list),
        route(M::POST,   "/v1/maintenance-windows",    p(P::MaintenanceWindowCreate), maintenance_windows::create),
        route(M::GET,    "/v1/maintenance-windows/{id}", p(P::MaintenanceWindowRead), maintenance_windows::get),
        route(M::PATCH,  "/v1/maintenance-windows/{id}", p(P::MaintenanceWindowUpdate), maintenance_windows::update),
        route(M::DELETE, "/v1/maintenance-windows/{id}", p(P::MaintenanceWindowDelete), maintenance_windows::delete),
        // Security groups (perm-f).
        route(M::GET,    "/v1/security-groups",        p(P::SecurityGroupList),   security_groups::list),
        route(M::POST,   "/v1/security-groups",        p(P::SecurityGroupCreate), security_groups::create),
        route(M::GET,    "/v1/security-groups/{id}",   p(P::SecurityGroupRead),   security_groups::get),
        route(M::PATCH,  "/v1/security-groups/{id}",   p(P::SecurityGroupUpdate), security_groups::update),
        route(M::DELETE, "/v1/security-groups/{id}",   p(P::SecurityGroupDelete), security_groups::delete),
        route(M::GET,    "/v1/security-groups/{id}/rules", p(P::SecurityGroupRuleList),   security_groups::list_rules),
        route(M::POST,   "/v1/security-groups/{id}/rules", p(P::SecurityGroupRuleCreate), security_groups::create_rule),
        route(M::DELETE, "/v1/security-groups/{id}/rules/{rule_id}", p(P::SecurityGroupRuleDelete), security_groups::delete_rule),
        route(M::GET,    "/v1/vms/{id}/security-groups", p(P::VmSecurityGroupList),   security_groups::list_attached),
        route(M::POST,   "/v1/vms/{id}/security-groups", p(P::VmSecurityGroupAttach), security_groups::attach),
        route(M::DELETE, "/v1/vms/{id}/security-groups/{security_group_id}", p(P::VmSecurityGroupDetach), security_groups::detach),
        // webhooks (perm-h)
        route(M::GET,    "/v1/webhooks",               p(P::WebhookList),       webhooks::list),
        route(M::POST,   "/v1/webhooks",               p(P::WebhookCreate),     webhooks::create),
        route(M::GET,    "/v1/webhooks/{id}",          p(P::WebhookRead),       webhooks::get),
        route(M::PATCH,  "/v1/webhooks/{id}",          p(P::WebhookUpdate),     webhooks::update),
        route(M::DELETE, "/v1/webhooks/{id}",          p(P::WebhookDelete),     webhooks::delete),
        route(M::POST,   "/v1/webhooks/{id}/rotate-secret", p(P::WebhookRotateSecret), webhooks::rotate_secret),
        route(M::POST,   "/v1/webhooks/{id}/test",     p(P::WebhookTest),       webhooks::test),
        route(M::GET,    "/v1/webhooks/{id}/deliveries", p(P::WebhookDeliveryList), webhooks::deliveries),
        route(M::POST,   "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", p(P::WebhookDeliveryRedeliver), webhooks::redeliver),
    ]
}

/// The whole service: routes behind their checks, then request ids, tracing,
/// metrics, the body limit, and JSON answers for unknown paths and methods.
pub fn router(state: AppState) -> Router {
    let mode = state.federation.as_ref().map_or(Mode::Standalone, |f| f.mode());
    let mut app: Router<AppState> = Router::new();
    for r in routes() {
        let access = RouteAccess { access: r.access, mutating: r.mutating };
        let handler = placed(mode, &r);
        let guarded = handler.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |st: State<AppState>, req: Request, next: Next| authorize(access, st, req, next),
        ));
        app = app.route(r.path, guarded);
    }
    let request_id = HeaderName::from_static("x-request-id");
    app.fallback(|| async { ApiError::NotFound { kind: "route" } })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(axum::extract::DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Which process serves a route: a region holds compute, the controller holds
/// identity; both answer health, the catalog, region reads and service calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    Anywhere,
    Compute,
    Identity,
}

fn home(r: &Route) -> Home {
    // Public, but it creates a user: identity, served by the controller.
    if r.path == "/v1/invitations/accept" {
        return Home::Identity;
    }
    if proxy::region_collection(r.path).is_some() {
        Home::Compute
    } else if matches!(r.access, Access::Public | Access::Service(_))
        || r.path == "/v1/permissions"
        || (r.path.starts_with("/v1/regions") && r.method == Method::GET)
    {
        Home::Anywhere
    } else {
        Home::Identity
    }
}

/// The handler `r` has in `mode`: its own, or, at the controller, forwarding to
/// a region; a region answers 421 for what only the controller serves.
fn placed(mode: Mode, r: &Route) -> MethodRouter<AppState> {
    let filter = MethodFilter::try_from(r.method.clone()).expect("standard method");
    match (mode, home(r)) {
        (Mode::Global, Home::Compute) if r.access == Access::ConsoleTicket => on(filter, || async {
            misdirected("the console websocket is served by the VM's region: use the URL its ticket names")
        }),
        (Mode::Global, Home::Compute) => on(filter, proxy::forward),
        (Mode::Region, Home::Identity) => on(filter, || async {
            misdirected(
                "this is a region gateway: tenants, users, roles and bindings are served by the global controller",
            )
        }),
        _ => r.handler.clone(),
    }
}

fn misdirected(message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": "misdirected", "message": message, "details": {} } });
    (axum::http::StatusCode::MISDIRECTED_REQUEST, axum::Json(body)).into_response()
}

/// A signed service call: the signature (and nonce) is checked before the
/// handler runs, which finds what it vouches for in the request's extensions.
async fn service_call(caller: Caller, state: AppState, req: Request, next: Next) -> Response {
    let Some(fed) = state.federation.clone() else {
        return ApiError::NotFound { kind: "route" }.into_response();
    };
    let (mut parts, body) = req.into_parts();
    let bytes = match identity::read_body(body, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match fed.verify_incoming(&state.db, &parts, &bytes, caller).await {
        Ok(verified) => {
            parts.extensions.insert(verified);
        }
        Err(e) => return e.into_response(),
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// Who is calling, and the transaction in its context: here, from this
/// controller's credentials and bindings.
async fn enter_local(
    state: &AppState,
    req: Request,
    mutating: bool,
) -> Result<(Principal, Grants, Tx, Request), ApiError> {
    let (mut parts, body) = req.into_parts();
    let principal =
        <Principal as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await?;
    let scope = principal.context.db_scope();
    let (tx, rows) = state.db.begin_with_grants(scope, Some(principal.user_id), mutating).await?;
    let grants = Grants::new(principal.context, rows);
    Ok((principal, grants, tx, Request::from_parts(parts, body)))
}

/// The same in a region: the controller vouches for the caller ([`identity`]).
async fn enter_region(
    state: &AppState,
    fed: &crate::federation::Federation,
    req: Request,
    mutating: bool,
) -> Result<(Principal, Grants, Tx, Request), ApiError> {
    let (principal, rows, mut req) = identity::authenticate(state, fed, req).await?;
    req.extensions_mut().insert(principal.clone());
    let tx = state.db.begin_delegated(principal.context.db_scope(), Some(principal.user_id), mutating).await?;
    Ok((principal.clone(), Grants::new(principal.context, rows), tx, req))
}

/// The choke point: authenticate, open the request's transaction in the caller's
/// context (which also answers the caller's grants), check the route's
/// permission, then run the handler with that transaction.
async fn authorize(route: RouteAccess, State(state): State<AppState>, req: Request, next: Next) -> Response {
    match route.access {
        Access::Public | Access::ConsoleTicket => return next.run(req).await,
        Access::Service(caller) => return service_call(caller, state, req, next).await,
        Access::Authenticated | Access::Permission(_) => {}
    }
    let entered = match state.federation.as_deref().filter(|f| f.mode() == Mode::Region) {
        Some(fed) => enter_region(&state, fed, req, route.mutating).await,
        None => enter_local(&state, req, route.mutating).await,
    };
    let (principal, grants, tx, req) = match entered {
        Ok(entered) => entered,
        Err(e) => return e.into_response(),
    };
    let (mut parts, body) = req.into_parts();
    if let Access::Permission(permission) = route.access {
        if let Err(e) = authz::require(&grants, permission) {
            drop(tx);
            tracing::info!(user = %principal.user_id, permission = permission.name(), "permission denied");
            let details = serde_json::json!({
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "permission": permission.name(),
            });
            let req = extract::Req::new(principal, extract::request_id(&parts), state, Authorized::new(grants, None));
            audit::record_denied(&req, Event::new("permission.denied", "route", None).details(details)).await;
            return e.into_response();
        }
    }
    parts.extensions.insert(Authorized::new(grants, Some(tx)));
    next.run(Request::from_parts(parts, body)).await
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    state.metrics.requests.with_label_values(&[&method, &route, &status]).inc();
    state.metrics.latency.with_label_values(&[&method, &route]).observe(start.elapsed().as_secs_f64());
    resp
}
