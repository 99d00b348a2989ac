//! Diagnostics as Terraform shows them (error or warning, summary, detail, and the
//! attribute they point at), and the mapping from API errors to diagnostics that
//! tell a user what to do: 403 names the missing permission, 423 says the tenant
//! is suspended, a 400 on a field points at the matching attribute.

use basalt_client::ClientError;

use super::api::TenantSource;
use crate::codec::CodecError;
use crate::proto::tfplugin6 as pb;

/// A path to an attribute: a top-level attribute, or one inside a nested block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath(pub Vec<String>);

impl AttrPath {
    pub fn attr(name: &str) -> Self {
        AttrPath(vec![name.to_string()])
    }

    /// `["timeouts", "create"]`: the attribute `create` of the block `timeouts`.
    pub fn of(names: &[&str]) -> Self {
        AttrPath(names.iter().map(|n| n.to_string()).collect())
    }

    pub fn to_proto(&self) -> pb::AttributePath {
        let steps = self
            .0
            .iter()
            .map(|n| pb::attribute_path::Step {
                selector: Some(pb::attribute_path::step::Selector::AttributeName(n.clone())),
            })
            .collect();
        pb::AttributePath { steps }
    }
}

/// A list of diagnostics collected while serving one RPC.
#[derive(Debug, Default)]
pub struct Diagnostics(Vec<pb::Diagnostic>);

impl Diagnostics {
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(pb::diagnostic::Severity::Error, summary.into(), detail.into(), None);
    }

    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(pb::diagnostic::Severity::Warning, summary.into(), detail.into(), None);
    }

    pub fn attr_error(&mut self, path: &AttrPath, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(pb::diagnostic::Severity::Error, summary.into(), detail.into(), Some(path));
    }

    fn push(&mut self, sev: pb::diagnostic::Severity, summary: String, detail: String, path: Option<&AttrPath>) {
        self.0.push(pb::Diagnostic { severity: sev as i32, summary, detail, attribute: path.map(AttrPath::to_proto) });
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == pb::diagnostic::Severity::Error as i32)
    }

    pub fn into_vec(self) -> Vec<pb::Diagnostic> {
        self.0
    }

    /// Adds `err` (from `what`, e.g. "creating basalt_tenant") as an error diagnostic.
    pub fn from_error(&mut self, what: &str, err: &Error) {
        match err {
            Error::Api(e) => self.api_error(what, e),
            Error::Attribute { path, summary, detail } => self.attr_error(path, summary.clone(), detail.clone()),
            Error::TenantSwitch { tenant, from, err } => self.tenant_switch_error(what, tenant, *from, err),
            Error::OperationFailed { id, kind, code, message } => self.error(
                format!("Error {what}: operation {kind} failed"),
                format!("{message}\n\n(operation {id}, error code `{code}`)"),
            ),
            Error::OperationTimeout { id, kind, status, timeout } => self.error(
                format!("Timed out {what}"),
                format!(
                    "Operation {id} ({kind}) was still {status} after {timeout}. It goes on on the server: follow it \
                     with GET /v1/operations/{id}, and raise the resource's `timeouts` if this work takes longer."
                ),
            ),
            Error::Partial { err, .. } => self.from_error(what, err),
            other => self.error(format!("Error {what}"), other.to_string()),
        }
    }

    /// 422 `quota_exceeded`: which limit, what is used and what was asked, on the
    /// attribute that asked for it.
    fn quota_error(&mut self, what: &str, message: &str, details: &serde_json::Value) {
        let exceeded = details.get("exceeded").and_then(|e| e.as_array()).cloned().unwrap_or_default();
        let lines: Vec<String> = exceeded
            .iter()
            .map(|x| {
                let n = |k: &str| x.get(k).and_then(|v| v.as_i64()).unwrap_or_default();
                let resource = x.get("resource").and_then(|r| r.as_str()).unwrap_or("?");
                format!("{resource}: {} more requested, {} of {} in use", n("requested"), n("used"), n("limit"))
            })
            .collect();
        let summary = format!("Quota exceeded {what}");
        let detail = format!(
            "{message}:\n  {}\n\nRaise the tenant's quota on the cluster (`basalt_tenant_quota`) or ask for less.",
            lines.join("\n  ")
        );
        let attribute = exceeded
            .iter()
            .filter_map(|x| x.get("resource").and_then(|r| r.as_str()))
            .find(|r| ["vcpus", "memory_mib"].contains(r));
        match attribute {
            Some(a) => self.attr_error(&AttrPath::attr(a), summary, detail),
            None => self.error(summary, detail),
        }
    }

    fn tenant_switch_error(&mut self, what: &str, tenant: &str, from: TenantSource, err: &ClientError) {
        let (path, setting) = match from {
            TenantSource::Attribute => (Some(AttrPath::attr("tenant_id")), "the resource's `tenant_id`"),
            TenantSource::Provider => (None, "the provider's `tenant` (or BASALT_TENANT)"),
        };
        if err.status() == Some(404) {
            let summary = format!("Tenant not found {what}");
            let detail = format!(
                "{setting} names tenant {tenant:?}, which does not exist, is deleted, or is not visible to this token."
            );
            match path {
                Some(p) => self.attr_error(&p, summary, detail),
                None => self.error(summary, detail),
            }
        } else {
            self.api_error(&format!("{what} (entering tenant {tenant:?}, named by {setting})"), err);
        }
    }

    fn api_error(&mut self, what: &str, e: &ClientError) {
        let summary = format!("Error {what}");
        let ClientError::Api { status, body } = e else {
            return self.error(summary, format!("{e}\n\nCheck that the Basalt endpoint is reachable and correct."));
        };
        let detail = &body.error.details;
        let message = &body.error.message;
        match (*status, body.error.code.as_str()) {
            (403, _) => {
                let perm = detail.get("permission").and_then(|p| p.as_str()).unwrap_or("(not named by the server)");
                self.error(
                    format!("Permission denied {what}"),
                    format!("The provider's token lacks the permission `{perm}` in its current context: {message}"),
                );
            }
            (423, _) => self.error(
                format!("Tenant suspended while {what}"),
                format!(
                    "The tenant this resource acts in is suspended: Basalt still answers reads but refuses every \
                     change inside it until provider staff resume it (`state = \"active\"` on its `basalt_tenant`, \
                     or POST /v1/tenants/{{id}}/resume). The server said: {message}"
                ),
            ),
            (401, _) => self.error(
                format!("Authentication failed while {what}"),
                format!(
                    "Basalt rejected the provider's token ({message}). A token that is revoked or expired stays \
                     so: set a valid one in the provider's `token` (or BASALT_TOKEN)."
                ),
            ),
            (422, "quota_exceeded") => self.quota_error(what, message, detail),
            (400 | 422, _) => {
                let mut text = message.clone();
                if let Some(s) = detail.get("suggestions").filter(|s| !s.is_null()) {
                    text.push_str(&format!("\n\nSuggestions: {s}"));
                }
                let field = detail.get("field").and_then(|f| f.as_str());
                if let (Some(field), "invalid_reference") = (field, body.error.code.as_str()) {
                    // Another tenant's object answers exactly like a missing one.
                    text.push_str(&format!(
                        "\n\n`{field}` must name an object that exists and is visible in the tenant this resource \
                         acts in (public, or that tenant's own): another tenant's objects do not exist there."
                    ));
                }
                match field {
                    Some(field) => self.attr_error(&AttrPath::attr(field), summary, text),
                    None => self.error(summary, format!("{text} (HTTP {status}, {})", body.error.code)),
                }
            }
            (409, "already_exists") => self.error(
                summary,
                format!("{message}\n\nIf it should be managed here, bring it under Terraform with `terraform import`."),
            ),
            (s, code) => self.error(summary, format!("{message} (HTTP {s}, {code})")),
        }
    }
}

