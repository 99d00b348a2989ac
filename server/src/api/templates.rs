//! `/v1/templates`: a base disk image plus default size. Templates made at system
//! scope are public (every tenant reads them); a tenant's own are private.
//!
//! Only provider staff name files on the hosts (a base image, a kernel and
//! initrd): a tenant naming a path there could clone any file (another tenant's
//! disk), so a tenant's template gets an image only by being made from one of
//! its own stopped VMs (`POST /v1/vms/{id}/template`), whose disk Basalt copies.
//!
//! Provider staff withdraw a public template from tenants
//! (`POST /v1/templates/{id}/unpublish`) and offer it again (`.../publish`). The
//! tenant read policy hides an unpublished public template (migration
//! `20261202000011_provider_ops.sql`), so tenants neither list, read nor build a
//! VM from it (a create names a template it cannot see: 422 `invalid_reference`);
//! VMs made from it keep running and keep their `template_id`.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use basalt_client::{CreateTemplate, CreateTemplateFromVm, Page, Template, UpdateTemplate};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::crud;
use super::extract::{check_version, ApiJson, ApiQuery, IdempotencyKey, IfMatch, PageQuery, PathId, Req};
use crate::audit::Event;
use crate::db::Tx;
use crate::error::{ApiError, ApiResult};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, name, vcpus, memory_mib, disk_gib, image, kernel, initrd, cmdline, source_vm_id,
     published, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct TemplateRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    name: String,
    vcpus: i32,
    memory_mib: i64,
    disk_gib: i32,
    image: String,
    kernel: String,
    initrd: String,
    cmdline: String,
    source_vm_id: Option<Uuid>,
    published: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TemplateRow> for Template {
    fn from(r: TemplateRow) -> Template {
        Template {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            vcpus: r.vcpus,
            memory_mib: r.memory_mib,
            disk_gib: r.disk_gib,
            image: r.image,
            kernel: r.kernel,
            initrd: r.initrd,
            cmdline: r.cmdline,
            source_vm_id: r.source_vm_id,
            published: r.published,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// vCPU and memory bounds shared by templates and VMs.
pub fn check_size(vcpus: Option<i32>, memory_mib: Option<i64>) -> ApiResult<()> {
    if vcpus.is_some_and(|v| !(1..=256).contains(&v)) {
        return Err(ApiError::bad_field("vcpus", "vcpus must be 1 to 256"));
    }
    if memory_mib.is_some_and(|m| !(64..=1_048_576).contains(&m)) {
        return Err(ApiError::bad_field("memory_mib", "memory_mib must be 64 to 1048576"));
    }
    Ok(())
}

/// A path on the hosts: empty, or absolute without `..`.
fn check_host_path(field: &str, path: &str) -> ApiResult<()> {
    let ok = path.is_empty()
        || (path.starts_with('/')
            && path.len() <= 1024
            && !path.split('/').any(|part| part == "..")
            && !path.bytes().any(|b| b.is_ascii_control()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            field,
            format!("{field} must be an absolute path (no '..') of at most 1024 characters"),
        ))
    }
}

/// Image and boot paths name files on the hosts: provider templates only.
fn check_boot(tenant: Option<Uuid>, body: &CreateTemplate) -> ApiResult<()> {
    for (field, value) in [("image", &body.image), ("kernel", &body.kernel), ("initrd", &body.initrd)] {
        let value = value.as_deref().unwrap_or("");
        check_host_path(field, value)?;
        if tenant.is_some() && !value.is_empty() {
            return Err(ApiError::Unprocessable {
                code: "image_not_allowed",
                message: "only provider (public) templates name files on the hosts".into(),
                details: json!({ "field": field }),
            });
        }
    }
    if body.kernel.as_deref().unwrap_or("").is_empty() != body.initrd.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::bad_field("initrd", "kernel and initrd go together"));
    }
    let cmdline = body.cmdline.as_deref().unwrap_or("");
    if cmdline.len() > 1024 || cmdline.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
        return Err(ApiError::bad_field("cmdline", "cmdline must be at most 1024 printable ASCII characters"));
    }
    if !cmdline.is_empty() && body.kernel.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::bad_field("cmdline", "cmdline needs a kernel"));
    }
    Ok(())
}

/// A template visible in `tx` (the context's own or a public one).
pub async fn fetch(tx: &mut Tx, id: Uuid) -> ApiResult<Template> {
    crud::fetch::<TemplateRow, _>(tx, "templates", COLUMNS, id, false, "template").await
}

