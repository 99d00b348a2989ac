//! The wire types of the Basalt `/v1` API: what the server answers and what it accepts.
//!
//! Request bodies reject unknown fields (`deny_unknown_fields`) so a typo in a field
//! name is a 400, never silently ignored. Every type derives `ToSchema`, which is what
//! the server's OpenAPI document is generated from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The body of every error answer: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A machine-readable code, a sentence for people, and structured details
/// (for bad input: `field`; for a missing permission: `permission`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

/// One page of a list. `next_cursor` is opaque; pass it back as `cursor`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Lifecycle state of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    Active,
    Suspended,
    Deleted,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Suspended => "suspended",
            TenantState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(TenantState::Active),
            "suspended" => Some(TenantState::Suspended),
            "deleted" => Some(TenantState::Deleted),
            _ => None,
        }
    }
}

/// What suspending a tenant does to its running VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuspendAction {
    /// Running VMs are stopped (the default).
    Stop,
    /// Running VMs keep running; only changes are refused.
    Keep,
}

impl SuspendAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SuspendAction::Stop => "stop",
            SuspendAction::Keep => "keep",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stop" => Some(SuspendAction::Stop),
            "keep" => Some(SuspendAction::Keep),
            _ => None,
        }
    }
}

/// A customer of the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub state: TenantState,
    pub suspend_action: SuspendAction,
    /// Increments on every change; send it back as `If-Match` to update safely.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1–63 characters: lower-case letters, digits and `-`, starting with a letter.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `active` (default) or `suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TenantState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_action: Option<SuspendAction>,
}

/// A partial update: absent fields are left as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `active` or `suspended`; the same as calling `/resume` or `/suspend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TenantState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_action: Option<SuspendAction>,
}

/// A person or pipeline identity. `tenant_id` is null for provider staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub username: String,
    pub email: Option<String>,
    pub disabled: bool,
    /// Whether a password is set (the hash itself is never returned).
    pub has_password: bool,
    /// `human`, or `service` for a service account (no password, API tokens only).
    #[serde(default)]
    pub kind: UserKind,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// 1–64 characters: letters, digits and `.`, `_`, `-`, `@`, starting with a letter or digit.
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// 12–1024 characters. Stored as an argon2id hash only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// Tenant id or name; absent for provider staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchTenantRequest {
    /// Tenant id or name.
    pub tenant: String,
}

/// A signed user token (JWT, EdDSA) and the tenant context it carries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// Null when the token acts at system scope.
    pub tenant_id: Option<Uuid>,
}

/// The scope a credential acts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    System,
    Tenant,
}

/// `GET /v1/me`: who the caller is and what it may do in its current context.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub scope: Scope,
    pub tenant_id: Option<Uuid>,
    pub tenant_name: Option<String>,
    /// Sorted `resource:action` strings.
    pub permissions: Vec<String>,
    /// Regions the caller's tenant is entitled to (empty until federation).
    pub regions: Vec<String>,
}

/// A long-lived API token for pipelines. The secret is shown once, at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// The tenant context the token acts in; null: system scope.
    pub tenant_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiToken {
    pub name: String,
    /// Tenant id or name the token acts in. Provider staff may name any tenant or
    /// leave it out for system scope; tenant users always get their own tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Lifetime in seconds (60 s to 2 years); absent: no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiToken {
    #[serde(flatten)]
    pub token: ApiToken,
    /// The bearer secret. Only this answer ever contains it.
    pub secret: String,
}

/// One entry of the append-only audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_name: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub outcome: String,
    pub details: serde_json::Value,
}

/// One permission of the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Permission {
    pub name: String,
    pub description: String,
    pub scopes: Vec<String>,
}

/// A named set of permissions. Built-in roles are system rows, read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub id: Uuid,
    /// Null for built-in and provider (system) roles.
    pub tenant_id: Option<Uuid>,
    pub name: String,
    pub description: String,
    /// Sorted `resource:action` strings.
    pub permissions: Vec<String>,
    pub builtin: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `resource:action` names from `GET /v1/permissions`; at least one.
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Replaces the whole set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

/// A role granted to a user at one scope object: the system, a tenant, or one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoleBinding {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    /// The user holding the role, or none for a group's binding.
    pub user_id: Option<Uuid>,
    /// The group whose members hold the role, or none for a user's binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    pub role_id: Uuid,
    pub cluster_id: Option<Uuid>,
    /// `system`, `tenant` or `cluster`.
    pub scope: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleBinding {
    pub role_id: Uuid,
    /// Who holds the role: a user, or (inside a tenant) a group; exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// Set for cluster scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<Uuid>,
}

/// A tenant's group: a role bound to it is held by every member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// 1–63 characters: lower-case letters, digits and `-`, starting with a letter.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupMember {
    pub user_id: Uuid,
    pub username: String,
    pub added_at: DateTime<Utc>,
}

/// `POST /v1/authz/check`: may I do this?
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzCheck {
    pub permission: String,
    /// Ask about one cluster (cluster-scoped bindings count there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthzDecision {
    pub allowed: bool,
    pub permission: String,
    /// The binding that grants it, when allowed.
    pub binding_id: Option<Uuid>,
    pub role: Option<String>,
    /// Why not, when refused.
    pub reason: Option<String>,
}

/// What kind of identity a user is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    /// A person: may have a password and log in.
    #[default]
    Human,
    /// A service account: no password, authenticates with API tokens only.
    Service,
}