/// What can go wrong in a resource operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] ClientError),
    #[error("{summary}: {detail}")]
    Attribute { path: AttrPath, summary: String, detail: String },
    /// Entering a tenant's context failed; `from` says which setting named it.
    #[error("cannot act in tenant {tenant:?}: {err}")]
    TenantSwitch { tenant: String, from: super::api::TenantSource, err: ClientError },
    #[error("the provider is not configured (ConfigureProvider was not called or failed)")]
    NotConfigured,
    #[error("unknown resource or data source type {0:?}")]
    UnknownType(String),
    #[error("cannot decode a value from Terraform: {0}")]
    Codec(#[from] CodecError),
    #[error("{0}")]
    Invalid(String),
    /// A long operation ended in failure; `message` is the server's.
    #[error("operation {id} ({kind}) failed: {message} ({code})")]
    OperationFailed { id: uuid::Uuid, kind: String, code: String, message: String },
    /// Polling gave up before the operation ended; it goes on on the server.
    #[error("operation {id} ({kind}) was still {status} after {timeout}")]
    OperationTimeout { id: uuid::Uuid, kind: String, status: String, timeout: String },
    /// Part of the work is done: `state` is the object as it is now (kept in the
    /// Terraform state, tainted after a create), `err` why the rest is not.
    #[error("{err}")]
    Partial { state: Box<super::object::Obj>, err: Box<Error> },
}

impl Error {
    /// An error pointing at one attribute.
    pub fn attr(name: &str, summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Attribute { path: AttrPath::attr(name), summary: summary.into(), detail: detail.into() }
    }

