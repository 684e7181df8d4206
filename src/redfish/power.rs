//! Power control: the six actions the API offers, the `ComputerSystem.Reset` types that carry
//! them out on a BMC (the nearest equivalent where the BMC's `ResetType@Redfish.AllowableValues`
//! lacks one), finding a server's ComputerSystem, and reading `PowerState`.

use serde_json::{json, Value};

use super::error::RedfishError;
use super::session::Session;

/// A power action of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Power on.
    On,
    /// Cut power at once.
    ForceOff,
    /// Ask the OS to shut down.
    GracefulShutdown,
    /// Ask the OS to restart.
    GracefulRestart,
    /// Restart at once.
    ForceRestart,
    /// Power off, then on.
    PowerCycle,
}

impl PowerAction {
    /// Every action, by its wire name.
    pub const NAMES: &'static [&'static str] = &[
        "On",
        "ForceOff",
        "GracefulShutdown",
        "GracefulRestart",
        "ForceRestart",
        "PowerCycle",
    ];

    /// The action named `s`.
    pub fn parse(s: &str) -> Option<PowerAction> {
        Some(match s {
            "On" => PowerAction::On,
            "ForceOff" => PowerAction::ForceOff,
            "GracefulShutdown" => PowerAction::GracefulShutdown,
            "GracefulRestart" => PowerAction::GracefulRestart,
            "ForceRestart" => PowerAction::ForceRestart,
            "PowerCycle" => PowerAction::PowerCycle,
            _ => return None,
        })
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "On",
            PowerAction::ForceOff => "ForceOff",
            PowerAction::GracefulShutdown => "GracefulShutdown",
            PowerAction::GracefulRestart => "GracefulRestart",
            PowerAction::ForceRestart => "ForceRestart",
            PowerAction::PowerCycle => "PowerCycle",
        }
    }

    /// The `PowerState` the server settles on afterwards (`On` or `Off`).
    pub fn target_state(self) -> &'static str {
        match self {
            PowerAction::ForceOff | PowerAction::GracefulShutdown => "Off",
            _ => "On",
        }
    }

    /// Restarts are always sent; `On`, `ForceOff` and `GracefulShutdown` are not sent to a
    /// server already in their target state.
    pub fn is_restart(self) -> bool {
        matches!(
            self,
            PowerAction::GracefulRestart | PowerAction::ForceRestart | PowerAction::PowerCycle
        )
    }
}