/// How much a [`Notice`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeSeverity {
    Info,
    Warning,
    Critical,
}

impl NoticeSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeSeverity::Info => "info",
            NoticeSeverity::Warning => "warning",
            NoticeSeverity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeSeverity> {
        match s {
            "info" => Some(NoticeSeverity::Info),
            "warning" => Some(NoticeSeverity::Warning),
            "critical" => Some(NoticeSeverity::Critical),
            _ => None,
        }
    }
}

/// A provider announcement (a maintenance window, an incident) that every tenant reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notice {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    pub severity: NoticeSeverity,
    pub starts_at: DateTime<Utc>,
    /// Open-ended when absent.
    pub ends_at: Option<DateTime<Utc>>,
    /// The region it concerns; absent: the whole estate.
    pub region_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNotice {
    /// 1–200 printable characters.
    pub title: String,
    /// Up to 10000 characters.
    #[serde(default)]
    pub body: String,
    pub severity: NoticeSeverity,
    pub starts_at: DateTime<Utc>,
    /// After `starts_at`; absent: open-ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<Uuid>,
}

/// A partial update; `ends_at` and `region_id` may be set to null to clear them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNotice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<NoticeSeverity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Uuid>)]
    pub region_id: Option<Option<Uuid>>,
}

/// A field that may be absent (`None`), null (`Some(None)`) or set: reads a
/// present field as `Some(value)`, `null` included; with `#[serde(default)]` an
/// absent field stays `None`, so an update tells "leave it" from "clear it".
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An invitation to create one's own user in a context. The secret is shown
/// once, at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    /// The tenant the new user joins; null: provider staff.
    pub tenant_id: Option<Uuid>,
    pub email: String,
    /// The role bound to the new user on acceptance.
    pub role_id: Option<Uuid>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub state: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_user_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    pub email: String,
    /// A role to bind on acceptance: only one the caller may bind itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<Uuid>,
    /// 1 to 720 hours; 168 (a week) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_hours: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedInvitation {
    #[serde(flatten)]
    pub invitation: Invitation,
    /// The secret to hand to the invitee (`bsi_...`). Only this answer ever contains it.
    pub token: String,
}

/// `POST /v1/invitations/accept`: redeem an invitation (no credential needed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    pub token: String,
    pub username: String,
    /// At least the tenant policy's `password_min_length` characters.
    pub password: String,
}

/// A tenant's password and token rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantPolicy {
    pub tenant_id: Uuid,
    /// Minimum password length for the tenant's users (8 to 128; default 12).
    pub password_min_length: i32,
    /// Longest lifetime of an API token of the tenant's users, in days; null: no limit.
    pub token_max_ttl_days: Option<i32>,
    /// 0 until the policy is first changed.
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_min_length: Option<i32>,
    /// 1 to 732 days; `null` removes the limit.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>)]
    pub token_max_ttl_days: Option<Option<i32>>,
}

/// A service account: a user without a password, for pipelines. Bind roles to it
/// with `POST /v1/role-bindings` (`user_id`), and issue it API tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceAccount {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub name: String,
    pub description: String,
    pub disabled: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccount {
    /// Must match the caller's tenant context when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// A username: 1–64 letters, digits and `.`, `_`, `-`, `@` (unique among the context's users).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceAccount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccountToken {
    pub name: String,
    /// Lifetime in seconds (60 s to 2 years, and within the tenant policy); absent: no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
}

/// One permission a user holds, and what grants it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeldPermission {
    pub permission: String,
    pub binding_id: Uuid,
    pub role_id: Uuid,
    pub role: String,
    /// Set when the binding is made to a group the user belongs to.
    pub group_id: Option<Uuid>,
    /// Set when held on one cluster only.
    pub cluster_id: Option<Uuid>,
}

/// `GET /v1/users/{id}/permissions`: what a user of the context may do there.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserPermissions {
    pub user_id: Uuid,
    /// Held in the whole context, sorted, each with the binding that grants it.
    pub permissions: Vec<HeldPermission>,
    /// Held on single clusters through cluster-scoped bindings.
    pub cluster_permissions: Vec<HeldPermission>,
}

// --- webhooks (perm-h) ---

/// A tenant's subscription to its own audit events, delivered as signed HTTP
/// POSTs. The signing secret is never part of it (see [`CreatedWebhook`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    /// Audit action patterns: `vm.create` (exact), `vm.*` (a prefix), or `*`.
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http` or `https`; its host must not resolve to an internal address.
    pub url: String,
    /// 1–50 audit action patterns: `vm.create`, `vm.*` or `*`.
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A webhook with its signing secret: answered once, at creation or rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// `whsec_…`: the HMAC-SHA256 key of `Basalt-Signature` (its UTF-8 bytes).
    pub secret: String,
}

/// One delivery of a webhook: an event (or a ping) and how sending it went.
/// The body sent is not part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The audit event delivered (none for a ping).
    pub event_id: Option<Uuid>,
    /// The audit action, or `ping`.
    pub event_type: String,
    /// The delivery this one sends again, if it is a redelivery.
    pub redelivery_of: Option<Uuid>,
    /// `pending`, `succeeded` or `failed` (after the last attempt).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The outcome of `POST /v1/webhooks/{id}/test`: one `ping`, sent now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookTestResult {
    pub delivery_id: Uuid,
    /// True on a 2xx answer.
    pub success: bool,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}
