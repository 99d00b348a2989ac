//! The `tfplugin6.Provider` gRPC service over a [`Registry`] of resources and data
//! sources: each RPC decodes its values against the schema, calls the framework
//! rules or the resource, and encodes the answer with diagnostics. Failures are
//! always diagnostics, never gRPC errors, so Terraform can show them in context.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use basalt_client::RequestOptions;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::diag::{Diagnostics, Error};
use super::object::Obj;
use super::plan;
use super::resource::{Api, DataSource, Resource};
use super::schema::{PlanModifier, Schema};
use super::timeouts;
use crate::codec;
use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_server::Provider;
use crate::value::Value;

/// Turns the provider block into an [`Api`], or explains why not.
pub type Configure = fn(&Obj, &mut Diagnostics) -> Option<Api>;

/// Everything the provider offers.
pub struct Registry {
    pub provider_schema: Schema,
    pub configure: Configure,
    pub resources: BTreeMap<&'static str, Arc<dyn Resource>>,
    pub data_sources: BTreeMap<&'static str, Arc<dyn DataSource>>,
}

impl Registry {
    pub fn new(provider_schema: Schema, configure: Configure) -> Self {
        Registry { provider_schema, configure, resources: BTreeMap::new(), data_sources: BTreeMap::new() }
    }

    pub fn resource(mut self, r: impl Resource + 'static) -> Self {
        self.resources.insert(r.type_name(), Arc::new(r));
        self
    }

    pub fn data_source(mut self, d: impl DataSource + 'static) -> Self {
        self.data_sources.insert(d.type_name(), Arc::new(d));
        self
    }

    fn find_resource(&self, name: &str) -> Result<Arc<dyn Resource>, Error> {
        self.resources.get(name).cloned().ok_or_else(|| Error::UnknownType(name.to_string()))
    }

    fn find_data_source(&self, name: &str) -> Result<Arc<dyn DataSource>, Error> {
        self.data_sources.get(name).cloned().ok_or_else(|| Error::UnknownType(name.to_string()))
    }
}

/// The gRPC service: the registry plus the API handle set by `ConfigureProvider`.
pub struct ProviderService {
    registry: Arc<Registry>,
    api: RwLock<Option<Arc<Api>>>,
    /// Terraform (1.6+) reads refined unknown values: plan `NeverNull`
    /// attributes as "not null". Learnt from `ConfigureProvider`.
    refinements: AtomicBool,
}

impl ProviderService {
    pub fn new(registry: Registry) -> Self {
        ProviderService { registry: Arc::new(registry), api: RwLock::new(None), refinements: AtomicBool::new(false) }
    }

    fn api(&self) -> Result<Arc<Api>, Error> {
        let guard = self.api.read().map_err(|_| Error::NotConfigured)?;
        guard.clone().ok_or(Error::NotConfigured)
    }
}

fn decode(dv: Option<&pb::DynamicValue>, schema: &Schema) -> Result<Option<Obj>, Error> {
    let bytes = dv.map(|d| d.msgpack.as_slice()).unwrap_or_default();
    Obj::from_value(codec::decode(bytes, &schema.object_type())?)
}

fn encode(obj: Option<Obj>, schema: &Schema) -> Result<pb::DynamicValue, Error> {
    let v = obj.map_or(Value::Null, Obj::into_value);
    Ok(pb::DynamicValue { msgpack: codec::encode(&v, &schema.object_type())?, json: Vec::new() })
}

/// A planned state: like [`encode`], with the unknown `NeverNull` attributes
/// refined as "not null" when Terraform understands refinements.
fn encode_planned(obj: Option<Obj>, schema: &Schema, refinements: bool) -> Result<pb::DynamicValue, Error> {
    let not_null: Vec<&str> = match refinements {
        true => schema.attributes.iter().filter(|a| a.has(PlanModifier::NeverNull)).map(|a| a.name).collect(),
        false => Vec::new(),
    };
    let v = obj.map_or(Value::Null, Obj::into_value);
    Ok(pb::DynamicValue { msgpack: codec::encode_refined(&v, &schema.object_type(), &not_null)?, json: Vec::new() })
}

/// Whether a Terraform (or OpenTofu) version reads refined unknowns: 1.6 and later.
fn reads_refinements(terraform_version: &str) -> bool {
    let mut parts = terraform_version.trim_start_matches('v').split('.').map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 6),
        _ => false,
    }
}