/// The reset types to send, in order, for `action` on a BMC that allows `allowed` (None or
/// empty: the BMC does not say, so the action's own type is sent). Each candidate list is in
/// order of preference; a two-step candidate (`ForceOff` then `On`) waits for `Off` between
/// the steps. None when the BMC offers nothing equivalent.
pub fn plan_reset(action: PowerAction, allowed: Option<&[String]>) -> Option<Vec<&'static str>> {
    let allowed = match allowed {
        Some(a) if !a.is_empty() => a,
        _ => return Some(vec![action.as_str()]),
    };
    let has = |t: &str| allowed.iter().any(|a| a == t);
    let on = ["On", "ForceOn", "PushPowerButton"]
        .into_iter()
        .find(|t| has(t));
    let single = |cands: &[&'static str]| cands.iter().copied().find(|t| has(t));
    let off_then_on = |offs: &[&'static str]| -> Option<Vec<&'static str>> {
        let off = single(offs)?;
        Some(vec![off, on?])
    };
    match action {
        PowerAction::On => on.map(|t| vec![t]),
        PowerAction::ForceOff => {
            single(&["ForceOff", "GracefulShutdown", "PushPowerButton"]).map(|t| vec![t])
        }
        PowerAction::GracefulShutdown => {
            single(&["GracefulShutdown", "ForceOff", "PushPowerButton"]).map(|t| vec![t])
        }
        PowerAction::GracefulRestart => single(&["GracefulRestart", "ForceRestart"])
            .map(|t| vec![t])
            .or_else(|| off_then_on(&["GracefulShutdown", "ForceOff"])),
        PowerAction::ForceRestart => single(&["ForceRestart", "PowerCycle", "GracefulRestart"])
            .map(|t| vec![t])
            .or_else(|| off_then_on(&["ForceOff", "GracefulShutdown"])),
        PowerAction::PowerCycle => single(&["PowerCycle"])
            .map(|t| vec![t])
            .or_else(|| off_then_on(&["ForceOff", "GracefulShutdown"]))
            .or_else(|| single(&["ForceRestart"]).map(|t| vec![t])),
    }
}

/// A ComputerSystem as power control needs it.
#[derive(Debug, Clone)]
pub struct SystemPower {
    /// Its `@odata.id`.
    pub path: String,
    /// `UUID`.
    pub uuid: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `PowerState` as read.
    pub power_state: Option<String>,
    /// Target of `#ComputerSystem.Reset`.
    pub reset_target: String,
    /// `ResetType@Redfish.AllowableValues`, when the BMC lists them.
    pub allowed: Option<Vec<String>>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn system_power(path: &str, doc: &Value) -> SystemPower {
    let action = doc.pointer("/Actions/#ComputerSystem.Reset");
    SystemPower {
        path: path.to_string(),
        uuid: text(doc, "UUID"),
        serial_number: text(doc, "SerialNumber"),
        power_state: text(doc, "PowerState"),
        reset_target: action
            .and_then(|a| text(a, "target"))
            .unwrap_or_else(|| format!("{path}/Actions/ComputerSystem.Reset")),
        allowed: action
            .and_then(|a| a.get("ResetType@Redfish.AllowableValues"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }),
    }
}

/// Every ComputerSystem of the BMC (one GET of the collection, one per member).
pub async fn systems(session: &Session) -> Result<Vec<SystemPower>, RedfishError> {
    let root = session.service_root().cloned();
    let collection = root
        .as_ref()
        .and_then(|r| r.pointer("/Systems/@odata.id"))
        .and_then(Value::as_str)
        .unwrap_or("/redfish/v1/Systems")
        .to_string();
    let list = session.get_json(&collection).await?;
    let members: Vec<String> = list
        .get("Members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| x.get("@odata.id").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(members.len());
    for path in members {
        let doc = session.get_json(&path).await?;
        out.push(system_power(&path, &doc));
    }
    Ok(out)
}

fn same(a: Option<&str>, b: Option<&str>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

/// The ComputerSystem of a server among `systems`: the one with its UUID, else its serial
/// number, else the only one.
pub fn pick_system<'a>(
    systems: &'a [SystemPower],
    uuid: Option<&str>,
    serial: Option<&str>,
) -> Option<&'a SystemPower> {
    systems
        .iter()
        .find(|s| same(s.uuid.as_deref(), uuid))
        .or_else(|| {
            systems
                .iter()
                .find(|s| same(s.serial_number.as_deref(), serial))
        })
        .or_else(|| (systems.len() == 1).then(|| &systems[0]))
}

/// The ComputerSystem of a server (see [`pick_system`]).
pub async fn find_system(
    session: &Session,
    uuid: Option<&str>,
    serial: Option<&str>,
) -> Result<SystemPower, RedfishError> {
    let all = systems(session).await?;
    pick_system(&all, uuid, serial).cloned().ok_or_else(|| {
        RedfishError::Unsupported("no ComputerSystem of this BMC matches the server".into())
    })
}

/// `PowerState` of a system now.
pub async fn power_state(session: &Session, path: &str) -> Result<Option<String>, RedfishError> {
    Ok(text(&session.get_json(path).await?, "PowerState"))
}

/// Sends one `ComputerSystem.Reset`.
pub async fn reset(
    session: &Session,
    system: &SystemPower,
    reset_type: &str,
) -> Result<(), RedfishError> {
    session
        .post_json(&system.reset_target, &json!({ "ResetType": reset_type }))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plans_the_nearest_reset() {
        let all = owned(&[
            "On",
            "ForceOff",
            "GracefulShutdown",
            "GracefulRestart",
            "ForceRestart",
            "PowerCycle",
        ]);
        for name in PowerAction::NAMES {
            let a = PowerAction::parse(name).unwrap();
            assert_eq!(plan_reset(a, Some(&all)), Some(vec![*name]));
            assert_eq!(plan_reset(a, None), Some(vec![*name]));
        }
        let few = owned(&["ForceOn", "ForceOff"]);
        assert_eq!(
            plan_reset(PowerAction::PowerCycle, Some(&few)),
            Some(vec!["ForceOff", "ForceOn"])
        );
        assert_eq!(
            plan_reset(PowerAction::GracefulShutdown, Some(&few)),
            Some(vec!["ForceOff"])
        );
        assert_eq!(
            plan_reset(PowerAction::GracefulRestart, Some(&few)),
            Some(vec!["ForceOff", "ForceOn"])
        );
        assert_eq!(plan_reset(PowerAction::On, Some(&owned(&["Nmi"]))), None);
        let sys = vec![
            system_power("/a", &json!({"UUID": "U1", "SerialNumber": "S1"})),
            system_power("/b", &json!({"UUID": "U2", "SerialNumber": "S2"})),
        ];
        assert_eq!(pick_system(&sys, Some("u2"), None).unwrap().path, "/b");
        assert_eq!(pick_system(&sys, None, Some("S1")).unwrap().path, "/a");
        assert!(pick_system(&sys, None, None).is_none());
        assert_eq!(sys[0].reset_target, "/a/Actions/ComputerSystem.Reset");
    }
}
