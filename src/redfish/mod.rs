//! Redfish client: discovery probes, authenticated sessions with guaranteed logout, and hardware
//! inventory. Vendor differences stay inside this module.
//!
//! - [`probe`]: is there a BMC at this address and port (no credentials, bounded time)?
//! - [`BmcClient`]: talks to one BMC over HTTPS pinned to the certificate seen at discovery.
//! - [`BmcClient::login`] / [`BmcClient::with_session`]: try credentials once each, always log out.
//! - [`read_inventory`]: systems, processors, NICs, storage, firmware as plain structs.
//! - [`Session::send_json`]: actions and changes (POST/PATCH) with the BMC's error message.
//! - [`PowerAction`], [`find_system`], [`reset`], [`power_state`]: power control.
//! - [`find_cd`], [`insert`], [`eject`], [`boot_once_from_cd`]: booting from virtual media.

mod action;
mod client;
mod error;
mod exchange;
mod http1;
mod inventory;
mod journal;
mod origin;
mod power;
mod probe;
mod session;
mod tls;
mod update;
mod virtual_media;

pub use action::Reply;
pub use client::{
    BmcClient, BmcClientConfig, DEFAULT_REQUEST_TIMEOUT, LOGOUT_TIMEOUT, RESOURCE_CAP,
};
pub use error::RedfishError;
pub use inventory::{
    infer_firmware_type, read_inventory, DriveInfo, EthernetInterfaceInfo, FirmwareInfo,
    FirmwareType, Inventory, ProcessorInfo, StorageControllerInfo, StorageInfo, SystemInventory,
    VolumeInfo, INVENTORY_CONCURRENCY,
};
pub use journal::{Journal, JournalError, SessionJournal};
pub use origin::same_origin_ref;
pub use power::{
    find_system, pick_system, plan_reset, power_state, reset, systems, PowerAction, SystemPower,
};
pub use probe::{
    parse_service_root, probe, BmcInfo, ProbeOptions, ProbeOutcome, Scheme, ServiceRoot,
    ServiceRootError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PROBE_TIMEOUT, SERVICE_ROOT_CAP,
};
pub use session::Session;
pub use tls::{cert_sha256, normalize_fingerprint, CaBundle};
pub use update::{
    firmware_target, multipart_push, simple_update, task_progress, update_service, TaskProgress,
    UpdateService, TASK_POLL,
};
pub use virtual_media::{boot_once_from_cd, cd_slot, eject, find_cd, insert, read_slot, CdSlot};