/// The key that makes a create safe to retry: the same planned instance gets the
/// same key, so a create whose answer was lost is answered again, not repeated.
/// The `timeouts` block is left out: it is never sent, and raising a timeout after
/// one ran out must resume the same create, not start another.
fn idempotency_key(type_name: &str, planned: &Obj, schema: &Schema) -> String {
    let mut sent = planned.clone();
    sent.0.remove(timeouts::BLOCK);
    let bytes = codec::encode(&sent.into_value(), &schema.object_type()).unwrap_or_default();
    let digest = Sha256::new().chain_update(type_name.as_bytes()).chain_update(&bytes).finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("terraform-{type_name}-{hex}")
}

/// Creates, then reads back. A key replayed for an object deleted since (destroy
/// and re-create of the same configuration within the server's key lifetime)
/// answers the old, gone object: then create again under a fresh key.
async fn create(res: &dyn Resource, api: &Api, planned: &Obj) -> Result<Obj, Error> {
    let key = idempotency_key(res.type_name(), planned, &res.schema());
    let opts = RequestOptions { idempotency_key: Some(key.clone()), ..Default::default() };
    let created = res.create(api, planned, &opts).await?;
    match res.read(api, &created).await {
        Err(e) if e.is_not_found() => {
            let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
            let opts = RequestOptions { idempotency_key: Some(format!("{key}-{nanos}")), ..Default::default() };
            res.create(api, planned, &opts).await
        }
        other => other,
    }
}

/// The state after an apply must be wholly known; anything else is a provider bug
/// that Terraform would report less clearly.
fn check_known(type_name: &str, state: &Obj, diags: &mut Diagnostics) {
    for (k, v) in &state.0 {
        if !v.is_wholly_known() {
            diags.error("Provider bug", format!("{type_name}.{k} is still unknown after apply"));
        }
    }
}