/// The context's own template, locked for a change; a public one is read-only inside a tenant.
async fn fetch_own(req: &Req, tx: &mut Tx, id: Uuid) -> ApiResult<Template> {
    let seen = fetch(tx, id).await?;
    if seen.tenant_id != req.principal.context.tenant() {
        return Err(ApiError::Forbidden("public templates belong to the provider and are read-only here".into()));
    }
    crud::fetch::<TemplateRow, _>(tx, "templates", COLUMNS, id, true, "template").await
}

/// List the context's templates and the public ones.
#[utoipa::path(get, operation_id = "templates_list", path = "/v1/templates", tag = "compute", params(("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Template>)), security(("bearer" = [])))]
pub async fn list(req: Req, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<Template>>> {
    crud::list::<TemplateRow, Template>(&req, &q, "templates", COLUMNS).await
}

/// Create a template: public at system scope, private inside a tenant. Accepts `Idempotency-Key`.
#[utoipa::path(post, operation_id = "templates_create", path = "/v1/templates", tag = "compute", request_body = CreateTemplate,
    responses((status = 201, body = Template), (status = 400), (status = 409), (status = 422)), security(("bearer" = [])))]
pub async fn create(req: Req, key: IdempotencyKey, ApiJson(body): ApiJson<CreateTemplate>) -> ApiResult<Response> {
    let tenant = req.check_body_tenant(body.tenant_id)?;
    validate::name("name", &body.name)?;
    check_size(Some(body.vcpus), Some(body.memory_mib))?;
    let disk_gib = body.disk_gib.unwrap_or(10);
    if !(1..=65536).contains(&disk_gib) {
        return Err(ApiError::bad_field("disk_gib", "disk_gib must be 1 to 65536"));
    }
    check_boot(tenant, &body)?;
    let b = body.clone();
    crud::create(
        req.tx()?,
        &req,
        &key,
        &body,
        move |tx| {
            Box::pin(async move {
                if let Some(region) = &b.region {
                    // Templates live in the region that serves this API; naming
                    // another one is a mistake (the controller routes by it).
                    if super::regions::resolve(tx, region).await?.is_none() {
                        return Err(ApiError::Unprocessable {
                            code: "invalid_reference",
                            message: format!("no region named {region} here"),
                            details: serde_json::json!({ "field": "region" }),
                        });
                    }
                }
                let row: TemplateRow = sqlx::query_as(&format!(
                    "INSERT INTO templates (id, tenant_id, name, vcpus, memory_mib, disk_gib, image, kernel, initrd, cmdline)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
                ))
                .bind(Uuid::now_v7())
                .bind(tenant)
                .bind(b.name)
                .bind(b.vcpus)
                .bind(b.memory_mib)
                .bind(disk_gib)
                .bind(b.image.unwrap_or_default())
                .bind(b.kernel.unwrap_or_default())
                .bind(b.initrd.unwrap_or_default())
                .bind(b.cmdline.unwrap_or_default())
                .fetch_one(&mut **tx)
                .await?;
                Ok(Template::from(row))
            })
        },
        |t| Event::new("template.create", "template", Some(t.id)).details(json!({ "after": t })),
    )
    .await
}

/// Read a template.
#[utoipa::path(get, operation_id = "templates_get", path = "/v1/templates/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Template), (status = 404)), security(("bearer" = [])))]
pub async fn get(req: Req, PathId(id): PathId) -> ApiResult<Json<Template>> {
    crud::get::<TemplateRow, Template>(&req, "templates", COLUMNS, id, "template").await
}

