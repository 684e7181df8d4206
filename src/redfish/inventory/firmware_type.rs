//! [`FirmwareType`] and its classifier [`infer_firmware_type`].

/// Kind of firmware component, as the API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FirmwareType {
    /// System firmware (BIOS/UEFI/System ROM).
    Bios,
    /// Management controller (BMC, iDRAC, iLO, XCC...).
    Bmc,
    /// Network adapter.
    Nic,
    /// RAID/HBA controller, drive, backplane.
    Storage,
    /// CPLD/FPGA/programmable logic.
    Cpld,
    /// Power supply.
    Psu,
    /// Anything else.
    Other,
}

impl FirmwareType {
    /// The API spelling: `BIOS`, `BMC`, `NIC`, `Storage`, `CPLD`, `PSU`, `Other`.
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareType::Bios => "BIOS",
            FirmwareType::Bmc => "BMC",
            FirmwareType::Nic => "NIC",
            FirmwareType::Storage => "Storage",
            FirmwareType::Cpld => "CPLD",
            FirmwareType::Psu => "PSU",
            FirmwareType::Other => "Other",
        }
    }
}

impl std::fmt::Display for FirmwareType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Infers the kind of a firmware component from its `Id`, `Name` and `Description`.
///
/// Matching is on whole words (so `ilo` does not match `silo`), with trailing digits ignored
/// (`PSU1`, `NIC2`), plus a few multi-word phrases. The first matching kind wins, in the order
/// BMC, BIOS, CPLD, PSU, Storage, NIC.
pub fn infer_firmware_type(id: &str, name: &str, description: &str) -> FirmwareType {
    const RULES: &[(FirmwareType, &[&str], &[&str])] = &[
        (
            FirmwareType::Bmc,
            &[
                "bmc", "idrac", "ilo", "xcc", "imm", "ibmc", "irmc", "openbmc", "ipmi",
            ],
            &[
                "baseboard management controller",
                "remote access controller",
                "lifecycle controller",
                "integrated lights out",
                "xclarity controller",
            ],
        ),
        (
            FirmwareType::Bios,
            &["bios", "uefi", "systemrom"],
            &["system rom"],
        ),
        (
            FirmwareType::Cpld,
            &["cpld", "fpga"],
            &["programmable logic"],
        ),
        (
            FirmwareType::Psu,
            &["psu", "powersupply", "powersupplies", "psus"],
            &["power supply", "power supplies"],
        ),
        (
            FirmwareType::Storage,
            &[
                "raid",
                "perc",
                "storage",
                "drive",
                "drives",
                "disk",
                "disks",
                "ssd",
                "hdd",
                "nvme",
                "sas",
                "sata",
                "hba",
                "megaraid",
                "boss",
                "backplane",
                "expander",
                "smartarray",
                "lsi",
            ],
            &[
                "smart array",
                "fibre channel",
                "fiber channel",
                "simple storage",
            ],
        ),
        (
            FirmwareType::Nic,
            &[
                "nic",
                "ethernet",
                "network",
                "lom",
                "netxtreme",
                "connectx",
                "mellanox",
                "infiniband",
                "ocp",
            ],
            &["network adapter", "converged network"],
        ),
    ];
    let text = format!("{id} {name} {description}").to_ascii_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let phrase_text = format!(" {} ", words.join(" "));
    for (kind, keywords, phrases) in RULES {
        let word_hit = words.iter().any(|word| {
            let stem = word.trim_end_matches(|c: char| c.is_ascii_digit());
            keywords.contains(word) || (!stem.is_empty() && keywords.contains(&stem))
        });
        let phrase_hit = phrases
            .iter()
            .any(|phrase| phrase_text.contains(&format!(" {phrase} ")));
        if word_hit || phrase_hit {
            return *kind;
        }
    }
    FirmwareType::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_type_inference() {
        use FirmwareType::*;
        let cases: &[(&str, &str, &str, FirmwareType)] = &[
            ("BIOS", "Contoso BIOS Firmware", "", Bios),
            ("BMC", "Contoso BMC Firmware", "", Bmc),
            ("SS", "Contoso Simple Storage Firmware", "", Storage),
            ("AC-RoT0", "AC-RoT0 firmware", "", Other),
            (
                "Installed-25227-7.00.00.172__iDRAC.Embedded.1-1",
                "Integrated Dell Remote Access Controller",
                "",
                Bmc,
            ),
            ("Installed-159-1.13.2__BIOS.Setup.1-1", "BIOS", "", Bios),
            (
                "Installed-0-22.5.7__NIC.Integrated.1-1-1",
                "Broadcom Gigabit Ethernet BCM5720",
                "",
                Nic,
            ),
            (
                "Installed-0-52.26.0-5179__RAID.SL.3-1",
                "PERC H755 Front",
                "",
                Storage,
            ),
            (
                "Installed-0-A02__Disk.Bay.0:Enclosure.Internal.0-1",
                "Disk 0 in Backplane 1",
                "",
                Storage,
            ),
            ("Installed-0-00.3D.58__PSU.Slot.1", "PSU.Slot.1", "", Psu),
            (
                "Installed-0-1.0.6__CPLD.Embedded.1",
                "System CPLD",
                "",
                Cpld,
            ),
            ("1", "iLO 5", "", Bmc),
            ("2", "System ROM", "", Bios),
            ("3", "Redundant System ROM", "", Bios),
            ("4", "System Programmable Logic Device", "", Cpld),
            ("5", "Power Supply Firmware", "", Psu),
            ("6", "HPE Smart Array P408i-a SR Gen10", "", Storage),
            ("7", "HPE Ethernet 10Gb 2-port 562SFP+ Adapter", "", Nic),
            ("8", "Power Management Controller Firmware", "", Other),
            (
                "BMC-Primary",
                "Primary XClarity Controller Firmware",
                "",
                Bmc,
            ),
            ("UEFI", "UEFI Firmware", "", Bios),
            ("PSU1", "Power Supply 1", "", Psu),
            ("LXPM", "Lenovo XClarity Provisioning Manager", "", Other),
            ("Slot_3", "Mellanox ConnectX-6 Dx", "", Nic),
            ("x", "Silo controller", "", Other),
            ("", "", "Network adapter firmware", Nic),
            ("", "", "", Other),
        ];
        for (id, name, description, expected) in cases {
            assert_eq!(
                infer_firmware_type(id, name, description),
                *expected,
                "id={id:?} name={name:?} description={description:?}"
            );
        }
        assert_eq!(FirmwareType::Storage.to_string(), "Storage");
        assert_eq!(FirmwareType::Bios.as_str(), "BIOS");
    }
}