#[tonic::async_trait]
impl Provider for ProviderService {
    async fn get_metadata(
        &self,
        _req: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        let r = &self.registry;
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: Vec::new(),
            data_sources: r
                .data_sources
                .keys()
                .map(|n| pb::get_metadata::DataSourceMetadata { type_name: n.to_string() })
                .collect(),
            resources: r
                .resources
                .keys()
                .map(|n| pb::get_metadata::ResourceMetadata { type_name: n.to_string() })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        let r = &self.registry;
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(r.provider_schema.to_proto()),
            resource_schemas: r.resources.iter().map(|(n, x)| (n.to_string(), x.schema().to_proto())).collect(),
            data_source_schemas: r.data_sources.iter().map(|(n, x)| (n.to_string(), x.schema().to_proto())).collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let mut diags = Diagnostics::default();
        let schema = &self.registry.provider_schema;
        match decode(req.get_ref().config.as_ref(), schema) {
            Ok(Some(config)) => plan::validate(schema, &config, &mut diags),
            Ok(None) => {}
            Err(e) => diags.from_error("reading the provider configuration", &e),
        }
        Ok(Response::new(pb::validate_provider_config::Response { diagnostics: diags.into_vec() }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::default();
        let checked = self.registry.find_resource(&req.type_name).and_then(|res| {
            let schema = res.schema();
            if let Some(config) = decode(req.config.as_ref(), &schema)? {
                plan::validate(&schema, &config, &mut diags);
                res.validate(&config, &mut diags);
            }
            Ok(())
        });
        if let Err(e) = checked {
            diags.from_error(&format!("validating {}", req.type_name), &e);
        }
        Ok(Response::new(pb::validate_resource_config::Response { diagnostics: diags.into_vec() }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::default();
        let checked = self.registry.find_data_source(&req.type_name).and_then(|ds| {
            let schema = ds.schema();
            if let Some(config) = decode(req.config.as_ref(), &schema)? {
                plan::validate(&schema, &config, &mut diags);
                ds.validate(&config, &mut diags);
            }
            Ok(())
        });
        if let Err(e) = checked {
            diags.from_error(&format!("validating data source {}", req.type_name), &e);
        }
        Ok(Response::new(pb::validate_data_resource_config::Response { diagnostics: diags.into_vec() }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::default();
        let upgraded =
            self.upgrade(&req).map_err(|e| diags.from_error(&format!("upgrading {} state", req.type_name), &e));
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: upgraded.ok(),
            diagnostics: diags.into_vec(),
        }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _req: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        // No resource declares an identity yet; an empty answer tells Terraform so.
        Ok(Response::new(pb::get_resource_identity_schemas::Response::default()))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let mut diags = Diagnostics::default();
        self.refinements.store(reads_refinements(&req.get_ref().terraform_version), Ordering::Relaxed);
        match decode(req.get_ref().config.as_ref(), &self.registry.provider_schema) {
            Ok(config) => {
                let api = (self.registry.configure)(&config.unwrap_or_default(), &mut diags);
                if let (Some(api), Ok(mut slot)) = (api, self.api.write()) {
                    *slot = Some(Arc::new(api));
                }
            }
            Err(e) => diags.from_error("reading the provider configuration", &e),
        }
        Ok(Response::new(pb::configure_provider::Response { diagnostics: diags.into_vec() }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::default();
        let new_state = self.read(&req, &mut diags).await.unwrap_or_else(|e| {
            diags.from_error(&format!("reading {}", req.type_name), &e);
            req.current_state.clone()
        });
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics: diags.into_vec(),
            private: req.private,
            deferred: None,
            new_identity: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::default();
        let planned =
            self.plan(&req, &mut diags).await.map_err(|e| diags.from_error(&format!("planning {}", req.type_name), &e));
        let (planned_state, requires_replace) = planned.unwrap_or_default();
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state,
            requires_replace,
            planned_private: req.prior_private,
            diagnostics: diags.into_vec(),
            ..Default::default()
        }))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::default();
        let new_state = self.apply(&req, &mut diags).await.unwrap_or_else(|e| {
            diags.from_error(&format!("applying {}", req.type_name), &e);
            // Nothing changed that we know of: the prior state stands.
            req.prior_state.clone()
        });
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private: req.planned_private,
            diagnostics: diags.into_vec(),
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::default();
        let imported =
            self.import(&req).await.map_err(|e| diags.from_error(&format!("importing {}", req.type_name), &e));
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: imported.ok().into_iter().collect(),
            diagnostics: diags.into_vec(),
            deferred: None,
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::default();
        let state = self.read_data(&req).await.map_err(|e| diags.from_error(&format!("reading {}", req.type_name), &e));
        Ok(Response::new(pb::read_data_source::Response {
            state: state.ok(),
            diagnostics: diags.into_vec(),
            deferred: None,
        }))
    }

    async fn stop_provider(
        &self,
        _req: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        // Requests are short HTTP calls with their own timeouts; nothing to interrupt.
        Ok(Response::new(pb::stop_provider::Response::default()))
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities { plan_destroy: true, get_provider_schema_optional: true, ..Default::default() }
}

/// The RPC bodies, kept apart from the gRPC plumbing above.
impl ProviderService {
    fn upgrade(&self, req: &pb::upgrade_resource_state::Request) -> Result<pb::DynamicValue, Error> {
        let schema = self.registry.find_resource(&req.type_name)?.schema();
        let raw = req.raw_state.as_ref().map(|r| r.json.as_slice()).unwrap_or_default();
        if raw.is_empty() {
            return Err(Error::Invalid("only JSON state is supported (no legacy flatmap state)".into()));
        }
        let v = codec::decode_json(raw, &schema.object_type())?;
        Ok(pb::DynamicValue { msgpack: codec::encode(&v, &schema.object_type())?, json: Vec::new() })
    }

    async fn read(
        &self,
        req: &pb::read_resource::Request,
        diags: &mut Diagnostics,
    ) -> Result<Option<pb::DynamicValue>, Error> {
        let res = self.registry.find_resource(&req.type_name)?;
        let schema = res.schema();
        let Some(state) = decode(req.current_state.as_ref(), &schema)? else {
            return Ok(req.current_state.clone());
        };
        match res.read(&*self.api()?, &state).await {
            Ok(fresh) => Ok(Some(encode(Some(fresh), &schema)?)),
            Err(e) if e.is_not_found() => {
                diags.warning(
                    format!("{} no longer exists", req.type_name),
                    format!(
                        "{} {} was deleted outside Terraform (or is no longer visible to this token); it is removed \
                         from the state and the next plan creates it again.",
                        req.type_name,
                        state.str("id").unwrap_or("?")
                    ),
                );
                Ok(Some(encode(None, &schema)?))
            }
            Err(e) => Err(e),
        }
    }

    async fn plan(
        &self,
        req: &pb::plan_resource_change::Request,
        diags: &mut Diagnostics,
    ) -> Result<(Option<pb::DynamicValue>, Vec<pb::AttributePath>), Error> {
        let res = self.registry.find_resource(&req.type_name)?;
        let schema = res.schema();
        let prior = decode(req.prior_state.as_ref(), &schema)?;
        let proposed = decode(req.proposed_new_state.as_ref(), &schema)?;
        let config = decode(req.config.as_ref(), &schema)?;
        let planned = plan::plan(&schema, prior.as_ref(), proposed, config.as_ref());
        if let Some(state) = &planned.state {
            res.check_plan(&*self.api()?, prior.as_ref(), state, diags).await;
        }
        let replace = planned.requires_replace.iter().map(|p| p.to_proto()).collect();
        let refinements = self.refinements.load(Ordering::Relaxed);
        Ok((Some(encode_planned(planned.state, &schema, refinements)?), replace))
    }

    async fn apply(
        &self,
        req: &pb::apply_resource_change::Request,
        diags: &mut Diagnostics,
    ) -> Result<Option<pb::DynamicValue>, Error> {
        let res = self.registry.find_resource(&req.type_name)?;
        let schema = res.schema();
        let prior = decode(req.prior_state.as_ref(), &schema)?;
        let planned = decode(req.planned_state.as_ref(), &schema)?;
        let api = self.api()?;
        let new_state = match (prior, planned) {
            (Some(prior), None) => match res.delete(&api, &prior).await {
                Err(e) if e.api_code() == Some("last_admin") => {
                    // Basalt keeps the last administrator of a tenant (or of the
                    // system) until the tenant itself goes; refusing here would make
                    // every onboarding module impossible to destroy.
                    diags.warning(
                        format!("{} kept by Basalt: last administrator", req.type_name),
                        format!(
                            "{} {} is the last administrator of its tenant, which Basalt never removes; it is \
                             dropped from the Terraform state and stays until its tenant is deleted.",
                            req.type_name,
                            prior.str("id").unwrap_or("?")
                        ),
                    );
                    None
                }
                Err(e) if !e.is_not_found() => {
                    // Still there as far as we know: the prior state stands.
                    diags.from_error(&format!("deleting {}", req.type_name), &e);
                    Some(prior)
                }
                _ => None,
            },
            (None, Some(planned)) => match create(&*res, &api, &planned).await {
                Ok(s) => Some(s),
                Err(Error::Partial { state, err }) => {
                    // Created but not finished: Terraform keeps it, tainted.
                    diags.from_error(&format!("creating {}", req.type_name), &err);
                    Some(*state)
                }
                Err(e) => {
                    // Nothing was created: the new state is "no object".
                    diags.from_error(&format!("creating {}", req.type_name), &e);
                    None
                }
            },
            (Some(prior), Some(planned)) => match res.update(&api, &prior, &planned).await {
                Ok(s) => Some(s),
                Err(Error::Partial { state, err }) => {
                    diags.from_error(&format!("updating {}", req.type_name), &err);
                    Some(*state)
                }
                Err(e) => {
                    // Nothing changed that we know of: the prior state stands.
                    diags.from_error(&format!("updating {}", req.type_name), &e);
                    Some(prior)
                }
            },
            (None, None) => None,
        };
        if let Some(s) = &new_state {
            check_known(&req.type_name, s, diags);
        }
        Ok(Some(encode(new_state, &schema)?))
    }

    async fn import(
        &self,
        req: &pb::import_resource_state::Request,
    ) -> Result<pb::import_resource_state::ImportedResource, Error> {
        let res = self.registry.find_resource(&req.type_name)?;
        let state = res.import(&*self.api()?, &req.id).await?;
        Ok(pb::import_resource_state::ImportedResource {
            type_name: req.type_name.clone(),
            state: Some(encode(Some(state), &res.schema())?),
            private: Vec::new(),
            identity: None,
        })
    }

    async fn read_data(&self, req: &pb::read_data_source::Request) -> Result<pb::DynamicValue, Error> {
        let ds = self.registry.find_data_source(&req.type_name)?;
        let schema = ds.schema();
        let config = decode(req.config.as_ref(), &schema)?.unwrap_or_default();
        let state = ds.read(&*self.api()?, &config).await?;
        encode(Some(state), &schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, Mode};

    #[test]
    fn refinements_from_terraform_1_6() {
        assert!(reads_refinements("1.15.5") && reads_refinements("1.6.0") && reads_refinements("2.0.0"));
        assert!(!reads_refinements("1.5.7") && !reads_refinements("0.15.5") && !reads_refinements(""));
    }

    #[test]
    fn a_planned_id_is_unknown_but_not_null() {
        let schema = Schema::new("t", vec![Attribute::id(), Attribute::string("state", Mode::Computed)]);
        let mut planned = Obj::default();
        planned.set("id", Value::Unknown).set("state", Value::Unknown);
        let refined = encode_planned(Some(planned.clone()), &schema, true).expect("encode").msgpack;
        assert_eq!(refined.windows(6).filter(|w| *w == [0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2]).count(), 1, "only id");
        let plain = encode_planned(Some(planned), &schema, false).expect("encode").msgpack;
        assert!(!plain.windows(2).any(|w| w == [0xc7, 0x03]), "older Terraform gets plain unknowns");
    }
}