/// Change a template's default size (VMs made from it keep theirs).
#[utoipa::path(patch, operation_id = "templates_update", path = "/v1/templates/{id}", tag = "compute", params(("id" = Uuid, Path)),
    request_body = UpdateTemplate, responses((status = 200, body = Template), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    req: Req,
    PathId(id): PathId,
    if_match: IfMatch,
    ApiJson(body): ApiJson<UpdateTemplate>,
) -> ApiResult<Json<Template>> {
    check_size(body.vcpus, body.memory_mib)?;
    let mut tx = req.tx()?;
    let current = fetch_own(&req, &mut tx, id).await?;
    check_version(&if_match, current.version)?;
    let row: TemplateRow = sqlx::query_as(&format!(
        "UPDATE templates SET vcpus = COALESCE($2, vcpus), memory_mib = COALESCE($3, memory_mib),
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(body.vcpus)
    .bind(body.memory_mib)
    .fetch_one(&mut *tx)
    .await?;
    crud::updated(tx, &req, "template.update", "template", id, &current, Template::from(row)).await
}

/// Delete a template. VMs made from it keep their disks (linked clones of the
/// base image, which Basalt never deletes).
#[utoipa::path(delete, operation_id = "templates_delete", path = "/v1/templates/{id}", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn delete(req: Req, PathId(id): PathId) -> ApiResult<StatusCode> {
    let mut tx = req.tx()?;
    let current = fetch_own(&req, &mut tx, id).await?;
    crud::deleted(tx, &req, "templates", "template.delete", "template", id, &current).await
}

/// Make a private template from a stopped VM: its disk (if any) is copied,
/// flattened, into a new base image under `<state dir>/templates/`.
#[utoipa::path(post, operation_id = "vms_make_template", path = "/v1/vms/{id}/template", tag = "compute", params(("id" = Uuid, Path)),
    request_body = CreateTemplateFromVm,
    responses((status = 201, body = Template), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn from_vm(
    req: Req,
    PathId(vm): PathId,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<CreateTemplateFromVm>,
) -> ApiResult<Response> {
    validate::name("name", &body.name)?;
    let mut tx = req.tx()?;
    let vm = super::vms::lock_for(&req, &mut tx, vm, crate::authz::Permission::VmRead).await?;
    if vm.state() != basalt_client::VmState::Stopped {
        return Err(ApiError::Conflict {
            code: "invalid_vm_state",
            message: "stop the VM first: a template is made from a stopped VM".into(),
        });
    }
    let id = Uuid::now_v7();
    let image = match &vm.disk_path {
        Some(disk) => {
            let target = req.state.compute.storage_dir.join("templates").join(format!("{id}.qcow2"));
            crate::compute::disks::flatten(std::path::Path::new(disk), &target).await.map_err(ApiError::internal)?;
            target.to_string_lossy().into_owned()
        }
        None => String::new(),
    };
    let (source, boot) = (vm.id, vm.boot());
    let (vcpus, memory_mib, name) = (vm.vcpus, vm.memory_mib, body.name.clone());
    crud::create(
        tx,
        &req,
        &key,
        &(source, &body),
        move |tx| {
            Box::pin(async move {
                let row: TemplateRow = sqlx::query_as(&format!(
                    "INSERT INTO templates (id, tenant_id, name, vcpus, memory_mib, disk_gib, image, kernel, initrd,
                                            cmdline, source_vm_id)
                     VALUES ($1, basalt_tenant(), $2, $3, $4, 10, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
                ))
                .bind(id)
                .bind(name)
                .bind(vcpus)
                .bind(memory_mib)
                .bind(image)
                .bind(boot.0)
                .bind(boot.1)
                .bind(boot.2)
                .bind(source)
                .fetch_one(&mut **tx)
                .await?;
                Ok(Template::from(row))
            })
        },
        |t| Event::new("template.create", "template", Some(t.id)).details(json!({ "after": t })),
    )
    .await
}

/// Withdraw a public template from tenants (system scope): they no longer see
/// it or build VMs from it; VMs made from it are untouched.
#[utoipa::path(post, operation_id = "templates_unpublish", path = "/v1/templates/{id}/unpublish", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Template), (status = 404)), security(("bearer" = [])))]
pub async fn unpublish(req: Req, PathId(id): PathId) -> ApiResult<Json<Template>> {
    set_published(req, id, false).await
}

/// Offer a withdrawn public template to tenants again (system scope).
#[utoipa::path(post, operation_id = "templates_publish", path = "/v1/templates/{id}/publish", tag = "compute", params(("id" = Uuid, Path)),
    responses((status = 200, body = Template), (status = 404)), security(("bearer" = [])))]
pub async fn publish(req: Req, PathId(id): PathId) -> ApiResult<Json<Template>> {
    set_published(req, id, true).await
}

/// At system scope RLS shows public templates only, so `id` is one of them.
async fn set_published(req: Req, id: Uuid, published: bool) -> ApiResult<Json<Template>> {
    let mut tx = req.tx()?;
    let current: Template = crud::fetch::<TemplateRow, _>(&mut tx, "templates", COLUMNS, id, true, "template").await?;
    if current.published == published {
        tx.commit().await?;
        return Ok(Json(current));
    }
    let row: TemplateRow = sqlx::query_as(&format!(
        "UPDATE templates SET published = $2, version = version + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(published)
    .fetch_one(&mut *tx)
    .await?;
    let action = if published { "template.publish" } else { "template.unpublish" };
    crud::updated(tx, &req, action, "template", id, &current, Template::from(row)).await
}