    /// The API answered 404: the object is gone (or belongs to another tenant, or
    /// its tenant is gone, which takes everything inside it along).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api(e) | Error::TenantSwitch { err: e, .. } if e.status() == Some(404))
    }

    /// The API's error code (`last_admin`, `unknown_permission`, ...), if any.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Error::Api(e) | Error::TenantSwitch { err: e, .. } => e.code(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_client::{ErrorBody, ErrorDetail};

    fn api(status: u16, code: &str, details: serde_json::Value) -> Error {
        let error = ErrorDetail { code: code.into(), message: "refused".into(), details };
        Error::Api(ClientError::Api { status, body: ErrorBody { error } })
    }

    fn one(err: &Error) -> pb::Diagnostic {
        let mut d = Diagnostics::default();
        d.from_error("creating basalt_tenant", err);
        let mut v = d.into_vec();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn forbidden_names_the_permission() {
        let d = one(&api(403, "permission_denied", serde_json::json!({"permission": "tenant:create"})));
        assert!(d.summary.starts_with("Permission denied"), "{}", d.summary);
        assert!(d.detail.contains("`tenant:create`"), "{}", d.detail);
    }

    #[test]
    fn locked_says_the_tenant_is_suspended() {
        let d = one(&api(423, "tenant_suspended", serde_json::json!({})));
        assert!(d.summary.contains("Tenant suspended"), "{}", d.summary);
    }

    #[test]
    fn unauthenticated_says_the_token_was_rejected() {
        let d = one(&api(401, "unauthenticated", serde_json::json!({})));
        assert_eq!(d.summary, "Authentication failed while creating basalt_tenant");
        assert!(d.detail.contains("refused") && d.detail.contains("BASALT_TOKEN"), "{}", d.detail);
    }

    #[test]
    fn bad_field_points_at_the_attribute() {
        let d = one(&api(400, "invalid_field", serde_json::json!({"field": "display_name"})));
        assert_eq!(d.attribute, Some(AttrPath::attr("display_name").to_proto()));
    }

    #[test]
    fn unprocessable_field_points_at_the_attribute() {
        let d = one(&api(422, "invalid_reference", serde_json::json!({"field": "cluster_id"})));
        assert_eq!(d.attribute, Some(AttrPath::attr("cluster_id").to_proto()));
    }

    #[test]
    fn an_invalid_reference_explains_visibility() {
        let d = one(&api(422, "invalid_reference", serde_json::json!({"field": "template_id"})));
        assert_eq!(d.attribute, Some(AttrPath::attr("template_id").to_proto()));
        assert!(d.detail.starts_with("refused") && d.detail.contains("`template_id` must name"), "{}", d.detail);
    }

    #[test]
    fn a_missing_tenant_points_at_tenant_id() {
        let err = match api(404, "not_found", serde_json::json!({})) {
            Error::Api(err) => err,
            _ => unreachable!(),
        };
        let e = Error::TenantSwitch { tenant: "acme".into(), from: TenantSource::Attribute, err };
        assert!(e.is_not_found());
        let d = one(&e);
        assert_eq!(d.attribute, Some(AttrPath::attr("tenant_id").to_proto()));
        assert!(d.detail.contains("\"acme\""), "{}", d.detail);
    }

    #[test]
    fn quota_exceeded_names_the_limit_on_the_attribute() {
        let exceeded =
            serde_json::json!({"exceeded": [{"resource": "memory_mib", "limit": 1024, "used": 0, "requested": 4096}]});
        let d = one(&api(422, "quota_exceeded", exceeded));
        assert!(d.summary.starts_with("Quota exceeded"), "{}", d.summary);
        assert!(d.detail.contains("memory_mib: 4096 more requested, 0 of 1024 in use"), "{}", d.detail);
        assert_eq!(d.attribute, Some(AttrPath::attr("memory_mib").to_proto()));
    }

    #[test]
    fn operation_errors_name_the_operation() {
        let id = uuid::Uuid::nil();
        let failed = Error::OperationFailed {
            id,
            kind: "vm.create".into(),
            code: "no_capacity".into(),
            message: "no room".into(),
        };
        let d = one(&failed);
        assert!(d.summary.contains("vm.create failed") && d.detail.contains("no room"), "{d:?}");
        assert!(d.detail.contains(&id.to_string()), "{}", d.detail);
        let late =
            Error::OperationTimeout { id, kind: "vm.resize".into(), status: "running".into(), timeout: "10m".into() };
        let partial = Error::Partial { state: Box::default(), err: Box::new(late) };
        let d = one(&partial);
        assert!(d.summary.starts_with("Timed out") && d.detail.contains(&id.to_string()), "{d:?}");
    }

    #[test]
    fn only_api_404_counts_as_gone() {
        assert!(api(404, "not_found", serde_json::json!({})).is_not_found());
        assert!(!api(403, "permission_denied", serde_json::json!({})).is_not_found());
    }
}
