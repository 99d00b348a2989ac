//! The strict JSON body decoding of `ApiJson` (`extract::decode_json`), for every
//! request type the API accepts (67). The first byte picks the type, the rest is the
//! body. Never panics; every refusal is a 400 `invalid_body` or `invalid_field`
//! (naming the field); what is accepted is one JSON object, and survives a round
//! trip (serialized again, it decodes to the same value). Accepted names and
//! texts also go through the validators the handlers run on them.
#![no_main]

use basalt_client::*;
use basalt_server::api::extract::decode_json;
use basalt_server::validate;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decodes `body` as `T`: accepted means one JSON object; refused means a clear 400.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    match decode_json::<T>(body) {
        Ok(v) => {
            let json: serde_json::Value = serde_json::from_slice(body).expect("accepted, so it is JSON");
            assert!(json.is_object(), "accepted a body that is not an object");
            Some(v)
        }
        Err(e) => {
            assert_eq!(e.status().as_u16(), 400, "{e:?}");
            let body = e.body();
            match body.error.code.as_str() {
                "invalid_body" => {}
                "invalid_field" => assert!(body.error.details["field"].is_string(), "{e:?}"),
                other => panic!("unexpected code {other}: {e:?}"),
            }
            assert!(!body.error.message.is_empty());
            None
        }
    }
}

/// [`decode`], and what was accepted decodes the same once serialized again.
fn check<T: DeserializeOwned + Serialize>(body: &[u8]) -> Option<T> {
    let v = decode::<T>(body)?;
    let again = serde_json::to_vec(&v).expect("serializes");
    let back = decode_json::<T>(&again).expect("a serialized request decodes");
    assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&v).unwrap(), "round trip");
    Some(v)
}

/// The request bodies of the families added after the first 28 (identity
/// depth, VM depth, provider operations, networks and volumes, IP pools,
/// schedules and maintenance, security groups, webhooks): decoded and round-tripped.
const NEWER: &[fn(&[u8])] = &[
    |b| drop(check::<CreateGroup>(b)),
    |b| drop(check::<UpdateGroup>(b)),
    |b| drop(check::<CreateInvitation>(b)),
    |b| drop(check::<AcceptInvitation>(b)),
    |b| drop(check::<UpdateTenantPolicy>(b)),
    |b| drop(check::<CreateServiceAccount>(b)),
    |b| drop(check::<UpdateServiceAccount>(b)),
    |b| drop(check::<CreateServiceAccountToken>(b)),
    |b| drop(check::<UpdateVm>(b)),
    |b| drop(check::<CloneVm>(b)),
    |b| drop(check::<RebuildVm>(b)),
    |b| drop(check::<UpdateSnapshot>(b)),
    |b| drop(check::<AuthzCheck>(b)),
    |b| drop(check::<CreatePlacementGroup>(b)),
    |b| drop(check::<UpdatePlacementGroup>(b)),
    |b| drop(check::<CreateQuotaRequest>(b)),
    |b| drop(check::<DecideQuotaRequest>(b)),
    |b| drop(check::<CreateNotice>(b)),
    |b| drop(check::<UpdateNotice>(b)),
    |b| drop(check::<CreateNetwork>(b)),
    |b| drop(check::<UpdateNetwork>(b)),
    |b| drop(check::<AttachInterface>(b)),
    |b| drop(check::<CreateVolume>(b)),
    |b| drop(check::<UpdateVolume>(b)),
    |b| drop(check::<VolumeAttachment>(b)),
    |b| drop(check::<CreateIpPool>(b)),
    |b| drop(check::<UpdateIpPool>(b)),
    |b| drop(check::<CreateFloatingIp>(b)),
    |b| drop(check::<UpdateFloatingIp>(b)),
    |b| drop(check::<CreateSnapshotSchedule>(b)),
    |b| drop(check::<UpdateSnapshotSchedule>(b)),
    |b| drop(check::<CreateMaintenanceWindow>(b)),
    |b| drop(check::<UpdateMaintenanceWindow>(b)),
    |b| drop(check::<CreateSecurityGroup>(b)),
    |b| drop(check::<UpdateSecurityGroup>(b)),
    |b| drop(check::<CreateSecurityGroupRule>(b)),
    |b| drop(check::<AttachSecurityGroup>(b)),
    |b| drop(check::<CreateWebhook>(b)),
    |b| drop(check::<UpdateWebhook>(b)),
];

