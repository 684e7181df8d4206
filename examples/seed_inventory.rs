//! Loads a benchmark inventory: `seed_inventory <database-url> [servers] [pools]`.
//!
//! Servers are registered through the same inventory API node registration uses, each with
//! 2 CPUs, 4 NICs, one controller with 8 drives and 20 firmware items, spread over the pools
//! (owned by group 1). 40 % are Dell PowerEdge, the rest HPE ProLiant, in every pool alike
//! (80 of each 200 with 10,000 servers in 50 pools, as the product's benchmark data has about 78 in a pool).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anyhow::Context;
use mojo_server::db::servers::{
    upsert_from_inventory, EthernetInput, FirmwareInput, ProcessorInput, ServerInventory,
    StorageInput,
};
use mojo_server::db::{pools, servers, Db, Dialect, Sql};
use serde_json::json;

fn inventory(i: usize, pools: usize) -> ServerInventory {
    // Independent of the pool (`i % pools`): pool p holds i = p + pools * k, so k decides.
    let dell = (i / pools.max(1)) % 5 < 2;
    ServerInventory {
        uuid: Some(format!("4c4c4544-0000-4000-8000-{i:012}")),
        serial_number: Some(format!("SN{i:07}")),
        manufacturer: Some(if dell { "Dell Inc." } else { "HPE" }.into()),
        model: Some(if dell { "PowerEdge R740" } else { "ProLiant DL380 Gen10" }.into()),
        sku: Some(format!("SKU{:05}", i % 977)),
        bios_version: Some(format!("2.{}.0", i % 20)),
        power_state: Some(if i % 3 == 0 { "Off" } else { "On" }.into()),
        hostname: Some(format!("node-{i:05}.dc1.example")),
        memory_gib: Some(512.0),
        processor_count: Some(2),
        health: Some("OK".into()),
        processors: (1..=2)
            .map(|s| ProcessorInput {
                socket: Some(format!("CPU.Socket.{s}")),
                manufacturer: Some("Intel(R) Corporation".into()),
                model: Some("Intel(R) Xeon(R) Gold 6330 CPU @ 2.00GHz".into()),
                architecture: Some("x86-64".into()),
                total_cores: Some(28),
                total_threads: Some(56),
                max_speed_mhz: Some(3100),
            })
            .collect(),
        ethernet_interfaces: (1..=4)
            .map(|n| EthernetInput {
                name: Some(format!("NIC.Slot.1-{n}")),
                mac_address: Some(format!("b0:26:28:{:02x}:{:02x}:{n:02x}", (i >> 8) & 0xff, i & 0xff)),
                speed_mbps: Some(25000),
                link_status: Some("LinkUp".into()),
                // 198.18.0.0/15 is reserved for benchmarks: data only, never contacted.
                ipv4_addresses: vec![format!(
                    "198.19.{}.{}",
                    (i >> 6) & 0xff,
                    ((i & 0x3f) << 2) | (n - 1)
                )],
            })
            .collect(),
        storages: vec![StorageInput {
            name: Some("RAID.Integrated.1-1".into()),
            controllers: vec![json!({"name": "PERC H755", "firmware_version": "52.16.1", "speed_gbps": 12})],
            drives: (0..8)
                .map(|d| json!({"name": format!("Disk.Bay.{d}"), "model": "MZ7L3960HCJR", "capacity_bytes": 960_197_124_096u64, "media_type": "SSD", "protocol": "SATA"}))
                .collect(),
            volumes: vec![json!({"name": "Virtual Disk 0", "raid_type": "RAID1", "capacity_bytes": 960_197_124_096u64})],
        }],
        firmwares: (0..20)
            .map(|f| FirmwareInput {
                name: Some(["BIOS", "Integrated Dell Remote Access Controller", "PERC H755", "Broadcom NetXtreme", "Power Supply.Slot.1", "System CPLD"][f % 6].to_string()),
                version: Some(format!("1.{f}.{}", i % 7)),
                component_id: Some(format!("Installed-{f}-1.{f}")),
                updateable: f % 4 != 0,
                firmware_type: Some(["BIOS", "BMC", "Storage", "NIC", "PSU", "CPLD"][f % 6].to_string()),
            })
            .collect(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .context("usage: seed_inventory <database-url> [servers] [pools]")?;
    let count: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let pool_count: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50);
    let db = Db::connect(&url, 4).await?;
    db.migrate().await?;
    let start = std::time::Instant::now();
    let mut tx = db.begin().await?;
    let mut pool_ids = Vec::with_capacity(pool_count);
    for p in 0..pool_count {
        pool_ids.push(
            pools::insert(
                &mut tx,
                &format!("bench-pool-{p:02}"),
                "benchmark pool",
                1,
                None,
            )
            .await?,
        );
    }
    tx.commit().await?;
    for chunk_start in (0..count).step_by(500) {
        let mut tx = db.begin().await?;
        for i in chunk_start..(chunk_start + 500).min(count) {
            let id = upsert_from_inventory(
                &mut tx,
                i as i64 + 1,
                &format!("https://198.18.{}.{}", (i >> 8) & 0xff, i & 0xff),
                &inventory(i, pool_count),
            )
            .await?;
            if let Some(pool) = pool_ids.get(i % pool_count.max(1)) {
                servers::set_pool(&mut tx, &[id], Some(*pool)).await?;
            }
        }
        tx.commit().await?;
    }
    // Planner statistics and a clean heap, as autovacuum (or SQLite's ANALYZE) would leave a
    // database that has been running for a while.
    let settle = match db.dialect() {
        Dialect::Postgres => "VACUUM ANALYZE",
        Dialect::Sqlite => "ANALYZE",
    };
    db.execute(&Sql::new(settle)).await?;
    let n = db
        .fetch_int(&Sql::new("SELECT COUNT(*) FROM servers"))
        .await?;
    println!(
        "{n} servers in {} pools loaded in {:.1}s; first pool id {}",
        pool_count,
        start.elapsed().as_secs_f64(),
        pool_ids.first().copied().unwrap_or(0)
    );
    db.close().await;
    Ok(())
}