/// The validators the handlers apply (results ignored: only panics matter).
fn names(name: &str) {
    let _ = validate::name("name", name);
    let _ = validate::username("username", name);
}
fn text(t: &str) {
    let _ = validate::display_text("display_name", t, 128);
    let _ = validate::email("email", t);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match usize::from(which) % (29 + NEWER.len()) {
        0 => {
            if let Some(v) = check::<CreateTenant>(body) {
                names(&v.name);
                text(v.display_name.as_deref().unwrap_or(""));
            }
        }
        1 => {
            if let Some(v) = check::<UpdateTenant>(body) {
                text(v.display_name.as_deref().unwrap_or(""));
            }
        }
        2 => {
            if let Some(v) = check::<CreateUser>(body) {
                names(&v.username);
                text(v.email.as_deref().unwrap_or(""));
                let _ = basalt_server::auth::password::validate("password", v.password.as_deref().unwrap_or(""));
            }
        }
        3 => drop(check::<UpdateUser>(body)),
        4 => drop(check::<LoginRequest>(body)),
        5 => drop(check::<SwitchTenantRequest>(body)),
        6 => {
            if let Some(v) = check::<CreateApiToken>(body) {
                names(&v.name);
            }
        }
        7 => {
            if let Some(v) = check::<CreateRole>(body) {
                names(&v.name);
                for p in &v.permissions {
                    let _ = basalt_server::authz::Permission::from_name(p);
                    let _ = basalt_server::authz::suggest(p);
                }
            }
        }
        8 => drop(check::<UpdateRole>(body)),
        9 => drop(check::<CreateRoleBinding>(body)),
        10 => {
            if let Some(v) = check::<AuthzCheck>(body) {
                let _ = basalt_server::authz::suggest(&v.permission);
            }
        }
        11 => {
            if let Some(v) = check::<CreateRegion>(body) {
                names(&v.name);
                let _ = basalt_server::api::regions::check_endpoint(&v.endpoint);
            }
        }
        12 => drop(check::<UpdateRegion>(body)),
        13 => {
            if let Some(v) = check::<CreateCluster>(body) {
                names(&v.name);
                for h in &v.hosts {
                    let _ = basalt_server::compute::valid_host_uri(h);
                }
            }
        }
        14 => drop(check::<UpdateCluster>(body)),
        15 => drop(check::<CreateQuota>(body)),
        16 => drop(check::<UpdateQuota>(body)),
        17 => {
            if let Some(v) = check::<CreateTemplate>(body) {
                names(&v.name);
                let _ = basalt_server::api::templates::check_size(Some(v.vcpus), Some(v.memory_mib));
            }
        }
        18 => drop(check::<UpdateTemplate>(body)),
        19 => drop(check::<CreateTemplateFromVm>(body)),
        20 => drop(check::<CreateVm>(body)),
        21 => drop(check::<StopVm>(body)),
        22 => drop(check::<ResizeVm>(body)),
        23 => drop(check::<MigrateVm>(body)),
        24 => drop(check::<CreateSnapshot>(body)),
        // The service calls' bodies (after their signature is checked).
        25 => drop(check::<basalt_server::federation::sync::Registration>(body)),
        26 => drop(check::<basalt_server::federation::sync::SyncPayload>(body)),
        27 => drop(decode::<basalt_server::api::federation::ResolveRequest>(body)),
        i if i >= 28 && i - 28 < NEWER.len() => NEWER[i - 28](body),
        // Any JSON at all: the syntax pass alone.
        // (No round trip: serde_json, without its `float_roundtrip` feature, may
        // read a long decimal one ULP off; no request field is a float.)
        _ => drop(decode::<serde_json::Map<String, serde_json::Value>>(body)),
    }
});
